//! `speak`: the swapper's text-to-speech model makes an OGG/Opus voice message that goes to the
//! user with the answer.

use daarion_swapper_client::SpeechFormat;
use serde_json::{Value, json};

use super::context::{Media, ToolContext, swapper_unavailable};
use super::spec::{ToolResult, ToolSpec};

pub const SPEC: ToolSpec = ToolSpec {
    name: "speak",
    description: "Say a short text aloud to the user as a voice message (when they ask to hear something).",
    parameters,
    run: |ctx, args| Box::pin(run(ctx, args)),
};

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 1000}},
        "required": ["text"],
        "additionalProperties": false
    })
}

async fn run(ctx: &ToolContext, args: Value) -> ToolResult {
    let text = args["text"].as_str().unwrap_or_default();
    let bytes = ctx
        .swapper
        .speak(&ctx.tts_model, text, SpeechFormat::Opus)
        .await
        .map_err(|e| swapper_unavailable("speech", &e))?;
    let size = bytes.len();
    ctx.add_media(Media {
        mime: "audio/ogg",
        bytes,
    });
    Ok(json!({"spoken": true, "bytes": size}))
}

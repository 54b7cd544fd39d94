//! `speak`: the swapper's text-to-speech model makes an OGG/Opus voice message that goes to the
//! user with the answer.

use daarion_swapper_client::SpeechFormat;
use serde_json::{Value, json};

use super::context::{Media, ToolContext, swapper_unavailable};
use super::metered::{Work, local, metered};
use super::spec::{ToolResult, ToolSpec};
use crate::gpu::SPOKEN_CHAR_SECONDS;

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
    let link = local(&ctx.tts_model);
    let work = Work {
        link: &link,
        units: text.chars().count() as f64,
        unit_seconds: SPOKEN_CHAR_SECONDS,
        tokens: 0,
    };
    let bytes = metered(ctx, work, async {
        let bytes = ctx
            .swapper
            .speak(&ctx.tts_model, text, SpeechFormat::Opus)
            .await
            .map_err(|e| swapper_unavailable("speech", &e))?;
        Ok((bytes, 0))
    })
    .await?;
    let size = bytes.len();
    ctx.add_media(Media {
        mime: "audio/ogg",
        bytes,
    });
    Ok(json!({"spoken": true, "bytes": size}))
}

//! `describe_image`: the agent's vision model (in the swapper) is asked about a picture the
//! user sent.

use daarion_router_client::MAX_PICTURES;
use daarion_swapper_client::{ChatMessage, ChatRequest, Part};
use serde_json::{Value, json};

use super::context::{ToolContext, swapper_unavailable};
use super::metered::{Work, local, metered};
use super::spec::{ToolResult, ToolSpec};
use crate::gpu::TOKEN_SECONDS;

pub const SPEC: ToolSpec = ToolSpec {
    name: "describe_image",
    description: "Look at a picture the user sent with this message and answer a question about it (what it shows, text in it, details).",
    parameters,
    run: |ctx, args| Box::pin(run(ctx, args)),
};

/// Enough for a description; the agent's own model says the rest.
const MAX_ANSWER_TOKENS: u32 = 256;
/// What a picture and the question can take of a vision model's context, reserved up front.
const MAX_IMAGE_TOKENS: u64 = 1024;

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "question": {"type": "string", "minLength": 1, "maxLength": 1000},
            "image": {"type": "integer", "minimum": 1, "maximum": MAX_PICTURES, "description": "which picture, from 1; the last by default"}
        },
        "required": ["question"],
        "additionalProperties": false
    })
}

async fn run(ctx: &ToolContext, args: Value) -> ToolResult {
    let Some(model) = &ctx.vision_model else {
        return Err("this agent has no vision model to look at pictures with".into());
    };
    if ctx.images.is_empty() {
        return Err("the user sent no picture with this message".into());
    }
    let index = args["image"]
        .as_u64()
        .map_or(ctx.images.len(), |i| i as usize);
    let picture = ctx
        .images
        .get(index - 1)
        .ok_or_else(|| format!("there are only {} pictures", ctx.images.len()))?;
    let question = args["question"].as_str().unwrap_or_default();
    // Greedy, so the same question about the same picture gets the same answer.
    let mut request = ChatRequest::new(
        model.as_str(),
        vec![ChatMessage::user(vec![
            Part::text(question),
            Part::image_url(picture.data_url()),
        ])],
    );
    request.max_tokens = Some(MAX_ANSWER_TOKENS);
    request.temperature = Some(0.0);
    let link = local(model);
    let work = Work {
        link: &link,
        units: f64::from(MAX_ANSWER_TOKENS),
        unit_seconds: TOKEN_SECONDS,
        // The picture is read as tokens too; the context bounds the whole call.
        tokens: u64::from(MAX_ANSWER_TOKENS) + MAX_IMAGE_TOKENS,
    };
    let answer = metered(ctx, work, async {
        let answer = ctx
            .swapper
            .chat(&request)
            .await
            .map_err(|e| swapper_unavailable("vision", &e))?;
        let tokens = answer.usage.total_tokens;
        Ok((answer, tokens))
    })
    .await?;
    let text = answer.text().unwrap_or_default().trim().to_owned();
    Ok(json!({"answer": text}))
}

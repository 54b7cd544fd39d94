//! `remember_fact`: a lasting fact about the user, pointing back at the message that taught it.

use serde_json::{Value, json};

use super::context::{ToolContext, memory_unavailable};
use super::spec::{ToolResult, ToolSpec};

pub const SPEC: ToolSpec = ToolSpec {
    name: "remember_fact",
    description: "Remember a lasting fact about the user (a preference, a name, a circumstance).",
    parameters,
    run: |ctx, args| Box::pin(run(ctx, args)),
};

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {"fact": {"type": "string", "minLength": 3, "maxLength": 1000}},
        "required": ["fact"],
        "additionalProperties": false
    })
}

async fn run(ctx: &ToolContext, args: Value) -> ToolResult {
    let fact = args["fact"].as_str().unwrap_or_default().trim();
    let stored = ctx
        .memory
        .add_fact(ctx.user_id, fact, &ctx.agent_id, ctx.source_message)
        .await
        .map_err(memory_unavailable)?;
    Ok(json!({"remembered": stored.content, "id": stored.id}))
}

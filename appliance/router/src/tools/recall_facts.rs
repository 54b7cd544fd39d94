//! `recall_facts`: every fact remembered about the user.

use serde_json::{Value, json};

use super::context::{ToolContext, memory_unavailable};
use super::spec::{ToolResult, ToolSpec};

pub const SPEC: ToolSpec = ToolSpec {
    name: "recall_facts",
    description: "List every fact remembered about the user.",
    parameters,
    run: |ctx, args| Box::pin(run(ctx, args)),
};

fn parameters() -> Value {
    json!({"type": "object", "properties": {}, "additionalProperties": false})
}

async fn run(ctx: &ToolContext, _: Value) -> ToolResult {
    let facts = ctx
        .memory
        .facts(ctx.user_id)
        .await
        .map_err(memory_unavailable)?;
    Ok(json!(
        facts.iter().map(|f| f.content.as_str()).collect::<Vec<_>>()
    ))
}

//! `search_memory`: the user's earlier messages and facts, by words and meaning.

use serde_json::{Value, json};

use super::context::{ToolContext, memory_unavailable};
use super::spec::{ToolResult, ToolSpec};

pub const SPEC: ToolSpec = ToolSpec {
    name: "search_memory",
    description: "Search this user's earlier messages and remembered facts.",
    parameters,
    run: |ctx, args| Box::pin(run(ctx, args)),
};

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 1000},
            "limit": {"type": "integer", "minimum": 1, "maximum": 20}
        },
        "required": ["query"],
        "additionalProperties": false
    })
}

async fn run(ctx: &ToolContext, args: Value) -> ToolResult {
    let query = args["query"].as_str().unwrap_or_default();
    let limit = args["limit"].as_u64().unwrap_or(5) as u32;
    let hits = ctx
        .memory
        .search(ctx.user_id, query, limit)
        .await
        .map_err(memory_unavailable)?;
    Ok(json!(
        hits.iter()
            .map(|h| json!({"kind": h.kind, "content": h.content, "why": h.why}))
            .collect::<Vec<_>>()
    ))
}

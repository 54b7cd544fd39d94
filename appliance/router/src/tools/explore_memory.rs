//! `explore_memory`: what the user's graph holds around a name.

use serde_json::{Value, json};

use super::context::{ToolContext, memory_unavailable};
use super::spec::{ToolResult, ToolSpec};

pub const SPEC: ToolSpec = ToolSpec {
    name: "explore_memory",
    description: "Look up what is known about a person, place or thing in the user's life, and how it relates to others.",
    parameters,
    run: |ctx, args| Box::pin(run(ctx, args)),
};

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}},
        "required": ["name"],
        "additionalProperties": false
    })
}

async fn run(ctx: &ToolContext, args: Value) -> ToolResult {
    let name = args["name"].as_str().unwrap_or_default();
    let Some(around) = ctx
        .memory
        .explore(ctx.user_id, name)
        .await
        .map_err(memory_unavailable)?
    else {
        return Ok(json!({"known": false}));
    };
    let name_of = |id| around.name_of(id).unwrap_or("?");
    let relations: Vec<String> = around
        .edges
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                name_of(e.from_node),
                e.relation,
                name_of(e.to_node)
            )
        })
        .collect();
    Ok(json!({"known": true, "relations": relations}))
}

//! `remember_relation`: a relation between two things the user mentioned, into their knowledge
//! graph.

use daarion_memory_client::MemoryError;
use serde_json::{Value, json};

use super::context::{ToolContext, memory_unavailable};
use super::spec::{ToolResult, ToolSpec};

pub const SPEC: ToolSpec = ToolSpec {
    name: "remember_relation",
    description: "Remember how two people, places or things in the user's life are related (e.g. Olena sister_of user, Olena lives_in Lviv).",
    parameters,
    run: |ctx, args| Box::pin(run(ctx, args)),
};

fn parameters() -> Value {
    let kind = json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$", "description": "person, place, topic, organisation, thing…"});
    json!({
        "type": "object",
        "properties": {
            "subject": {"type": "string", "minLength": 1, "maxLength": 200},
            "subject_kind": kind,
            "relation": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$", "description": "snake_case verb: knows, lives_in, works_at…"},
            "object": {"type": "string", "minLength": 1, "maxLength": 200},
            "object_kind": kind,
        },
        "required": ["subject", "relation", "object"],
        "additionalProperties": false
    })
}

async fn run(ctx: &ToolContext, args: Value) -> ToolResult {
    let text = |k: &str| args[k].as_str().unwrap_or_default().to_owned();
    let kind = |k: &str| args[k].as_str().unwrap_or("thing").to_owned();
    let stored = ctx
        .memory
        .relate(
            ctx.user_id,
            (&kind("subject_kind"), &text("subject")),
            &text("relation"),
            (&kind("object_kind"), &text("object")),
            ctx.source_message,
        )
        .await
        .map_err(|e| match e {
            // Memory's own words (a name it cannot take) help the model correct itself.
            MemoryError::Refused { message, .. } => message,
            other => memory_unavailable(other),
        })?;
    Ok(json!({
        "remembered": format!("{} {} {}", stored.from.name, stored.edge.relation, stored.to.name)
    }))
}

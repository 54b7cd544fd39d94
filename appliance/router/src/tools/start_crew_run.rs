//! `start_crew_run`: asks the crews service for a multi-agent run; the request is durable on
//! the bus once this returns.

use std::collections::BTreeMap;

use daarion_bus::Envelope;
use daarion_bus::events::AgentRunRequested;
use serde_json::{Value, json};
use uuid::Uuid;

use super::context::ToolContext;
use super::spec::{ToolResult, ToolSpec};

pub const SPEC: ToolSpec = ToolSpec {
    name: "start_crew_run",
    description: "Start a background crew run for a long task; the result is delivered later.",
    parameters,
    run: |ctx, args| Box::pin(run(ctx, args)),
};

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "crew": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
            "task": {"type": "string", "minLength": 1, "maxLength": 4000},
            "inputs": {
                "type": "object",
                "description": "values for the crew's {placeholder}s, by name",
                "maxProperties": 32,
                "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
                "additionalProperties": {"type": "string", "maxLength": 4000}
            }
        },
        "required": ["crew", "task"],
        "additionalProperties": false
    })
}

async fn run(ctx: &ToolContext, args: Value) -> ToolResult {
    let run_id = Uuid::now_v7();
    let event = Envelope::event(
        "router",
        AgentRunRequested {
            run_id,
            crew: args["crew"].as_str().unwrap_or_default().to_owned(),
            task: args["task"].as_str().unwrap_or_default().to_owned(),
            user_id: ctx.user_id,
            agent_id: ctx.agent_id.clone(),
            session_id: ctx.session_id,
            inputs: inputs(&args),
            // The chat that asked, so progress and the result reach it.
            origin: ctx.origin.clone(),
        },
    );
    ctx.bus.publish(&event).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot request a crew run");
        "the crew service cannot be reached right now".to_owned()
    })?;
    Ok(json!({"run_id": run_id, "status": "requested"}))
}

/// The `inputs` object, already checked against the schema (every value a string).
fn inputs(args: &Value) -> BTreeMap<String, String> {
    args["inputs"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

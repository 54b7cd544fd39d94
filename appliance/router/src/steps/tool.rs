//! One tool call of a crew step, run as a turn runs it: the same policy, argument checks,
//! timeout and [`ToolContext`] (so a tool's own model use is checked and charged the same way).

use std::sync::Arc;
use std::time::Duration;

use daarion_policy::Action;
use daarion_router_client::{StepUsage, ToolRequest, ToolResponse};
use serde_json::json;

use super::who::admit;
use crate::tools::ToolContext;
use crate::turn::quota::refused;
use crate::{App, RouterError, metrics};

pub async fn run(app: &App, step: ToolRequest) -> Result<ToolResponse, RouterError> {
    let Some(name) = app.toolbox.names().find(|n| *n == step.name) else {
        return Err(RouterError::invalid(
            "name",
            format!("there is no tool named `{}`", step.name),
        ));
    };
    let who = admit(app, step.user_id, &step.agent_id).await?;
    let decided = app
        .control
        .decide(
            &step.user_id.to_string(),
            &who.agent.id,
            &Action::Tool(name),
        )
        .await?;
    if !decided.decision.allow {
        return Err(refused(
            "policy",
            format!("The tool `{name}` is not allowed for this user."),
        ));
    }
    let ctx = ToolContext {
        memory: app.memory.clone(),
        bus: app.bus.clone(),
        user_id: step.user_id,
        agent_id: who.agent.id.clone(),
        session_id: step.session_id,
        source_message: None,
        origin: None,
        swapper: app.swapper.clone(),
        tts_model: who.settings.tts_model.clone(),
        media: Default::default(),
        images: Arc::new(Vec::new()),
        vision_model: who.settings.vision_model.clone(),
        image_model: who.settings.image_model.clone(),
        providers: app.providers.clone(),
        control: app.control.clone(),
        gpu: app.gpu.clone(),
        charged: Default::default(),
    };
    let limit = Duration::from_secs(who.settings.tool_timeout_secs);
    let (result, outcome) = match app.toolbox.check(name, &step.arguments.to_string()) {
        Err(why) => (Err(why), "invalid"),
        Ok(arguments) => {
            match tokio::time::timeout(limit, app.toolbox.call(name, &ctx, arguments)).await {
                Ok(Ok(value)) => (Ok(value), "ok"),
                Ok(Err(why)) => (Err(why), "failed"),
                Err(_) => (
                    Err(format!(
                        "the tool did not finish within {} s",
                        limit.as_secs()
                    )),
                    "timeout",
                ),
            }
        }
    };
    metrics::TOOL_CALLS
        .with_label_values(&[name, outcome])
        .inc();
    let charged = ctx.charged();
    let usage = StepUsage {
        prompt_tokens: charged.tokens,
        completion_tokens: 0,
        cost: charged.cost,
        gpu_seconds: charged.gpu_seconds,
    };
    Ok(match result {
        Ok(output) => ToolResponse {
            output,
            ok: true,
            usage,
            replayed: false,
        },
        Err(why) => ToolResponse {
            output: json!({"error": why}),
            ok: false,
            usage,
            replayed: false,
        },
    })
}

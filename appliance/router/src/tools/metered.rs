//! A tool's own model use (speech, vision, pictures) goes through the same per-model policy and
//! quota as a turn's model calls: the model must be allowed for this user with this agent, the
//! quota is reserved before the call (GPU-seconds estimated for a local model, see
//! [`crate::gpu`]) and settled after it with what was measured.

use std::future::Future;
use std::time::Instant;

use daarion_control_client::Usage;
use daarion_policy::Action;
use daarion_settings::LOCAL_PROVIDER;

use super::context::ToolContext;
use crate::turn::quota::{reserve, settle};

/// The model call a tool is about to make.
pub struct Work<'a> {
    /// `provider/model`, as policy names it.
    pub link: &'a str,
    /// How much work is asked for, and what a unit of it takes on a model never measured.
    pub units: f64,
    pub unit_seconds: f64,
    /// The most tokens the call can use (0 for work not counted in tokens).
    pub tokens: u64,
}

/// `provider/model` of a swapper model named by its id alone.
pub fn local(model: &str) -> String {
    format!("{LOCAL_PROVIDER}/{model}")
}

/// Runs `call` (which answers with its result and the tokens it used) under policy and quota.
/// A refusal is the tool's failure, in words the model can pass on.
pub async fn metered<T>(
    ctx: &ToolContext,
    work: Work<'_>,
    call: impl Future<Output = Result<(T, u64), String>>,
) -> Result<T, String> {
    let user = ctx.user_id.to_string();
    let allowed = ctx
        .control
        .decide(&user, &ctx.agent_id, &Action::Model(work.link))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot check the policy for a tool's model");
            "the policy cannot be checked right now".to_owned()
        })?;
    if !allowed.decision.allow {
        return Err(format!(
            "the model `{}` is not allowed for this user",
            work.link
        ));
    }
    let local = work.link.starts_with(&format!("{LOCAL_PROVIDER}/"));
    let reserved = Usage {
        requests: 0,
        tokens: work.tokens,
        gpu_seconds: if local {
            ctx.gpu.estimate(work.link, work.units, work.unit_seconds)
        } else {
            0.0
        },
        cost: 0.0,
    };
    reserve(&ctx.control, ctx.user_id, reserved)
        .await
        .map_err(|e| e.public_message())?;
    let started = Instant::now();
    let outcome = call.await;
    let seconds = started.elapsed().as_secs_f64();
    // Time on a local model is charged even when the call failed: it held the GPU.
    let actual = Usage {
        requests: 0,
        tokens: outcome.as_ref().map_or(0, |(_, tokens)| *tokens),
        gpu_seconds: if local { seconds } else { 0.0 },
        cost: 0.0,
    };
    if local && outcome.is_ok() {
        ctx.gpu.record(work.link, work.units, seconds);
    }
    settle(&ctx.control, ctx.user_id, reserved, actual).await;
    *ctx.charged.lock().unwrap_or_else(|e| e.into_inner()) += actual;
    outcome.map(|(value, _)| value)
}

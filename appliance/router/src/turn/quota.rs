//! Quota around a turn: every model call is reserved before it is made, at the most it can use
//! (the agent's whole context, at the dearest link), and the turn settles what was really used
//! at its end, so concurrent turns can never spend past a limit. A call to a local model also
//! reserves GPU-seconds (an estimate, see [`crate::gpu`]) and settles the measured time.

use daarion_control_client::{ClientError, ControlClient, Usage};
use daarion_settings::AgentSettings;
use uuid::Uuid;

use super::chain::CallOutcome;
use crate::gpu::{GpuMeter, TOKEN_SECONDS};
use crate::providers::Link;
use crate::{Refusal, RouterError};

/// The most one model call of this agent can use.
pub fn call_reservation(
    settings: &AgentSettings,
    links: &[Link],
    max_tokens: u32,
    meter: &GpuMeter,
) -> Usage {
    let tokens = settings.context_tokens;
    Usage {
        requests: 0,
        tokens: u64::from(tokens),
        // Whichever local link answers, the slowest bounds the time.
        gpu_seconds: links
            .iter()
            .filter(|l| l.local)
            .map(|l| meter.estimate(&l.id(), f64::from(max_tokens), TOKEN_SECONDS))
            .fold(0.0, f64::max),
        // Either side could take the whole context; the dearer side bounds the cost.
        cost: links
            .iter()
            .filter_map(|l| l.price.as_ref().map(|p| p.most_for(tokens)))
            .fold(0.0, f64::max),
    }
}

pub fn refused(code: &'static str, reason: impl Into<String>) -> RouterError {
    RouterError::Refused(Refusal {
        code,
        reason: reason.into(),
    })
}

pub async fn reserve(
    control: &ControlClient,
    user: Uuid,
    amount: Usage,
) -> Result<(), RouterError> {
    match control.consume(&user.to_string(), &amount).await {
        Ok(_) => Ok(()),
        Err(ClientError::QuotaExceeded(which)) => Err(refused(
            "quota",
            format!("You have used up your allowance ({which}). Please try again later."),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Gives back a reservation that was never used.
pub async fn release(control: &ControlClient, user: Uuid, reserved: Usage) {
    settle(control, user, reserved, Usage::default()).await;
}

pub async fn settle(control: &ControlClient, user: Uuid, reserved: Usage, actual: Usage) {
    if let Err(e) = control.settle(&user.to_string(), &reserved, &actual).await {
        // The reservation stays counted: the user is over-charged, never under.
        tracing::error!(error = %e, %user, "cannot settle quota usage");
    }
}

/// What a turn used, added up over its calls.
#[derive(Default)]
pub struct Spent {
    pub usage: daarion_llm::Usage,
    pub cost: f64,
    pub gpu_seconds: f64,
}

impl Spent {
    /// Adds a call; a local one also teaches `meter` the model's speed.
    pub fn add(&mut self, link: &Link, outcome: &CallOutcome, meter: &GpuMeter) {
        self.usage.prompt_tokens += outcome.usage.prompt_tokens;
        self.usage.completion_tokens += outcome.usage.completion_tokens;
        self.cost += link.cost(&outcome.usage);
        if link.local {
            self.gpu_seconds += outcome.seconds;
            meter.record(
                &link.id(),
                f64::from(outcome.usage.completion_tokens),
                outcome.seconds,
            );
        }
    }

    /// As settled: one request, whatever number of calls it took.
    pub fn as_usage(&self) -> Usage {
        Usage {
            requests: 1,
            tokens: u64::from(self.usage.total()),
            gpu_seconds: self.gpu_seconds,
            cost: self.cost,
        }
    }
}

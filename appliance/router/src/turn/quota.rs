//! Quota around a turn: every model call is reserved before it is made, at the most it can use
//! (the agent's whole context, at the dearest link), and the turn settles what was really used
//! at its end, so concurrent turns can never spend past a limit.

use daarion_control_client::{ClientError, Usage};
use daarion_settings::AgentSettings;
use uuid::Uuid;

use super::chain::CallOutcome;
use crate::providers::Link;
use crate::{App, Refusal, RouterError};

/// The most one model call of this agent can use.
pub fn call_reservation(settings: &AgentSettings, links: &[Link]) -> Usage {
    let tokens = settings.context_tokens;
    Usage {
        requests: 0,
        tokens: u64::from(tokens),
        gpu_seconds: 0.0,
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

pub async fn reserve(app: &App, user: Uuid, amount: Usage) -> Result<(), RouterError> {
    match app.control.consume(&user.to_string(), &amount).await {
        Ok(_) => Ok(()),
        Err(ClientError::QuotaExceeded(which)) => Err(refused(
            "quota",
            format!("You have used up your allowance ({which}). Please try again later."),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Gives back a reservation that was never used.
pub async fn release(app: &App, user: Uuid, reserved: Usage) {
    settle(app, user, reserved, Usage::default()).await;
}

pub async fn settle(app: &App, user: Uuid, reserved: Usage, actual: Usage) {
    if let Err(e) = app
        .control
        .settle(&user.to_string(), &reserved, &actual)
        .await
    {
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
    pub fn add(&mut self, link: &Link, outcome: &CallOutcome) {
        self.usage.prompt_tokens += outcome.usage.prompt_tokens;
        self.usage.completion_tokens += outcome.usage.completion_tokens;
        self.cost += link.cost(&outcome.usage);
        if link.local {
            self.gpu_seconds += outcome.seconds;
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

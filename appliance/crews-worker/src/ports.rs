//! The two things the executor runs against: [`Steps`] (model and tool calls, the router in
//! production) and [`Journal`] (the run's step journal, the crews service in production). The
//! executor knows nothing else, so its logic is tested with in-memory versions of both.

use daarion_client::ClientError;
use daarion_crews_client::CrewsClient;
use daarion_crews_client::worker::{
    Finish, Heartbeat, HeartbeatAnswer, LEASE_LOST, Recorded, StepRecord,
};
use daarion_router_client::{RouterClient, StepRequest, StepResponse, ToolRequest, ToolResponse};
use futures::future::BoxFuture;
use uuid::Uuid;

/// Why a model or tool call gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StepError {
    /// Policy or quota said no (403/429): the run stops with `refused`.
    #[error("refused: {0}")]
    Refused(String),
    /// The provider (after the router's own fallbacks) or the request failed: the run stops
    /// with `failed`.
    #[error("failed: {0}")]
    Failed(String),
    /// The router could not be reached: nothing is known to have happened, so the run is left
    /// to be resumed (the same idempotency key gets the same answer if it did happen).
    #[error("router unreachable: {0}")]
    Unreachable(String),
}

impl From<ClientError> for StepError {
    fn from(e: ClientError) -> StepError {
        match e.status() {
            Some(403 | 429) => StepError::Refused(e.message()),
            None if e.is_unavailable() => StepError::Unreachable(e.message()),
            _ => StepError::Failed(e.message()),
        }
    }
}

/// Why the journal did not take a write.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// Another worker holds the run now: this one must stop touching it.
    #[error("lease lost")]
    LeaseLost,
    /// The crews service is down or failed: the run is resumed later.
    #[error("journal unavailable: {0}")]
    Unavailable(String),
    /// The service refused the write for another reason (a contract mismatch).
    #[error("journal refused: {0}")]
    Refused(String),
}

impl From<ClientError> for JournalError {
    fn from(e: ClientError) -> JournalError {
        if e.code() == Some(LEASE_LOST) {
            JournalError::LeaseLost
        } else if e.is_unavailable() {
            JournalError::Unavailable(e.message())
        } else {
            JournalError::Refused(e.to_string())
        }
    }
}

/// Model calls and tool calls.
pub trait Steps: Send + Sync {
    fn llm<'a>(
        &'a self,
        request: &'a StepRequest,
    ) -> BoxFuture<'a, Result<StepResponse, StepError>>;
    fn tool<'a>(
        &'a self,
        request: &'a ToolRequest,
    ) -> BoxFuture<'a, Result<ToolResponse, StepError>>;
}

/// One run's journal.
pub trait Journal: Send + Sync {
    /// Writes a step; a key already written is answered with the stored step (`created: false`).
    fn record<'a>(&'a self, step: StepRecord) -> BoxFuture<'a, Result<Recorded, JournalError>>;
    fn heartbeat(&self, lease_secs: u32) -> BoxFuture<'_, Result<HeartbeatAnswer, JournalError>>;
    fn finish(&self, finish: Finish) -> BoxFuture<'_, Result<(), JournalError>>;
}

/// The router answers 409 `step_in_progress` while another call with the same key runs (or its
/// lock outlives a caller that died mid-call, as a worker killed during a step does): the answer
/// is asked for again until it comes, for as long as a step's lock can live.
const IN_PROGRESS_POLL: std::time::Duration = std::time::Duration::from_secs(2);
const IN_PROGRESS_TRIES: u32 = 45;

async fn until_answered<T, F, Fut>(call: F) -> Result<T, StepError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    let mut tries = 0;
    loop {
        match call().await {
            Err(e) if e.code() == Some("step_in_progress") && tries < IN_PROGRESS_TRIES => {
                tries += 1;
                tokio::time::sleep(IN_PROGRESS_POLL).await;
            }
            other => return Ok(other?),
        }
    }
}

impl Steps for RouterClient {
    fn llm<'a>(
        &'a self,
        request: &'a StepRequest,
    ) -> BoxFuture<'a, Result<StepResponse, StepError>> {
        Box::pin(until_answered(move || self.llm_step(request)))
    }

    fn tool<'a>(
        &'a self,
        request: &'a ToolRequest,
    ) -> BoxFuture<'a, Result<ToolResponse, StepError>> {
        Box::pin(until_answered(move || self.tool_step(request)))
    }
}

/// The crews service's journal of one run, written as this worker.
#[derive(Debug, Clone)]
pub struct ServiceJournal {
    pub client: CrewsClient,
    pub run_id: Uuid,
    pub worker: String,
}

impl Journal for ServiceJournal {
    fn record<'a>(&'a self, step: StepRecord) -> BoxFuture<'a, Result<Recorded, JournalError>> {
        Box::pin(async move { Ok(self.client.record(self.run_id, &step).await?) })
    }

    fn heartbeat(&self, lease_secs: u32) -> BoxFuture<'_, Result<HeartbeatAnswer, JournalError>> {
        Box::pin(async move {
            let beat = Heartbeat {
                worker: self.worker.clone(),
                lease_secs,
            };
            Ok(self.client.heartbeat(self.run_id, &beat).await?)
        })
    }

    fn finish(&self, finish: Finish) -> BoxFuture<'_, Result<(), JournalError>> {
        Box::pin(async move {
            self.client.finish(self.run_id, &finish).await?;
            Ok(())
        })
    }
}

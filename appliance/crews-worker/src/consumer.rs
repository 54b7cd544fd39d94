//! `agent.run.requested` → a claimed, executed, finished run. The bus message is held (with
//! progress acks, by `daarion_bus`) until the run has an outcome written by the crews service;
//! an interrupted run is left leased and its message retried, so it resumes from its journal.

use std::sync::Arc;
use std::time::Duration;

use daarion_bus::events::AgentRunRequested;
use daarion_bus::{Envelope, HandlerError};
use daarion_crews_client::worker::{
    Claim, ClaimRequest, Finish, Outcome, RUN_FINAL, RUN_LEASED, WAITING_INPUT,
};
use daarion_crews_client::{ClientError, CrewsClient};
use tokio_util::sync::CancellationToken;

use crate::executor::{Control, Executor, Interrupted, Settings};
use crate::metrics::{RUNS, RUNS_ACTIVE};
use crate::ports::{Journal, JournalError, ServiceJournal, Steps};
use crate::scheduler::{Scheduler, Slot};

/// How long a claim holds a run without a heartbeat (`crews_worker.lease_secs`' default);
/// heartbeats come every third of it.
pub const LEASE_SECS: u32 = 60;

#[derive(Clone)]
pub struct Worker {
    pub crews: CrewsClient,
    pub steps: Arc<dyn Steps>,
    pub scheduler: Scheduler,
    pub settings: Settings,
    /// `host:pid:start`, the lease holder's name.
    pub name: String,
    /// How long a claim holds a run without a heartbeat: after a crash, how long the run waits
    /// before another worker may take it.
    pub lease_secs: u32,
    pub shutdown: CancellationToken,
}

impl Worker {
    pub async fn handle(&self, event: Envelope<AgentRunRequested>) -> Result<(), HandlerError> {
        let request = event.payload;
        let claim = ClaimRequest {
            worker: self.name.clone(),
            lease_secs: self.lease_secs,
            crew: request.crew.clone(),
            task: request.task.clone(),
            user_id: request.user_id,
            agent_id: request.agent_id.clone(),
            session_id: request.session_id,
            inputs: request.inputs.clone(),
            origin: request.origin.clone(),
            trace_id: Some(event.trace_id.clone()),
        };
        let Some((slot, claim)) = self.claim(request.run_id, &claim).await? else {
            return Ok(());
        };
        let journal = Arc::new(ServiceJournal {
            client: self.crews.clone(),
            run_id: request.run_id,
            worker: self.name.clone(),
        });
        let control = Control {
            shutdown: self.shutdown.clone(),
            ..Control::default()
        };
        RUNS_ACTIVE.inc();
        let heart = tokio::spawn(heartbeat(journal.clone(), control.clone(), self.lease_secs));
        let executor = Executor::new(
            claim,
            self.steps.clone(),
            journal.clone(),
            self.settings.clone(),
            control.clone(),
            self.name.clone(),
        );
        let result = executor.execute().await;
        heart.abort();
        RUNS_ACTIVE.dec();
        drop(slot);
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(Interrupted::LeaseLost) => {
                RUNS.with_label_values(&["interrupted"]).inc();
                return Ok(());
            }
            Err(why) => {
                RUNS.with_label_values(&["interrupted"]).inc();
                return Err(HandlerError::Transient(why.to_string()));
            }
        };
        RUNS.with_label_values(&[match &outcome {
            Outcome::Completed { .. } => "completed",
            Outcome::Failed { .. } => "failed",
            Outcome::WaitingInput { .. } => "waiting_input",
        }])
        .inc();
        let finish = Finish {
            worker: self.name.clone(),
            outcome,
        };
        match journal.finish(finish).await {
            Ok(()) | Err(JournalError::LeaseLost) => Ok(()),
            // Redelivered, the run replays its journal to the same outcome and finishes then.
            Err(e) => Err(HandlerError::Transient(e.to_string())),
        }
    }
}

impl Worker {
    /// A place among the running runs and the run's lease. A run still leased to a worker that
    /// died (kill -9) is waited for here, holding the message, until its lease runs out: a
    /// retry with the bus's backoff would use up `bus.max_deliveries` within seconds, long
    /// before the lease ends, and dead-letter the run.
    async fn claim(
        &self,
        run_id: uuid::Uuid,
        request: &ClaimRequest,
    ) -> Result<Option<(Slot, Claim)>, HandlerError> {
        // Twice the lease: the dead holder's lease runs out within one.
        let gives_up =
            tokio::time::Instant::now() + Duration::from_secs(2 * u64::from(self.lease_secs));
        loop {
            let slot = tokio::select! {
                slot = self.scheduler.admit(request.user_id) => slot,
                () = self.shutdown.cancelled() => return Err(HandlerError::Transient("shutting down".into())),
            };
            match self.crews.claim(run_id, request).await {
                Ok(claim) => return Ok(Some((slot, claim))),
                Err(e)
                    if e.code() == Some(RUN_LEASED) && tokio::time::Instant::now() < gives_up =>
                {
                    // Not holding a place among the running while waiting.
                    drop(slot);
                    tokio::select! {
                        () = tokio::time::sleep(LEASE_POLL) => {}
                        () = self.shutdown.cancelled() => return Err(HandlerError::Transient("shutting down".into())),
                    }
                }
                Err(e) => return claim_refused(e).map(|()| None),
            }
        }
    }
}

/// How often a delivery asks whether another holder's lease ran out.
const LEASE_POLL: Duration = Duration::from_secs(2);

fn claim_refused(e: ClientError) -> Result<(), HandlerError> {
    match e.code() {
        // Finished, or waiting for its user: this delivery has nothing to do.
        Some(RUN_FINAL | WAITING_INPUT) => Ok(()),
        Some(RUN_LEASED) => Err(HandlerError::Transient(
            "another worker holds the run".into(),
        )),
        _ if e.is_unavailable() => Err(HandlerError::Transient(e.to_string())),
        _ => Err(HandlerError::Permanent(e.to_string())),
    }
}

/// Renews the lease every third of it; a cancel or a lost lease reaches the executor.
async fn heartbeat(journal: Arc<ServiceJournal>, control: Control, lease_secs: u32) {
    let period = Duration::from_secs(u64::from(lease_secs / 3).max(1));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticker.tick().await;
        match journal.heartbeat(lease_secs).await {
            Ok(answer) if answer.cancel => control.cancel.cancel(),
            Ok(_) => {}
            Err(JournalError::LeaseLost) => {
                control.lease_lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying"),
        }
    }
}

//! Live run events for `GET /v1/runs/{id}/events`. Every write to a run goes through this
//! service, so the write paths feed one in-process broadcast after they commit.

use std::sync::Arc;

use daarion_crews_client::{RunEvent, Step};
use tokio::sync::{Notify, broadcast};
use uuid::Uuid;

use crate::store::runs::RunRow;

/// Events a slow SSE reader may fall behind by before it is told to reload.
const CAPACITY: usize = 1024;

#[derive(Clone)]
pub struct Hub {
    events: broadcast::Sender<(Uuid, RunEvent)>,
    /// Wakes the runs gauge's refresh.
    pub changed: Arc<Notify>,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            events: broadcast::channel(CAPACITY).0,
            changed: Arc::new(Notify::new()),
        }
    }
}

impl Hub {
    pub fn subscribe(&self) -> broadcast::Receiver<(Uuid, RunEvent)> {
        self.events.subscribe()
    }

    pub fn step(&self, step: &Step) {
        let _ = self.events.send((
            step.run_id,
            RunEvent::Step {
                step: Box::new(step.clone()),
            },
        ));
    }

    /// The run's state changed (or its usage, with a step).
    pub fn state(&self, run: &RunRow) {
        let _ = self.events.send((
            run.id,
            RunEvent::State {
                state: run.state(),
                stop: run.stop.as_ref().map(|s| s.0.clone()),
                question: run.question.clone(),
                result: run.result.clone(),
                usage: run.usage.0,
                tasks_done: u32::try_from(run.tasks_done).unwrap_or(0),
            },
        ));
        self.changed.notify_one();
    }
}

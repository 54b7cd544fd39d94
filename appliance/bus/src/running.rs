//! Whether this process's consumers still run. A consuming task that ended (a panic, an error
//! at start, a cancelled future) leaves its service answering HTTP while its queue grows; the
//! `daarion_bus_consumer_running` gauge and [`ConsumersCheck`] on `/ready` make that visible.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use futures::future::BoxFuture;

use crate::metrics::RUNNING;
use crate::{Bus, BusError, ConsumerSpec};

/// Keyed by the bus prefix too: tests run several services with the same consumers in one
/// process, each under its own prefix.
type Key = (String, &'static str);

#[derive(Default)]
struct State {
    running: usize,
    /// Why the last task of this consumer ended, once one has.
    ended: Option<String>,
}

static STATES: LazyLock<Mutex<HashMap<Key, State>>> = LazyLock::new(Mutex::default);

fn states() -> std::sync::MutexGuard<'static, HashMap<Key, State>> {
    // A panic elsewhere while holding the lock leaves the map itself consistent.
    STATES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held by a consuming task for as long as it runs; dropping it (the task returned, panicked or
/// was cancelled) marks the consumer stopped.
pub(crate) struct Running {
    key: Key,
    ended: String,
}

impl Running {
    pub(crate) fn start(bus: &Bus, spec: ConsumerSpec) -> Running {
        let key = (bus.naming().prefix().to_owned(), spec.durable);
        let mut states = states();
        let state = states.entry(key.clone()).or_default();
        state.running += 1;
        state.ended = None;
        RUNNING.with_label_values(&[spec.durable]).inc();
        Running {
            key,
            ended: "panicked or was cancelled".to_owned(),
        }
    }

    /// Records how the task ended, for `/ready`.
    pub(crate) fn finish(mut self, result: &Result<(), BusError>) {
        self.ended = match result {
            Ok(()) => "stopped at shutdown".to_owned(),
            Err(e) => format!("failed: {e}"),
        };
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut states = states();
        let state = states.entry(self.key.clone()).or_default();
        state.running = state.running.saturating_sub(1);
        state.ended = Some(std::mem::take(&mut self.ended));
        RUNNING.with_label_values(&[self.key.1]).dec();
    }
}

/// The `/ready` check of a service's consumers: not ready while any of them is not running in
/// this process (never started, or ended), naming it and why it ended.
pub struct ConsumersCheck {
    prefix: String,
    consumers: Vec<&'static str>,
}

impl ConsumersCheck {
    pub fn new(bus: &Bus, consumers: &[ConsumerSpec]) -> ConsumersCheck {
        ConsumersCheck {
            prefix: bus.naming().prefix().to_owned(),
            consumers: consumers.iter().map(|c| c.durable).collect(),
        }
    }

    fn evaluate(&self) -> Result<String, String> {
        let states = states();
        let stopped: Vec<String> = self
            .consumers
            .iter()
            .filter_map(|&name| match states.get(&(self.prefix.clone(), name)) {
                Some(state) if state.running > 0 => None,
                Some(State {
                    ended: Some(why), ..
                }) => Some(format!("{name} {why}")),
                _ => Some(format!("{name} not started")),
            })
            .collect();
        if stopped.is_empty() {
            Ok(format!("running: {}", self.consumers.join(", ")))
        } else {
            Err(stopped.join("; "))
        }
    }
}

impl daarion_telemetry::Check for ConsumersCheck {
    fn name(&self) -> &str {
        "consumers"
    }
    fn check(&self) -> BoxFuture<'_, daarion_telemetry::CheckResult> {
        let result = self.evaluate();
        Box::pin(async move { result })
    }
}

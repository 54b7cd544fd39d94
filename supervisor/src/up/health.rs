//! `ops.health` on the bus: every unit state change, published by one task so that a slow or
//! absent NATS never holds up supervision. Units hand events over with `try_send` on a bounded
//! queue; what cannot be queued or published is dropped and counted.

use std::time::Duration;

use daarion_bus::events::OpsHealth;
use daarion_bus::{Bus, Envelope};
use daarion_config::BusConfig;
use tokio::sync::mpsc;

use super::metrics::{HEALTH_EVENTS_DROPPED, HEALTH_EVENTS_PUBLISHED};

const QUEUE: usize = 256;
/// Bounds one connect or publish: the bundled NATS may not be up yet, or gone at shutdown.
const BUS_TIMEOUT: Duration = Duration::from_secs(2);

/// The units' end of the queue.
#[derive(Clone)]
pub struct HealthEvents {
    tx: mpsc::Sender<OpsHealth>,
}

impl HealthEvents {
    /// Starts the publisher; it ends once every `HealthEvents` is dropped and the queue is
    /// drained.
    pub fn spawn(bus: BusConfig) -> (HealthEvents, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (HealthEvents { tx }, tokio::spawn(publish(bus, rx)))
    }

    /// Never blocks: a full queue drops the event.
    pub fn send(&self, event: OpsHealth) {
        if self.tx.try_send(event).is_err() {
            HEALTH_EVENTS_DROPPED
                .with_label_values(&["queue_full"])
                .inc();
        }
    }
}

async fn publish(config: BusConfig, mut rx: mpsc::Receiver<OpsHealth>) {
    let mut bus: Option<Bus> = None;
    while let Some(event) = rx.recv().await {
        if bus.is_none() {
            bus = connect(&config).await;
        }
        let Some(connected) = &bus else {
            HEALTH_EVENTS_DROPPED
                .with_label_values(&["bus_unavailable"])
                .inc();
            continue;
        };
        let envelope = Envelope::event("supervisor", event);
        match tokio::time::timeout(BUS_TIMEOUT, connected.publish(&envelope)).await {
            Ok(Ok(_)) => HEALTH_EVENTS_PUBLISHED.inc(),
            outcome => {
                let error = match outcome {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {BUS_TIMEOUT:?}"),
                };
                tracing::debug!(%error, "ops.health not published");
                HEALTH_EVENTS_DROPPED
                    .with_label_values(&["bus_unavailable"])
                    .inc();
                // Reconnect for the next one: the bundled NATS may have restarted.
                bus = None;
            }
        }
    }
}

/// A connection with the AUDIT stream in place (the first events may come before any service
/// has declared the topology).
async fn connect(config: &BusConfig) -> Option<Bus> {
    let attempt = async {
        let bus = Bus::connect(config, "supervisor-health")
            .await
            .map_err(|e| e.to_string())?;
        bus.ensure_topology().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(bus)
    };
    match tokio::time::timeout(BUS_TIMEOUT * 2, attempt).await {
        Ok(Ok(bus)) => Some(bus),
        Ok(Err(error)) => {
            tracing::debug!(%error, "ops.health: bus not reachable");
            None
        }
        Err(_) => None,
    }
}

//! The bus as the server sees it, polled into Prometheus gauges.
//!
//! Why polled: a consumer's own view (what a delivery tells it) stops changing exactly when the
//! consumer is stuck or dead, so lag read from deliveries freezes at its last healthy value.
//! [`watch`] asks JetStream instead, every [`EVERY`], whether or not anything is delivered. It
//! runs once per appliance (in the supervisor); the gauges it sets are:
//!
//! - `daarion_bus_consumer_pending{consumer}`: stored for the consumer, not yet delivered
//!   (`num_pending`), the queue lag by count.
//! - `daarion_bus_consumer_ack_pending{consumer}`: delivered, not yet acknowledged (in a handler,
//!   or waiting for a redelivery).
//! - `daarion_bus_consumer_redelivered{consumer}`: of those, delivered more than once.
//! - `daarion_bus_consumer_oldest_unacked_age_seconds{consumer}`: now minus the stored time of
//!   the first message after the consumer's ack floor that its filter takes: the oldest message
//!   not yet done. 0 when nothing is pending or unacknowledged. It keeps growing while a
//!   consumer is stuck, which is what the lag by age alert is for.
//! - `daarion_bus_dead_letters{consumer}`: messages in `DEAD_LETTERS` under
//!   `deadletter.<consumer>`, waiting for a person.
//! - `daarion_bus_stream_bytes{stream}` and `daarion_bus_stream_max_bytes{stream}` (0 when the
//!   stream has no byte limit).
//! - `daarion_bus_stats_up`: 1 when the last poll read everything it asked for, 0 when it did
//!   not (NATS unreachable, or a stream or consumer of the topology missing): the other gauges
//!   are then stale. A failed poll never ends the poller; the next one tries again.
//!
//! Labels are the base names of the topology (`parser-pipeline`, `MESSAGES`), without the
//! deployment's prefix, so they are bounded.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::stream::RawMessageErrorKind;
use futures::TryStreamExt;
use tokio_util::sync::CancellationToken;

use crate::metrics::{
    ACK_PENDING, DEAD_LETTERS, OLDEST_UNACKED_AGE, PENDING, REDELIVERED, STATS_UP, STREAM_BYTES,
    STREAM_MAX_BYTES,
};
use crate::topology::{self, StreamSpec};
use crate::{Bus, BusError, ConsumerSpec};

/// How often the supervisor polls: a few scrapes' worth, and cheap for the server (two small
/// requests per consumer, one per stream).
pub const EVERY: Duration = Duration::from_secs(15);

/// Polls `consumers` and `streams` every `every` until `shutdown`, setting the gauges above.
pub async fn watch(
    bus: Bus,
    consumers: Vec<ConsumerSpec>,
    streams: Vec<StreamSpec>,
    every: Duration,
    shutdown: CancellationToken,
) {
    // A poll slower than this counts as failed, so a hung server shows as `stats_up 0` soon.
    let timeout = every.clamp(Duration::from_secs(2), Duration::from_secs(10));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut was_up = true;
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let outcome = tokio::time::timeout(timeout, poll(&bus, &consumers, &streams)).await;
        let up = match outcome {
            Ok(Ok(())) => true,
            // Said once per outage, not every 15 s.
            Ok(Err(e)) if was_up => {
                tracing::warn!(error = %e, "bus statistics not read");
                false
            }
            Err(_) if was_up => {
                tracing::warn!(?timeout, "bus statistics not read in time");
                false
            }
            _ => false,
        };
        if up && !was_up {
            tracing::info!("bus statistics read again");
        }
        STATS_UP.set(i64::from(up));
        was_up = up;
    }
}

/// One poll: sets the gauges of everything it could read and returns the first failure.
pub async fn poll(
    bus: &Bus,
    consumers: &[ConsumerSpec],
    streams: &[StreamSpec],
) -> Result<(), BusError> {
    let state = bus.client().connection_state();
    if state != async_nats::connection::State::Connected {
        return Err(BusError::Connect {
            url: daarion_config::redact_url(&bus.config().url),
            message: state.to_string(),
        });
    }
    let mut first_error = None;
    let mut keep = |result: Result<(), BusError>| {
        if let Err(e) = result {
            tracing::debug!(error = %e, "bus statistics");
            first_error.get_or_insert(e);
        }
    };
    for spec in consumers {
        keep(consumer(bus, spec).await);
    }
    keep(dead_letters(bus, consumers).await);
    for spec in streams {
        keep(stream(bus, spec).await);
    }
    first_error.map_or(Ok(()), Err)
}

async fn consumer(bus: &Bus, spec: &ConsumerSpec) -> Result<(), BusError> {
    let err = |message: String| BusError::Consumer {
        consumer: spec.durable.to_owned(),
        message,
    };
    let stream = bus
        .jetstream()
        .get_stream_no_info(bus.naming().stream(spec.stream))
        .await
        .map_err(|e| err(e.to_string()))?;
    let info = stream
        .consumer_info(spec.durable)
        .await
        .map_err(|e| err(e.to_string()))?;
    let label = [spec.durable];
    PENDING
        .with_label_values(&label)
        .set(clamp_i64(info.num_pending));
    ACK_PENDING
        .with_label_values(&label)
        .set(clamp_i64(info.num_ack_pending as u64));
    REDELIVERED
        .with_label_values(&label)
        .set(clamp_i64(info.num_redelivered as u64));

    let age = if info.num_pending == 0 && info.num_ack_pending == 0 {
        0.0
    } else {
        // The first message after the floor that this consumer takes is, by the floor's
        // definition, one it has not acknowledged (acked or terminated ones move the floor).
        let filter = if info.config.filter_subject.is_empty() {
            ">".to_owned()
        } else {
            info.config.filter_subject.clone()
        };
        match stream
            .get_first_raw_message_by_subject(&filter, info.ack_floor.stream_sequence + 1)
            .await
        {
            Ok(message) => (time::OffsetDateTime::now_utc() - message.time)
                .as_seconds_f64()
                .max(0.0),
            // Expired or deleted under the consumer: nothing left to wait for.
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => 0.0,
            Err(e) => return Err(err(e.to_string())),
        }
    };
    OLDEST_UNACKED_AGE.with_label_values(&label).set(age);
    Ok(())
}

/// One request for all consumers: the dead-letter stream's message count per subject.
async fn dead_letters(bus: &Bus, consumers: &[ConsumerSpec]) -> Result<(), BusError> {
    let name = bus.naming().stream(topology::DEAD_LETTERS.name);
    let err = |message: String| BusError::Stream {
        stream: name.clone(),
        message,
    };
    let stream = bus
        .jetstream()
        .get_stream_no_info(&name)
        .await
        .map_err(|e| err(e.to_string()))?;
    let counts: HashMap<String, usize> = stream
        .info_with_subjects(bus.naming().subject("deadletter.>"))
        .await
        .map_err(|e| err(e.to_string()))?
        .try_collect()
        .await
        .map_err(|e| err(e.to_string()))?;
    for spec in consumers {
        let subject = bus
            .naming()
            .subject(&format!("deadletter.{}", spec.durable));
        let count = counts.get(&subject).copied().unwrap_or(0);
        DEAD_LETTERS
            .with_label_values(&[spec.durable])
            .set(clamp_i64(count as u64));
    }
    Ok(())
}

async fn stream(bus: &Bus, spec: &StreamSpec) -> Result<(), BusError> {
    let name = bus.naming().stream(spec.name);
    let stream = bus
        .jetstream()
        .get_stream(&name)
        .await
        .map_err(|e| BusError::Stream {
            stream: name.clone(),
            message: e.to_string(),
        })?;
    let info = stream.cached_info();
    STREAM_BYTES
        .with_label_values(&[spec.name])
        .set(clamp_i64(info.state.bytes));
    // The server says -1 for "no limit".
    STREAM_MAX_BYTES
        .with_label_values(&[spec.name])
        .set(info.config.max_bytes.max(0));
    Ok(())
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

//! Running a durable consumer: decode, handle, and only then ack.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::Message;
use async_nats::jetstream::consumer::PullConsumer;
use daarion_telemetry::{TRACEPARENT, TraceContext};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::envelope::decode;
use crate::events::Event;
use crate::metrics::{HANDLED, HANDLER_SECONDS};
use crate::running::Running;
use crate::{Bus, BusError, ConsumerSpec, Envelope, dead_letter};

/// How a handler failed, which decides what happens to the message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying (a dependency was down): the message is redelivered with backoff until
    /// `bus.max_deliveries`, then dead-lettered.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Retrying cannot help (invalid payload, unknown schema version): dead-lettered at once.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// Waits for a consumer task at shutdown and says how it ended: one that stopped with an error
/// or a panic has been doing nothing since, which the log must show.
pub async fn join_consumer(what: &str, task: tokio::task::JoinHandle<Result<(), BusError>>) {
    match task.await {
        Ok(Err(e)) => tracing::error!(error = %e, consumer = what, "consumer failed"),
        Err(e) => tracing::error!(error = %e, consumer = what, "consumer panicked"),
        Ok(Ok(())) => {}
    }
}

/// Consumes `spec` until `shutdown`, one message at a time, in stream order.
///
/// Each message is read as an event of `T`'s family ([`crate::envelope::decode`]): one that is not
/// (another family, a schema version newer than `T` knows, a payload that does not match) is
/// dead-lettered at once with the reason, never handed to the handler half-understood.
///
/// The handler's effect must be durable when it returns `Ok`; only then is the message acked
/// (and the ack confirmed by the server). A handler may see a message more than once (a crash
/// after the effect, before the ack), so effects must be idempotent on `Envelope::id`.
/// On shutdown the message in hand is finished first.
pub async fn consume<T, H, Fut>(
    bus: &Bus,
    spec: ConsumerSpec,
    shutdown: CancellationToken,
    handler: H,
) -> Result<(), BusError>
where
    T: Event,
    H: Fn(Envelope<T>) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    let running = Running::start(bus, spec);
    let result = consume_until(bus, spec, shutdown, handler).await;
    running.finish(&result);
    result
}

async fn consume_until<T, H, Fut>(
    bus: &Bus,
    spec: ConsumerSpec,
    shutdown: CancellationToken,
    handler: H,
) -> Result<(), BusError>
where
    T: Event,
    H: Fn(Envelope<T>) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    let consumer_err = |message: String| BusError::Consumer {
        consumer: spec.durable.to_owned(),
        message,
    };
    let stream = bus
        .jetstream()
        .get_stream(bus.naming().stream(spec.stream))
        .await
        .map_err(|e| consumer_err(e.to_string()))?;
    let consumer: PullConsumer = stream
        .get_consumer(spec.durable)
        .await
        .map_err(|e| consumer_err(e.to_string()))?;
    tracing::info!(consumer = spec.durable, "consuming");

    while !shutdown.is_cancelled() {
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = spec.durable, error = %e, "cannot pull; retrying");
                pause(&shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => handle_one(bus, spec, &message, &handler).await,
                Some(Err(e)) => {
                    // Missed heartbeats and the like: the stream re-subscribes by itself.
                    tracing::warn!(consumer = spec.durable, error = %e, "pull error");
                }
                None => break,
            }
        }
        pause(&shutdown, Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Like [`consume`], but up to `max_in_flight` messages are handled at once, except that
/// messages with the same key (say, one chat) are handled one at a time, in stream order.
/// Acks, retries and dead letters are exactly as in [`consume`]. On shutdown, pulling stops and
/// the messages in hand are finished.
pub async fn consume_keyed<T, K, H, Fut>(
    bus: &Bus,
    spec: ConsumerSpec,
    shutdown: CancellationToken,
    max_in_flight: usize,
    key_of: K,
    handler: H,
) -> Result<(), BusError>
where
    T: Event + Send + 'static,
    K: Fn(&T) -> String,
    H: Fn(Envelope<T>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    let running = Running::start(bus, spec);
    let result = consume_keyed_until(bus, spec, shutdown, max_in_flight, key_of, handler).await;
    running.finish(&result);
    result
}

async fn consume_keyed_until<T, K, H, Fut>(
    bus: &Bus,
    spec: ConsumerSpec,
    shutdown: CancellationToken,
    max_in_flight: usize,
    key_of: K,
    handler: H,
) -> Result<(), BusError>
where
    T: Event + Send + 'static,
    K: Fn(&T) -> String,
    H: Fn(Envelope<T>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send,
{
    use std::collections::HashMap;
    use std::sync::Arc;
    use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

    type Job = (Message, OwnedSemaphorePermit, Waiting);
    let consumer_err = |message: String| BusError::Consumer {
        consumer: spec.durable.to_owned(),
        message,
    };
    let consumer: PullConsumer = bus
        .jetstream()
        .get_stream(bus.naming().stream(spec.stream))
        .await
        .map_err(|e| consumer_err(e.to_string()))?
        .get_consumer(spec.durable)
        .await
        .map_err(|e| consumer_err(e.to_string()))?;
    tracing::info!(consumer = spec.durable, max_in_flight, "consuming by key");
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let workers = tokio_util::task::TaskTracker::new();
    let mut queues: HashMap<String, mpsc::UnboundedSender<Job>> = HashMap::new();
    let spawn_worker = |rx: mpsc::UnboundedReceiver<Job>| {
        let bus = bus.clone();
        let handler = handler.clone();
        workers.spawn(async move {
            let mut rx = rx;
            loop {
                let job = match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                    Ok(Some(job)) => job,
                    Ok(None) => return,
                    Err(_) => {
                        // Idle: refuse new work, finish what was already queued, and go.
                        rx.close();
                        while let Ok((message, _permit, waiting)) = rx.try_recv() {
                            drop(waiting);
                            handle_one(&bus, spec, &message, &handler).await;
                        }
                        return;
                    }
                };
                let (message, _permit, waiting) = job;
                // From here `handle_one` keeps it alive while it runs.
                drop(waiting);
                handle_one(&bus, spec, &message, &handler).await;
            }
        });
    };

    'pulling: while !shutdown.is_cancelled() {
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(consumer = spec.durable, error = %e, "cannot pull; retrying");
                pause(&shutdown, Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'pulling,
                next = messages.next() => next,
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(e)) => {
                    tracing::warn!(consumer = spec.durable, error = %e, "pull error");
                    continue;
                }
                None => break,
            };
            let permit = tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'pulling,
                permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            // An undecodable message gets the empty key; its handling dead-letters it.
            let key = decode::<T>(&message.payload)
                .map(|e| key_of(&e.payload))
                .unwrap_or_default();
            let waiting = keep_waiting(bus, &message);
            let mut job = (message, permit, waiting);
            loop {
                let sender = queues.entry(key.clone()).or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    spawn_worker(rx);
                    tx
                });
                match sender.send(job) {
                    Ok(()) => break,
                    Err(mpsc::error::SendError(back)) => {
                        // That key's worker just went idle; start another.
                        queues.remove(&key);
                        job = back;
                    }
                }
            }
            if queues.len() > 1024 {
                queues.retain(|_, tx| !tx.is_closed());
            }
        }
        pause(&shutdown, Duration::from_millis(200)).await;
    }
    drop(queues);
    workers.close();
    workers.wait().await;
    Ok(())
}

async fn pause(shutdown: &CancellationToken, duration: Duration) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(duration) => {}
    }
}

async fn handle_one<T, H, Fut>(bus: &Bus, spec: ConsumerSpec, message: &Message, handler: &H)
where
    T: Event,
    H: Fn(Envelope<T>) -> Fut,
    Fut: Future<Output = Result<(), HandlerError>>,
{
    // The lag (`daarion_bus_consumer_pending`) is polled by `stats`, not read here: a stuck
    // consumer has no deliveries to read it from.
    let (delivered, stream_sequence) = match message.info() {
        Ok(info) => (info.delivered, info.stream_sequence),
        Err(e) => {
            tracing::warn!(consumer = spec.durable, error = %e, "message without JetStream info");
            return;
        }
    };
    let decoded = decode::<T>(&message.payload);
    let parent = message
        .headers
        .as_ref()
        .and_then(|h| h.get(TRACEPARENT))
        .and_then(|v| TraceContext::parse(v.as_str()).ok());
    let ctx = match (&parent, &decoded) {
        (Some(p), _) => p.child(),
        (None, Ok(env)) => {
            TraceContext::from_trace_id(&env.trace_id).unwrap_or_else(TraceContext::new_root)
        }
        (None, Err(_)) => TraceContext::new_root(),
    };
    let event_id = decoded
        .as_ref()
        .map(|e| e.id.to_string())
        .unwrap_or_default();
    let span = tracing::info_span!(
        "message",
        consumer = spec.durable,
        subject = %message.subject,
        event_id = %event_id,
        trace_id = %ctx.trace_id(),
        span_id = %ctx.span_id(),
        parent_id = parent.as_ref().map(|p| p.span_id()).as_deref(),
        delivery = delivered,
    );

    let work = async {
        let mut envelope = match decoded {
            Ok(envelope) => envelope,
            Err(e) => {
                let reason = e.to_string();
                return dead_letter(bus, spec, message, stream_sequence, delivered, &reason).await;
            }
        };
        // Delivered past the limit without an outcome: every earlier try ended with no ack and
        // no nak (the handler panicked, or the process died mid-message). Trying again would
        // loop forever, so it goes where a person will see it.
        if delivered > bus.config().max_deliveries {
            let reason = format!(
                "delivered {delivered} times without an outcome (the handler panicked or its \
                 process died while handling it)"
            );
            return dead_letter(bus, spec, message, stream_sequence, delivered, &reason).await;
        }
        envelope.delivery = crate::Delivery {
            count: u64::try_from(delivered).unwrap_or(0),
            last: delivered >= bus.config().max_deliveries,
        };
        let started = Instant::now();
        let result = with_progress(bus, message, handler(envelope)).await;
        HANDLER_SECONDS
            .with_label_values(&[spec.durable])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => match message.double_ack().await {
                Ok(()) => {
                    HANDLED.with_label_values(&[spec.durable, "acked"]).inc();
                    tracing::debug!("handled");
                }
                // The effect is durable; the redelivery this causes is absorbed by idempotency.
                Err(e) => tracing::warn!(error = %e, "ack not confirmed; expect a redelivery"),
            },
            Err(HandlerError::Permanent(reason)) => {
                dead_letter(bus, spec, message, stream_sequence, delivered, &reason).await;
            }
            Err(HandlerError::Transient(reason)) if delivered >= bus.config().max_deliveries => {
                let reason = format!("gave up after {delivered} deliveries: {reason}");
                dead_letter(bus, spec, message, stream_sequence, delivered, &reason).await;
            }
            Err(HandlerError::Transient(reason)) => {
                let delay = backoff(bus.config().retry_backoff_ms, delivered);
                tracing::warn!(%reason, retry_in_ms = delay.as_millis() as u64, "handler failed; will retry");
                HANDLED.with_label_values(&[spec.durable, "retried"]).inc();
                if let Err(e) = message.ack_with(AckKind::Nak(Some(delay))).await {
                    tracing::warn!(error = %e, "nak failed; the server redelivers after ack_wait");
                }
            }
        }
    };
    ctx.scope(work).instrument(span).await;
}

/// Runs the handler, telling the server "still working" every half ack-wait so a slow handler
/// is not raced by a redelivery of the same message.
/// How often a message in hand is reported "in progress": half of `ack_wait`.
fn progress_period(bus: &Bus) -> Duration {
    Duration::from_secs(bus.config().ack_wait_secs).max(Duration::from_secs(2)) / 2
}

/// A message queued behind another of its key is not lost, only waiting; without word from
/// us JetStream would redeliver it after `ack_wait` and it would be handled twice (a user
/// answered twice). Until its key's worker takes it, it is reported "in progress" like a
/// message in hand; dropping the guard stops that.
struct Waiting(tokio::task::JoinHandle<()>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn keep_waiting(bus: &Bus, message: &Message) -> Waiting {
    let period = progress_period(bus);
    let message = message.clone();
    Waiting(tokio::spawn(async move {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            ticker.tick().await;
            if let Err(e) = message.ack_with(AckKind::Progress).await {
                tracing::debug!(error = %e, "progress ack for a waiting message failed");
            }
        }
    }))
}

async fn with_progress<F: Future>(bus: &Bus, message: &Message, work: F) -> F::Output {
    let period = progress_period(bus);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = ticker.tick() => {
                if let Err(e) = message.ack_with(AckKind::Progress).await {
                    tracing::debug!(error = %e, "progress ack failed");
                }
            }
        }
    }
}

/// `base`, doubled per delivery after the first, at most one minute.
fn backoff(base_ms: u64, delivered: i64) -> Duration {
    let exponent = (delivered.max(1) - 1).min(16) as u32;
    Duration::from_millis(base_ms.saturating_mul(1 << exponent)).min(Duration::from_secs(60))
}

/// Copies the message to `deadletter.<consumer>` with the reason, and terminates the original
/// only once the copy is stored; if the copy fails the original is retried later instead.
async fn dead_letter(
    bus: &Bus,
    spec: ConsumerSpec,
    message: &Message,
    stream_sequence: u64,
    delivered: i64,
    reason: &str,
) {
    let mut headers = HeaderMap::new();
    if let Some(original) = &message.headers {
        for (name, values) in original.iter() {
            if name.to_string().eq_ignore_ascii_case("Nats-Msg-Id") {
                continue;
            }
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    // Stable id: a crash between the copy and the term must not store the copy twice.
    headers.insert(
        async_nats::header::NATS_MESSAGE_ID,
        format!("dead:{}:{stream_sequence}", spec.durable),
    );
    let one_line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(1024)
        .collect();
    headers.insert(dead_letter::REASON, one_line.as_str());
    headers.insert(dead_letter::CONSUMER, spec.durable);
    headers.insert(dead_letter::SUBJECT, message.subject.as_str());
    headers.insert(
        dead_letter::STREAM_SEQUENCE,
        stream_sequence.to_string().as_str(),
    );
    headers.insert(dead_letter::DELIVERIES, delivered.to_string().as_str());

    let subject = bus
        .naming()
        .subject(&format!("deadletter.{}", spec.durable));
    match bus
        .publish_raw(subject, headers, message.payload.clone())
        .await
    {
        Ok(_) => {
            tracing::error!(reason = %one_line, "message dead-lettered");
            HANDLED
                .with_label_values(&[spec.durable, "dead_lettered"])
                .inc();
            if let Err(e) = message.ack_with(AckKind::Term).await {
                tracing::warn!(error = %e, "term failed; the copy is deduplicated on redelivery");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "dead-letter publish failed; retrying the message later");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(500, 1), Duration::from_millis(500));
        assert_eq!(backoff(500, 2), Duration::from_millis(1000));
        assert_eq!(backoff(500, 4), Duration::from_millis(4000));
        assert_eq!(backoff(500, 40), Duration::from_secs(60));
    }
}

//! The event bus against the real NATS JetStream server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use daarion_bus::testing::{TestBus, eventually};
use daarion_bus::topology::{AUDIT_LOGGER, CONSUMERS, MEMORY_INDEXER, STREAMS};
use daarion_bus::{Ensured, Envelope, HandlerError, consume, dead_letter};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn topology_is_created_once_and_then_left_alone() {
    let t = TestBus::new().await; // first ensure ran inside
    let js = t.bus.jetstream();
    // Created by the helper: every stream with the prefixed subjects, every consumer.
    for spec in STREAMS {
        let mut stream = js
            .get_stream(t.bus.naming().stream(spec.name))
            .await
            .unwrap();
        let info = stream.info().await.unwrap();
        let mut subjects = info.config.subjects.clone();
        subjects.sort();
        assert_eq!(subjects, spec.subjects(t.bus.naming()), "{}", spec.name);
    }
    for spec in CONSUMERS {
        let stream = js
            .get_stream(t.bus.naming().stream(spec.stream))
            .await
            .unwrap();
        let info = stream.consumer_info(spec.durable).await.unwrap();
        assert_eq!(
            info.config.filter_subject,
            t.bus.naming().subject(spec.filter)
        );
        assert_eq!(info.config.durable_name.as_deref(), Some(spec.durable));
    }
    let created_at = js
        .get_stream(t.bus.naming().stream("MESSAGES"))
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .created;

    let again = t.bus.ensure_topology().await.unwrap();
    assert!(!again.changed(), "{again:?}");
    assert_eq!(again.streams.len(), 6);
    assert_eq!(
        again.consumers.len(),
        daarion_bus::topology::CONSUMERS.len()
    );
    let created_again = js
        .get_stream(t.bus.naming().stream("MESSAGES"))
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .created;
    assert_eq!(created_at, created_again);
    t.cleanup().await;
}

#[tokio::test]
async fn drifted_stream_and_consumer_are_updated() {
    let t = TestBus::new().await;
    let js = t.bus.jetstream();
    let name = t.bus.naming().stream("AUDIT");
    let mut config = js
        .get_stream(&name)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    config.duplicate_window = Duration::from_secs(5);
    js.update_stream(config).await.unwrap();

    let report = t.bus.ensure_topology().await.unwrap();
    let audit = report.streams.iter().find(|(n, _)| *n == name).unwrap();
    assert_eq!(audit.1, Ensured::Updated);
    let info = js
        .get_stream(&name)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(info.duplicate_window, Duration::from_secs(120));

    // A consumer changed by hand comes back to the topology's settings.
    let mut tweaked = t.config.clone();
    tweaked.bus.ack_wait_secs = 9;
    let other = daarion_bus::Bus::connect(&tweaked.bus, "test")
        .await
        .unwrap();
    let report = other.ensure_topology().await.unwrap();
    assert!(
        report.consumers.iter().all(|(_, e)| *e == Ensured::Updated),
        "{report:?}"
    );
    let report = t.bus.ensure_topology().await.unwrap();
    assert!(
        report.consumers.iter().all(|(_, e)| *e == Ensured::Updated),
        "{report:?}"
    );
    assert!(!t.bus.ensure_topology().await.unwrap().changed());
    t.cleanup().await;
}

#[tokio::test]
async fn same_event_published_twice_is_consumed_once() {
    let t = TestBus::new().await;
    let event = Envelope::new("audit.action", "test", json!({"who": "admin", "what": "x"}));
    let first = t.bus.publish(&event).await.unwrap();
    let second = t.bus.publish(&event).await.unwrap();
    assert!(!first.duplicate);
    assert!(
        second.duplicate,
        "the server must recognise the Nats-Msg-Id"
    );
    assert_eq!(first.stream_sequence, second.stream_sequence);
    assert_eq!(t.stream_len("AUDIT").await, 1);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let consumer = {
        let seen = seen.clone();
        t.spawn_consumer(AUDIT_LOGGER, move |e: Envelope<Value>| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(e);
                Ok(())
            }
        })
    };
    t.drained("AUDIT", "audit-logger").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    consumer.stop().await.unwrap();
    let mut seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    // The consumer says which delivery it was; the rest is the event as published.
    assert_eq!(
        seen[0].delivery,
        daarion_bus::Delivery {
            count: 1,
            last: false
        }
    );
    seen[0].delivery = daarion_bus::Delivery::default();
    assert_eq!(seen[0], event);
    t.cleanup().await;
}

#[tokio::test]
async fn transient_failure_is_retried_then_acked() {
    let t = TestBus::new().await;
    t.bus
        .publish(&Envelope::new(
            "memory.store.fact",
            "test",
            json!({"fact": 1}),
        ))
        .await
        .unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let attempts = attempts.clone();
        t.spawn_consumer(MEMORY_INDEXER, move |_: Envelope<Value>| {
            let n = attempts.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(HandlerError::Transient("index not ready".into()))
                } else {
                    Ok(())
                }
            }
        })
    };
    eventually("a second attempt", || attempts.load(Ordering::SeqCst) >= 2).await;
    t.drained("MEMORY", "memory-indexer").await;
    consumer.stop().await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(t.stream_len("DEAD_LETTERS").await, 0);
    t.cleanup().await;
}

async fn dead_letter_headers(t: &TestBus) -> async_nats::HeaderMap {
    let stream = t
        .bus
        .jetstream()
        .get_stream(t.bus.naming().stream("DEAD_LETTERS"))
        .await
        .unwrap();
    let message = stream.get_raw_message(1).await.unwrap();
    message.headers
}

#[tokio::test]
async fn failing_handler_is_dead_lettered_after_the_limit_with_its_reason() {
    let t = TestBus::new().await;
    let event = Envelope::new("memory.store.fact", "test", json!({"fact": "boom"}));
    t.bus.publish(&event).await.unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let attempts = attempts.clone();
        t.spawn_consumer(MEMORY_INDEXER, move |_: Envelope<Value>| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Err(HandlerError::Transient("database is down".into())) }
        })
    };
    t.drained("MEMORY", "memory-indexer").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    consumer.stop().await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "max_deliveries = 3");
    assert_eq!(t.stream_len("DEAD_LETTERS").await, 1);

    let headers = dead_letter_headers(&t).await;
    let reason = headers.get(dead_letter::REASON).unwrap().as_str();
    assert!(reason.contains("gave up after 3 deliveries"), "{reason}");
    assert!(reason.contains("database is down"), "{reason}");
    assert_eq!(
        headers.get(dead_letter::CONSUMER).unwrap().as_str(),
        "memory-indexer"
    );
    assert_eq!(
        headers.get(dead_letter::SUBJECT).unwrap().as_str(),
        t.bus.naming().subject("memory.store.fact")
    );
    assert!(
        headers.get("traceparent").is_some(),
        "trace survives into the dead letter"
    );
    t.cleanup().await;
}

#[tokio::test]
async fn permanent_failure_and_garbage_are_dead_lettered_at_once() {
    let t = TestBus::new().await;
    t.bus
        .publish(&Envelope::new("audit.action", "test", json!({"v": 99})))
        .await
        .unwrap();
    // Not an envelope at all.
    t.bus
        .jetstream()
        .publish(t.bus.naming().subject("audit.action"), "not json".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let attempts = Arc::new(AtomicUsize::new(0));
    let consumer = {
        let attempts = attempts.clone();
        t.spawn_consumer(AUDIT_LOGGER, move |_: Envelope<Value>| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Err(HandlerError::Permanent("unknown schema version 99".into())) }
        })
    };
    t.drained("AUDIT", "audit-logger").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    consumer.stop().await.unwrap();
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        1,
        "no retry for a permanent failure"
    );
    assert_eq!(t.stream_len("DEAD_LETTERS").await, 2);
    let stream = t
        .bus
        .jetstream()
        .get_stream(t.bus.naming().stream("DEAD_LETTERS"))
        .await
        .unwrap();
    let mut reasons = Vec::new();
    for seq in 1..=2 {
        let m = stream.get_raw_message(seq).await.unwrap();
        reasons.push(m.headers.get(dead_letter::REASON).unwrap().to_string());
    }
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("unknown schema version 99")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("undecodable envelope")),
        "{reasons:?}"
    );
    t.cleanup().await;
}

#[tokio::test]
async fn a_typed_consumer_dead_letters_newer_schemas_and_other_families_unhandled() {
    use daarion_bus::events::{AuditRecord, MemoryStore};
    let t = TestBus::new().await;
    let record = AuditRecord {
        actor: "admin".into(),
        action: "prompt.activate".into(),
        target: None,
        outcome: "ok".into(),
        before: None,
        after: None,
        detail: None,
    };
    // Read: the family with a qualifier, at the version this build writes.
    t.bus
        .publish(&Envelope::event_as("action", "test", record.clone()))
        .await
        .unwrap();
    // Not read: written by a newer producer.
    t.bus
        .publish(&Envelope::event_as("action", "test", record.clone()).with_schema_version(2))
        .await
        .unwrap();
    // Not read: another family's payload on the audit subject.
    let stray = MemoryStore {
        kind: "fact".into(),
        id: uuid::Uuid::nil(),
    };
    t.bus
        .publish(&Envelope::new("audit.action", "test", stray).with_schema_version(1))
        .await
        .unwrap();
    let handled = Arc::new(Mutex::new(Vec::new()));
    let consumer = {
        let handled = handled.clone();
        t.spawn_consumer(AUDIT_LOGGER, move |e: Envelope<AuditRecord>| {
            handled.lock().unwrap().push(e.payload);
            async { Ok(()) }
        })
    };
    t.drained("AUDIT", "audit-logger").await;
    consumer.stop().await.unwrap();
    assert_eq!(*handled.lock().unwrap(), vec![record]);
    assert_eq!(t.stream_len("DEAD_LETTERS").await, 2);
    let stream = t
        .bus
        .jetstream()
        .get_stream(t.bus.naming().stream("DEAD_LETTERS"))
        .await
        .unwrap();
    let mut reasons = Vec::new();
    for seq in 1..=2 {
        let m = stream.get_raw_message(seq).await.unwrap();
        reasons.push(m.headers.get(dead_letter::REASON).unwrap().to_string());
    }
    assert!(reasons[0].contains("schema version 2"), "{reasons:?}");
    assert!(
        reasons[1].contains("does not match its schema"),
        "{reasons:?}"
    );
    t.cleanup().await;
}

mod trace {
    //! A trace id set on an HTTP request reaches the event's headers and the consumer's span.

    use super::*;
    use axum::Router;
    use axum::routing::post;
    use daarion_bus::Bus;
    use daarion_http::build_app;
    use daarion_telemetry::{Readiness, TraceContext};
    use tracing::Subscriber;
    use tracing::span::{Attributes, Id};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    /// Records (span name, trace_id) for every span that carries a trace_id.
    #[derive(Clone, Default)]
    struct SpanCapture(Arc<Mutex<Vec<(String, String)>>>);

    struct TraceIdVisitor(Option<String>);
    impl tracing::field::Visit for TraceIdVisitor {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "trace_id" {
                self.0 = Some(format!("{value:?}"));
            }
        }
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanCapture {
        fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            let mut v = TraceIdVisitor(None);
            attrs.record(&mut v);
            if let Some(trace_id) = v.0 {
                self.0
                    .lock()
                    .unwrap()
                    .push((attrs.metadata().name().to_owned(), trace_id));
            }
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn http_trace_reaches_event_headers_and_consumer_span() {
        let capture = SpanCapture::default();
        let _guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

        let t = TestBus::new().await;
        let bus = t.bus.clone();
        let routes = Router::new().route(
            "/act",
            post(move || {
                let bus = bus.clone();
                async move {
                    let event = Envelope::new("audit.action", "test", json!({"did": "act"}));
                    bus.publish(&event).await.unwrap();
                    event.trace_id
                }
            }),
        );
        let app = build_app("test", routes, Readiness::new(), &t.config.http);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let trace_id = "0af7651916cd43dd8448eb211c80319c";
        let body = reqwest::Client::new()
            .post(format!("http://{addr}/act"))
            .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, trace_id, "the envelope carries the request's trace");

        // The stored message's traceparent header continues the same trace.
        let stream = t
            .bus
            .jetstream()
            .get_stream(t.bus.naming().stream("AUDIT"))
            .await
            .unwrap();
        let stored = stream.get_raw_message(1).await.unwrap();
        let header = stored.headers.get("traceparent").unwrap().as_str();
        assert_eq!(TraceContext::parse(header).unwrap().trace_id(), trace_id);

        // Other tests of this binary run consumers on threads without a subscriber; should one
        // have registered the consumer's span first, its cached interest is computed again here
        // with this thread's subscriber in view.
        tracing::callsite::rebuild_interest_cache();
        let handled = Arc::new(Mutex::new(None));
        let shutdown = CancellationToken::new();
        let consumer_bus: Bus = t.bus.clone();
        let consumer = {
            let (handled, shutdown) = (handled.clone(), shutdown.clone());
            async move {
                consume(
                    &consumer_bus,
                    AUDIT_LOGGER,
                    shutdown,
                    |_: Envelope<Value>| {
                        let handled = handled.clone();
                        async move {
                            *handled.lock().unwrap() =
                                TraceContext::current().map(|c| c.trace_id());
                            Ok(())
                        }
                    },
                )
                .await
            }
        };
        let stopper = async {
            for _ in 0..200 {
                if handled.lock().unwrap().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            shutdown.cancel();
        };
        let (result, ()) = tokio::join!(consumer, stopper);
        result.unwrap();

        assert_eq!(handled.lock().unwrap().as_deref(), Some(trace_id));
        let spans = capture.0.lock().unwrap().clone();
        assert!(
            spans
                .iter()
                .any(|(name, id)| name == "request" && id == trace_id),
            "{spans:?}"
        );
        assert!(
            spans
                .iter()
                .any(|(name, id)| name == "message" && id == trace_id),
            "consumer span must carry the trace id: {spans:?}"
        );
        t.cleanup().await;
    }
}

#[tokio::test]
async fn keyed_consumer_keeps_each_keys_order_and_runs_keys_in_parallel() {
    use daarion_bus::consume_keyed;
    use daarion_bus::topology::TELEGRAM_UPDATES;
    let t = TestBus::new().await;
    for i in 0..5 {
        for chat in ["a", "b", "c"] {
            let event = Envelope::new(
                "message.received.telegram",
                "test",
                json!({"chat": chat, "n": i}),
            );
            t.bus.publish(&event).await.unwrap();
        }
    }
    let seen = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let task = {
        let (bus, seen, in_flight, most, shutdown) = (
            t.bus.clone(),
            seen.clone(),
            in_flight.clone(),
            most.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            consume_keyed(
                &bus,
                TELEGRAM_UPDATES,
                shutdown,
                8,
                |p: &Value| p["chat"].as_str().unwrap_or_default().to_owned(),
                move |e: Envelope<Value>| {
                    let (seen, in_flight, most) = (seen.clone(), in_flight.clone(), most.clone());
                    async move {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(40)).await;
                        seen.lock().unwrap().push((
                            e.payload["chat"].as_str().unwrap().to_owned(),
                            e.payload["n"].as_u64().unwrap(),
                        ));
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    }
                },
            )
            .await
        })
    };
    eventually("all 15 handled", || seen.lock().unwrap().len() == 15).await;
    t.drained("MESSAGES", "telegram-updates").await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let seen = seen.lock().unwrap().clone();
    for chat in ["a", "b", "c"] {
        let order: Vec<u64> = seen
            .iter()
            .filter(|(c, _)| c == chat)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(order, [0, 1, 2, 3, 4], "chat {chat}");
    }
    let most = most.load(Ordering::SeqCst);
    assert!(
        (2..=3).contains(&most),
        "chats ran in parallel, one message each: {most}"
    );
    t.cleanup().await;
}

#[tokio::test]
async fn a_message_waiting_behind_a_slow_one_of_its_key_is_handled_once() {
    use daarion_bus::consume_keyed;
    use daarion_bus::topology::TELEGRAM_UPDATES;
    let t = TestBus::new().await;
    // The first message of the key takes longer than `ack_wait` (5 s in tests); the second
    // waits behind it all that time and must not be redelivered as if it were lost.
    for n in 0..2 {
        let event = Envelope::new("message.received.telegram", "test", json!({"n": n}));
        t.bus.publish(&event).await.unwrap();
    }
    let handled = Arc::new(Mutex::new(Vec::<u64>::new()));
    let shutdown = CancellationToken::new();
    let ack_wait = Duration::from_secs(t.bus.config().ack_wait_secs);
    let task = {
        let (bus, handled, shutdown) = (t.bus.clone(), handled.clone(), shutdown.clone());
        tokio::spawn(async move {
            consume_keyed(
                &bus,
                TELEGRAM_UPDATES,
                shutdown,
                8,
                |_: &Value| "one chat".to_owned(),
                move |e: Envelope<Value>| {
                    let handled = handled.clone();
                    async move {
                        let n = e.payload["n"].as_u64().unwrap();
                        if n == 0 {
                            tokio::time::sleep(ack_wait * 3 / 2).await;
                        }
                        handled.lock().unwrap().push(n);
                        Ok(())
                    }
                },
            )
            .await
        })
    };
    // `eventually` gives up after 10 s; the slow first message alone takes 7.5.
    for _ in 0..600 {
        if handled.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.drained("MESSAGES", "telegram-updates").await;
    // A redelivery would have come by now (it is due `ack_wait` after the first delivery).
    tokio::time::sleep(ack_wait).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(*handled.lock().unwrap(), [0, 1]);
    t.cleanup().await;
}

#[tokio::test]
async fn a_handler_that_panics_every_time_ends_in_dead_letters_not_an_endless_loop() {
    use daarion_bus::consume_keyed;
    use daarion_bus::topology::TELEGRAM_UPDATES;
    // No ack and no nak: JetStream redelivers after `ack_wait`, and without a bound on those
    // deliveries a poison message would be retried forever.
    let t = TestBus::with(|c| c.bus.ack_wait_secs = 1).await;
    let event = Envelope::new("message.received.telegram", "test", json!({"poison": true}));
    t.bus.publish(&event).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let shutdown = CancellationToken::new();
    let task = {
        let (bus, calls, shutdown) = (t.bus.clone(), calls.clone(), shutdown.clone());
        tokio::spawn(async move {
            consume_keyed(
                &bus,
                TELEGRAM_UPDATES,
                shutdown,
                4,
                |_: &Value| "one chat".to_owned(),
                move |_: Envelope<Value>| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async { panic!("a bug in the handler") }
                },
            )
            .await
        })
    };
    for _ in 0..300 {
        if t.stream_len("DEAD_LETTERS").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(t.stream_len("DEAD_LETTERS").await, 1, "dead-lettered");
    t.drained("MESSAGES", "telegram-updates").await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "max_deliveries = 3 tries");
    let headers = dead_letter_headers(&t).await;
    let reason = headers.get(dead_letter::REASON).unwrap().as_str();
    assert!(reason.contains("without an outcome"), "{reason}");
    t.cleanup().await;
}

//! A consumer task that ended shows in `daarion_bus_consumer_running` and on `/ready`.

mod support;

use std::time::Duration;

use daarion_bus::testing::TestBus;
use daarion_bus::{ConsumerSpec, ConsumersCheck, Envelope, HandlerError};
use daarion_telemetry::Readiness;
use serde_json::{Value, json};
use support::{consumer_gauge, own_consumer, wait_for};

const RUNNING: &str = "daarion_bus_consumer_running";

/// `/ready` of a service running `consumers`: whether it is ready, and what it says.
async fn ready(t: &TestBus, consumers: &[ConsumerSpec]) -> (bool, String) {
    let report = Readiness::new()
        .with_check(ConsumersCheck::new(&t.bus, consumers))
        .evaluate()
        .await;
    (report.ready, report.checks[0].detail.clone())
}

#[tokio::test]
async fn a_consumer_is_ready_while_it_runs_and_not_once_it_stopped() {
    let t = TestBus::new().await;
    let spec = own_consumer(&t, "AUDIT", "audit.>").await;

    let (ok, detail) = ready(&t, &[spec]).await;
    assert!(!ok);
    assert_eq!(detail, format!("{} not started", spec.durable));

    let consumer = t.spawn_consumer(spec, |_: Envelope<Value>| async { Ok(()) });
    wait_for("running", Duration::from_secs(5), || {
        consumer_gauge(RUNNING, spec.durable) == 1.0
    })
    .await;
    let (ok, detail) = ready(&t, &[spec]).await;
    assert!(ok, "{detail}");
    assert!(detail.contains(spec.durable), "{detail}");

    consumer.stop().await.unwrap();
    assert_eq!(consumer_gauge(RUNNING, spec.durable), 0.0);
    let (ok, detail) = ready(&t, &[spec]).await;
    assert!(!ok);
    assert_eq!(detail, format!("{} stopped at shutdown", spec.durable));
    t.cleanup().await;
}

async fn panics(_: Envelope<Value>) -> Result<(), HandlerError> {
    panic!("a bug in the handler")
}

#[tokio::test]
async fn a_panicked_consumer_is_named_on_ready() {
    let t = TestBus::new().await;
    let spec = own_consumer(&t, "AUDIT", "audit.>").await;
    let healthy = own_consumer(&t, "AUDIT", "audit.>").await;
    let healthy_consumer = t.spawn_consumer(healthy, |_: Envelope<Value>| async { Ok(()) });
    let panicking = t.spawn_consumer(spec, panics);
    wait_for("running", Duration::from_secs(5), || {
        consumer_gauge(RUNNING, spec.durable) == 1.0
    })
    .await;
    t.bus
        .publish(&Envelope::new("audit.action", "test", json!({"x": 1})))
        .await
        .unwrap();
    wait_for("the panic to end it", Duration::from_secs(10), || {
        consumer_gauge(RUNNING, spec.durable) == 0.0
    })
    .await;
    assert_eq!(consumer_gauge(RUNNING, healthy.durable), 1.0);
    let (ok, detail) = ready(&t, &[healthy, spec]).await;
    assert!(!ok);
    assert_eq!(
        detail,
        format!("{} panicked or was cancelled", spec.durable)
    );
    drop(panicking); // its task is gone; `stop` would re-raise the panic
    healthy_consumer.stop().await.unwrap();
    t.cleanup().await;
}

#[tokio::test]
async fn a_consumer_that_fails_at_start_says_why() {
    let t = TestBus::new().await;
    // Never created on the server: `consume` cannot attach and returns at once.
    let missing = ConsumerSpec {
        durable: "test-never-created",
        stream: "AUDIT",
        filter: "audit.>",
    };
    let consumer = t.spawn_consumer(missing, |_: Envelope<Value>| async { Ok(()) });
    let mut detail = String::new();
    for _ in 0..250 {
        let (ok, now) = ready(&t, &[missing]).await;
        detail = now;
        if !ok && !detail.ends_with("not started") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        detail.starts_with("test-never-created failed: consumer test-never-created"),
        "{detail}"
    );
    assert!(consumer.stop().await.is_err());
    assert_eq!(consumer_gauge(RUNNING, missing.durable), 0.0);
    t.cleanup().await;
}

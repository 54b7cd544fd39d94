//! The ops-logger: the supervisor's unit changes and the alerts that fired, from the bus into the
//! audit log, once per event id.

use std::time::Duration;

use daarion_bus::Envelope;
use daarion_bus::events::{Event, OpsAlert, OpsHealth};
use daarion_bus::testing::TestBus;
use daarion_db::TestDb;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn health(unit: &str) -> Envelope<OpsHealth> {
    Envelope::event(
        "supervisor",
        OpsHealth {
            unit: unit.into(),
            state: "failed".into(),
            previous: "ready".into(),
            cause: "exited with status 137".into(),
            restarts: 3,
        },
    )
}

/// Stores `event` on the stream as a second copy: without the message id the bus sets, so
/// JetStream's own deduplication cannot drop it and only the logger can keep it once.
async fn publish_copy<T: serde::Serialize>(t: &TestBus, event: &Envelope<T>) {
    let subject = t.bus.naming().subject(&event.event_type);
    t.bus
        .jetstream()
        .publish(subject, serde_json::to_vec(event).unwrap().into())
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn rows(db: &TestDb, action: &str, target: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = $1 AND target = $2")
        .bind(action)
        .bind(target)
        .fetch_one(&db.pool)
        .await
        .unwrap_or(0) // the table appears once the service has migrated
}

#[tokio::test]
async fn ops_events_are_stored_once_per_event_id() {
    let db = TestDb::new().await.unwrap();
    let t = TestBus::new().await;
    let mut config = t.config.clone();
    config.database.url = db.url.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(daarion_memory::run(config, listener, shutdown.clone()));

    let crashed = health("router");
    t.bus.publish(&crashed).await.unwrap();
    publish_copy(&t, &crashed).await;
    publish_copy(&t, &crashed).await;
    // Newer than this build reads: dead-lettered, not stored half-understood.
    let future = health("swapper").with_schema_version(OpsHealth::SCHEMA_VERSION + 1);
    t.bus.publish(&future).await.unwrap();
    // The last event: once it is in, everything before it has been handled.
    let alert = Envelope::event(
        "gateway",
        OpsAlert {
            status: "firing".into(),
            alertname: "ServiceDown".into(),
            severity: "critical".into(),
            summary: "router is down".into(),
            description: String::new(),
            fingerprint: "f1".into(),
            labels: [("unit".to_owned(), "router".to_owned())].into(),
            starts_at: "2024-01-01T00:00:00Z".into(),
            ends_at: String::new(),
        },
    );
    t.bus.publish(&alert).await.unwrap();

    for _ in 0..200 {
        if rows(&db, "ops.alert", "ServiceDown").await >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rows(&db, "ops.alert", "ServiceDown").await, 1);
    // A second row of a copy would come just behind the first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        rows(&db, "ops.health", "router").await,
        1,
        "three copies of one event, one row"
    );
    assert_eq!(rows(&db, "ops.health", "swapper").await, 0, "newer schema");

    let (actor, source, trace_id, detail): (String, String, String, serde_json::Value) =
        sqlx::query_as("SELECT actor, source, trace_id, detail FROM audit_log WHERE id = $1")
            .bind(crashed.id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        (actor.as_str(), source.as_str()),
        ("supervisor", "supervisor")
    );
    assert_eq!(trace_id, crashed.trace_id);
    assert_eq!(detail["state"], json!("failed"));
    assert_eq!(detail["cause"], json!("exited with status 137"));
    let alert_detail: serde_json::Value =
        sqlx::query_scalar("SELECT detail FROM audit_log WHERE id = $1")
            .bind(alert.id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(alert_detail["labels"]["unit"], json!("router"));

    shutdown.cancel();
    service.await.unwrap().unwrap();
    t.cleanup().await;
    db.drop_schema().await;
}

//! The memory service in-process against the real PostgreSQL and NATS.

use std::time::Duration;

use daarion_bus::events::AuditRecord;
use daarion_bus::testing::TestBus;
use daarion_bus::{Envelope, HandlerError};
use daarion_db::TestDb;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn record(action: &str) -> AuditRecord {
    AuditRecord {
        actor: "admin".into(),
        action: action.into(),
        target: Some("agent:helper".into()),
        outcome: "ok".into(),
        before: Some(json!({"version": 1})),
        after: Some(json!({"version": 2})),
        detail: None,
    }
}

async fn count(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn audit_events_are_stored_once_and_service_is_ready() {
    let db = TestDb::new().await.unwrap();
    let t = TestBus::new().await;
    let mut config = t.config.clone();
    config.database.url = db.url.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let service = tokio::spawn(daarion_memory::run(config, listener, shutdown.clone()));

    let first = Envelope::new("audit.action", "control-plane", record("prompt.activate"));
    t.bus.publish(&first).await.unwrap();
    t.bus.publish(&first).await.unwrap(); // a retried publish
    t.bus
        .publish(&Envelope::new("audit.error", "router", record("llm.call")))
        .await
        .unwrap();

    // Counted by action, not by id (the key, which can only count 0 or 1): the retried publish
    // and a handler that stored twice would each show here as a second row.
    let stored = |action: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_log WHERE action = $1")
                .bind(action)
                .fetch_one(&pool)
                .await
                .unwrap_or(0) // the table appears once the service has migrated
        }
    };
    for _ in 0..200 {
        if stored("llm.call").await >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored("llm.call").await, 1, "the last event is stored");
    // The events before it are in by now; anything stored twice would come just behind.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stored("prompt.activate").await,
        1,
        "published twice, stored once"
    );
    assert_eq!(stored("llm.call").await, 1);
    assert_eq!(count(&db).await, 2, "nothing else was stored");
    let (actor, trace_id, before): (String, String, serde_json::Value) =
        sqlx::query_as("SELECT actor, trace_id, before FROM audit_log WHERE id = $1")
            .bind(first.id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(actor, "admin");
    assert_eq!(trace_id, first.trace_id);
    assert_eq!(before, json!({"version": 1}));

    let ready = reqwest::get(format!("http://{addr}/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], true, "{body}");

    shutdown.cancel();
    service.await.unwrap().unwrap();
    t.cleanup().await;
    db.drop_schema().await;
}

#[tokio::test]
async fn storing_is_idempotent_and_classifies_failures() {
    let db = TestDb::new().await.unwrap();
    daarion_db::migrate(&db.pool).await.unwrap();
    let event = Envelope::new("audit.action", "test", record("flag.set"));
    daarion_memory::store_audit(&db.pool, &event).await.unwrap();
    daarion_memory::store_audit(&db.pool, &event).await.unwrap();
    assert_eq!(count(&db).await, 1);

    let mut future = event.clone().with_schema_version(2);
    future.id = uuid::Uuid::now_v7();
    assert!(matches!(
        daarion_memory::store_audit(&db.pool, &future).await,
        Err(HandlerError::Permanent(_))
    ));

    db.pool.close().await;
    let mut next = event.clone();
    next.id = uuid::Uuid::now_v7();
    assert!(matches!(
        daarion_memory::store_audit(&db.pool, &next).await,
        Err(HandlerError::Transient(_))
    ));
    let db2 = TestDb {
        pool: sqlx::PgPool::connect_lazy(&db.url).unwrap(),
        ..db
    };
    db2.drop_schema().await;
}

#[tokio::test]
async fn unreachable_database_fails_start_with_a_clear_error() {
    let t = TestBus::new().await;
    let mut config = t.config.clone();
    config.database.url = "postgres://daarion:pw@127.0.0.1:1/daarion".into();
    config.database.connect_timeout_secs = 1;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = daarion_memory::run(config, listener, CancellationToken::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains(":pw@"), "{err}");
    t.cleanup().await;
}

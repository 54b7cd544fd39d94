use super::*;

#[tokio::test]
async fn migrations_apply_twice_without_error() {
    let db = TestDb::new().await.unwrap();
    let first = migrate(&db.pool).await.unwrap();
    assert!(!first.is_empty(), "a fresh schema gets every migration");
    assert_eq!(first.len(), MIGRATOR.iter().count());
    let second = migrate(&db.pool).await.unwrap();
    assert!(
        second.is_empty(),
        "nothing to do the second time: {second:?}"
    );
    db.drop_schema().await;
}

#[tokio::test]
async fn audit_log_is_append_only() {
    let db = TestDb::new().await.unwrap();
    migrate(&db.pool).await.unwrap();
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, source, trace_id) \
         VALUES ($1, now(), 'admin', 'prompt.activate', 'test', 'abc')",
    )
    .bind(id)
    .execute(&db.pool)
    .await
    .unwrap();
    let update = sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE id = $1")
        .bind(id)
        .execute(&db.pool)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit_log").execute(&db.pool).await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    let truncate = sqlx::query("TRUNCATE audit_log").execute(&db.pool).await;
    assert!(truncate.unwrap_err().to_string().contains("append-only"));
    let actor: String = sqlx::query_scalar("SELECT actor FROM audit_log WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(actor, "admin");
    db.drop_schema().await;
}

#[tokio::test]
async fn tests_get_isolated_schemas() {
    let a = TestDb::new().await.unwrap();
    let b = TestDb::new().await.unwrap();
    migrate(&a.pool).await.unwrap();
    let in_b: Option<String> = sqlx::query_scalar("SELECT to_regclass('audit_log')::text")
        .fetch_one(&b.pool)
        .await
        .unwrap();
    assert_eq!(in_b, None, "b must not see a's tables");
    a.drop_schema().await;
    b.drop_schema().await;
}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    let mut config = daarion_config::Config::defaults().database;
    config.url = "postgres://daarion:secret@127.0.0.1:1/daarion".into();
    config.connect_timeout_secs = 1;
    let err = connect(&config).await.unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("secret"), "password leaked: {err}");
}

#[tokio::test]
async fn every_pooled_connection_has_the_statement_timeout() {
    let db = TestDb::new().await.unwrap();
    let mut config = daarion_config::Config::defaults().database;
    config.url = db.url.clone();
    config.statement_timeout_ms = 200;
    let pool = connect(&config).await.unwrap();
    let shown: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(shown, "200ms");
    let started = std::time::Instant::now();
    let slow = sqlx::query("SELECT pg_sleep(5)").execute(&pool).await;
    let err = slow.unwrap_err().to_string();
    assert!(err.contains("statement timeout"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // Migrations are exempt, and the connection they used gets its limit back.
    migrate(&pool).await.unwrap();
    let after: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(after, "200ms");
    pool.close().await;
    db.drop_schema().await;
}

#[test]
fn the_shipped_statement_timeout_is_ten_seconds() {
    let config = daarion_config::Config::defaults().database;
    assert_eq!(config.statement_timeout_ms, 10_000);
}

//! PostgreSQL for the services that own tables: one pool, the migrations in `migrations/`
//! embedded at compile time, and a per-test schema so tests run in parallel on one server.
//! Also the Redis connection ([`redis`]): the other store services open, opened one way.

pub mod redis;
mod testing;

use std::time::Duration;

use daarion_config::DatabaseConfig;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};

pub use sqlx::PgPool;
pub use testing::TestDb;

/// Every migration of the appliance, in order. Files are never edited once released: a change
/// is a new file.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database URL is invalid: {0}")]
    Url(String),
    #[error("cannot connect to PostgreSQL at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// Opens the pool and checks one connection, so a wrong URL fails at start, not at first use.
pub async fn connect(config: &DatabaseConfig) -> Result<PgPool, DbError> {
    let options: PgConnectOptions = config
        .url
        .parse()
        .map_err(|e: sqlx::Error| DbError::Url(e.to_string()))?;
    // A startup parameter, so every connection the pool ever opens has it, reconnects included.
    let options = options.options([(
        "statement_timeout",
        config.statement_timeout().as_millis().to_string(),
    )]);
    connect_with(options, config.max_connections, config.connect_timeout())
        .await
        .map_err(|e| DbError::Connect {
            url: daarion_config::redact_url(&config.url),
            message: e.to_string(),
        })
}

async fn connect_with(
    options: PgConnectOptions,
    max_connections: u32,
    timeout: Duration,
) -> Result<PgPool, sqlx::Error> {
    let options = options.application_name("daarion");
    // One direct connection first: a pool that cannot connect reports only "timed out",
    // while this surfaces the cause (refused, auth failed, no such database).
    match tokio::time::timeout(timeout, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => conn.close().await?,
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(sqlx::Error::PoolTimedOut),
    }
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(timeout)
        .connect_with(options)
        .await
}

/// How a service that owns tables starts with them: connected, and migrated first when
/// `database.migrate_on_start` says so (the default; `daarion migrate` does it otherwise).
pub async fn open(config: &DatabaseConfig) -> Result<PgPool, DbError> {
    let pool = connect(config).await?;
    if config.migrate_on_start {
        let applied = migrate(&pool).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
    }
    Ok(pool)
}

/// Applies pending migrations; returns the versions applied now (empty when up to date).
pub async fn migrate(pool: &PgPool) -> Result<Vec<i64>, DbError> {
    let before = applied_versions(pool).await.unwrap_or_default();
    // A migration may rewrite a large table: it is not held to the per-statement limit.
    let mut conn = pool.acquire().await?;
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *conn)
        .await?;
    let ran = MIGRATOR.run_direct(&mut *conn).await;
    // RESET returns to the connection's startup value before it goes back to the pool.
    sqlx::query("RESET statement_timeout")
        .execute(&mut *conn)
        .await?;
    ran?;
    let after = applied_versions(pool).await?;
    Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
}

async fn applied_versions(pool: &PgPool) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await
}

/// The `/ready` probe of a service that uses PostgreSQL.
pub struct PgCheck(pub PgPool);

impl daarion_telemetry::Check for PgCheck {
    fn name(&self) -> &str {
        "postgres"
    }
    fn check(&self) -> futures::future::BoxFuture<'_, daarion_telemetry::CheckResult> {
        Box::pin(check(&self.0))
    }
}

/// For `/ready` and `daarion doctor`: the server answers, and its version.
pub async fn check(pool: &PgPool) -> Result<String, String> {
    sqlx::query_scalar::<_, String>("SHOW server_version")
        .fetch_one(pool)
        .await
        .map(|v| format!("PostgreSQL {v}"))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;

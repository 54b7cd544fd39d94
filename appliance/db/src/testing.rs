//! A fresh schema per test on the shared PostgreSQL server.

use sqlx::Executor;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::{DbError, PgPool};

/// A pool whose connections all use a schema of their own. Call [`TestDb::drop_schema`] at the
/// end of the test; a schema left by a crashed test has a `t_` name and no other effect.
pub struct TestDb {
    pub pool: PgPool,
    pub schema: String,
    pub url: String,
}

impl TestDb {
    /// The server from `DAARION_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`.
    pub async fn new() -> Result<TestDb, DbError> {
        let url = std::env::var("DAARION_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| DbError::Url(e.to_string()))?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        admin
            .execute(format!("CREATE SCHEMA {schema}").as_str())
            .await?;
        admin.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .connect_with(options.options([("search_path", schema.as_str())]))
            .await?;
        // The same schema expressed as a URL, for child processes under test.
        let url = format!(
            "{url}{}options=-csearch_path%3D{schema}",
            if url.contains('?') { "&" } else { "?" }
        );
        Ok(TestDb { pool, schema, url })
    }

    pub async fn drop_schema(self) {
        let _ = self
            .pool
            .execute(format!("DROP SCHEMA {} CASCADE", self.schema).as_str())
            .await;
        self.pool.close().await;
    }
}

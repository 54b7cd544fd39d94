//! A control plane in-process on its own PostgreSQL schema, bus prefix, Redis key prefix and
//! port, for this crate's tests and for the data-plane crates that test against it.

use std::net::SocketAddr;
use std::time::Duration;

use daarion_bus::testing::TestBus;
use daarion_db::TestDb;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct Plane {
    pub addr: SocketAddr,
    /// The configuration it runs with (database schema, bus prefix, root token file).
    pub config: daarion_config::Config,
    pub root: String,
    pub db: TestDb,
    pub bus: TestBus,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), crate::StartError>>>,
    token_dir: std::path::PathBuf,
    http: reqwest::Client,
}

impl Plane {
    /// An empty control plane: no first-run defaults, so tests see only what they add.
    pub async fn start() -> Plane {
        Plane::start_with(crate::defaults::Defaults::Skip).await
    }

    /// A control plane as a fresh appliance starts it, `defaults` saying whether with the
    /// first-run defaults.
    pub async fn start_with(defaults: crate::defaults::Defaults) -> Plane {
        Plane::start_configured(defaults, |_| {}).await
    }

    /// Like [`Plane::start_with`], with `configure` changing the configuration it starts with
    /// (where the model manifests are, say).
    pub async fn start_configured(
        defaults: crate::defaults::Defaults,
        configure: impl FnOnce(&mut daarion_config::Config),
    ) -> Plane {
        let db = TestDb::new().await.unwrap();
        let bus = TestBus::new().await;
        let token_dir = std::env::temp_dir().join(format!("daarion-cp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&token_dir).unwrap();
        let root = format!("root-{}", uuid::Uuid::new_v4().simple());
        std::fs::write(token_dir.join("admin.token"), format!("{root}\n")).unwrap();
        let mut config = bus.config.clone();
        config.database.url = db.url.clone();
        config.supervisor.admin_token_file = token_dir.join("admin.token");
        // Each test's own data directory: services started from this config (the memory
        // service's vector store) must not share files.
        config.general.data_dir = token_dir.join("data");
        config.redis.url = std::env::var("DAARION_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
        config.redis.key_prefix = format!("t{}:", uuid::Uuid::new_v4().simple());
        configure(&mut config);
        let mut plane = Plane {
            addr: config.control_plane.listen,
            config,
            root,
            db,
            bus,
            shutdown: CancellationToken::new(),
            task: None,
            token_dir,
            http: daarion_client::http_client(daarion_client::Timeouts::streaming()),
        };
        plane.launch(defaults).await;
        plane
    }

    /// Starts the server on a new port, against the same database and bus.
    async fn launch(&mut self, defaults: crate::defaults::Defaults) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.addr = listener.local_addr().unwrap();
        self.config.control_plane.listen = self.addr;
        self.shutdown = CancellationToken::new();
        self.task = Some(tokio::spawn(crate::run_with(
            self.config.clone(),
            listener,
            self.shutdown.clone(),
            defaults,
        )));
        for _ in 0..200 {
            if let Ok(r) = self.http.get(self.url("/ready")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the server and starts it again on the same database and bus, as a restart of the
    /// appliance does.
    pub async fn restart(&mut self, defaults: crate::defaults::Defaults) {
        self.halt().await;
        self.launch(defaults).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request with `token` (None: no Authorization header).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(&self.root), None)
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, Some(&self.root), Some(body))
            .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(&self.root), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PATCH, path, Some(&self.root), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::DELETE, path, Some(&self.root), None)
            .await
    }

    /// Mints an API token with the given scopes, named `test-<scopes>-<unique>` (live token
    /// names are unique).
    pub async fn token(&self, scopes: &[&str]) -> String {
        self.mint(scopes, None).await
    }

    /// Mints a `memory:user` token (with any other `scopes`) for the memory service's `user`.
    pub async fn user_token(&self, user: &str, scopes: &[&str]) -> String {
        let mut all = vec!["memory:user"];
        all.extend(scopes.iter().filter(|s| **s != "memory:user"));
        self.mint(&all, Some(user)).await
    }

    async fn mint(&self, scopes: &[&str], user: Option<&str>) -> String {
        let name = format!(
            "test-{}-{}",
            scopes.join("+"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let (status, body) = self
            .post(
                "/auth/tokens",
                serde_json::json!({"name": name, "scopes": scopes, "user_id": user}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Stops the server but keeps its database and bus, as if the service went down.
    pub async fn halt(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub async fn stop(mut self) {
        self.halt().await;
        self.bus.cleanup().await;
        self.db.drop_schema().await;
        let _ = std::fs::remove_dir_all(&self.token_dir);
    }
}

//! A whole appliance under `daarion up`, isolated: its own ports, data dir, admin token,
//! bundled nats-server and PostgreSQL schema.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use daarion_db::TestDb;
use serde_json::Value;

/// A port nothing listens on now and that no other call in this test process has handed out:
/// the kernel may give the same ephemeral port to two binds in a row once the first is closed,
/// and two services of one appliance on one port fail its start.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub struct Appliance {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub admin: String,
    pub nats_url: String,
    pub db: Option<TestDb>,
    http: reqwest::Client,
}

impl Appliance {
    /// Configures (but does not start) an appliance: bundled NATS and the memory service.
    pub async fn new() -> Appliance {
        let dir =
            std::env::temp_dir().join(format!("daarion-it-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = TestDb::new().await.unwrap();
        let admin_port = free_port();
        let nats_url = format!("nats://127.0.0.1:{}", free_port());
        let nats_server =
            which("nats-server").expect("nats-server on PATH (tests/setup.sh installs it)");
        let env = vec![
            (
                "DAARION__GENERAL__DATA_DIR",
                dir.join("data").display().to_string(),
            ),
            (
                "DAARION__GENERAL__MODELS_DIR",
                dir.join("models").display().to_string(),
            ),
            (
                "DAARION__SUPERVISOR__ADMIN_TOKEN_FILE",
                dir.join("admin.token").display().to_string(),
            ),
            (
                "DAARION__SUPERVISOR__ADMIN_LISTEN",
                format!("127.0.0.1:{admin_port}"),
            ),
            (
                "DAARION__SUPERVISOR__NATS_SERVER",
                nats_server.display().to_string(),
            ),
            ("DAARION__SUPERVISOR__HEALTH_INTERVAL_SECS", "1".into()),
            ("DAARION__SUPERVISOR__HEALTH_FAILURES", "2".into()),
            ("DAARION__SUPERVISOR__STOP_GRACE_SECS", "3".into()),
            ("DAARION__SUPERVISOR__BACKOFF_INITIAL_MS", "50".into()),
            ("DAARION__SUPERVISOR__BACKOFF_MAX_MS", "200".into()),
            ("DAARION__SUPERVISOR__READY_TIMEOUT_SECS", "20".into()),
            ("DAARION__BUS__BUNDLED", "true".into()),
            ("DAARION__BUS__URL", nats_url.clone()),
            (
                "DAARION__MEMORY__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            (
                "DAARION__CONTROL_PLANE__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            (
                "DAARION__GATEWAY__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            (
                "DAARION__ROUTER__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            // The swapper has its own tests; here it would only need the llama.cpp worker.
            ("DAARION__SWAPPER__ENABLED", "false".to_owned()),
            // Nothing listens there while the swapper is off.
            (
                "DAARION__SWAPPER__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            // Off unless `with_ingest` (they read files with poppler, tesseract and ffmpeg; the
            // tests that need them say so); nothing listens there then, whatever runs on
            // :8100/:8101.
            ("DAARION__INGEST__ENABLED", "false".to_owned()),
            (
                "DAARION__INGEST__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            ("DAARION__PARSER__ENABLED", "false".to_owned()),
            (
                "DAARION__PARSER__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            // Off unless `with_monitoring`: the machine's Prometheus binaries would otherwise
            // start on the default ports 9090/9093 in every test.
            ("DAARION__MONITORING__ENABLED", "false".to_owned()),
            // Off unless `with_crews` (their tests say what they need); free ports either way.
            ("DAARION__CREWS__ENABLED", "false".to_owned()),
            (
                "DAARION__CREWS__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            ("DAARION__CREWS_WORKER__ENABLED", "false".to_owned()),
            (
                "DAARION__CREWS_WORKER__LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            ("DAARION__DATABASE__URL", db.url.clone()),
            (
                "DAARION__REDIS__KEY_PREFIX",
                format!("it-{}:", uuid::Uuid::new_v4().simple()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Appliance {
            child: None,
            dir,
            env,
            admin: format!("http://127.0.0.1:{admin_port}"),
            nats_url,
            db: Some(db),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = super::daarion();
        cmd.args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("up.log"))
            .unwrap();
        let child = self
            .command(&["up"])
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("up.log")).unwrap_or_default()
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.admin))
            .bearer_auth(self.token())
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.admin))
            .bearer_auth(self.token())
            .send()
            .await
            .unwrap()
    }

    /// A call through the admin port with the root token (the proxy for `/api/control/…`).
    pub async fn root(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.admin))
            .bearer_auth(self.token())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    /// An admin account for the browser, made with `daarion admin create`.
    pub fn create_admin(&self, username: &str, password: &str) {
        use std::io::Write;
        let mut child = self
            .command(&["admin", "create", username, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", super::text(&output));
    }

    /// Runs the swapper too, with SmolLM2 (chat) and MiniLM (the memory service's embeddings)
    /// from the test models and the llama.cpp worker built beside this test.
    pub fn with_swapper(&mut self) {
        let manifests = self.dir.join("manifests");
        for (id, kind, file, context) in [
            ("smollm2", "chat", "smollm2-135m-instruct-q4_1.gguf", 2048),
            ("minilm", "embedding", "all-minilm-l6-v2-f16.gguf", 512),
        ] {
            daarion_swapper::testing::write_manifest(&manifests, id, kind, file, context);
        }
        let worker = daarion_swapper::testing::built_binary("daarion-llama-worker");
        self.set("DAARION__SWAPPER__ENABLED", "true");
        self.set(
            "DAARION__SWAPPER__LISTEN",
            format!("127.0.0.1:{}", free_port()),
        );
        self.set(
            "DAARION__GENERAL__MODELS_DIR",
            daarion_swapper::testing::test_models()
                .display()
                .to_string(),
        );
        self.set(
            "DAARION__MODELS__MANIFESTS_DIR",
            manifests.display().to_string(),
        );
        self.set(
            "DAARION__MODELS__LLAMA_WORKER",
            worker.display().to_string(),
        );
        self.set("DAARION__MODELS__BUDGET_MB", "2048");
        self.set("DAARION__MODELS__THREADS", "2");
    }

    /// Runs ingest and the parser, which moves files on from `received`.
    pub fn with_ingest(&mut self) {
        self.set("DAARION__INGEST__ENABLED", "true");
        self.set("DAARION__PARSER__ENABLED", "true");
    }

    /// The crews service and its worker, on the ports chosen at creation.
    pub fn with_crews(&mut self) {
        self.set("DAARION__CREWS__ENABLED", "true");
        self.set("DAARION__CREWS_WORKER__ENABLED", "true");
    }

    /// Runs Prometheus and Alertmanager on free ports, scraping every second; returns their
    /// base URLs.
    pub fn with_monitoring(&mut self) -> (String, String) {
        let prometheus = format!("127.0.0.1:{}", free_port());
        let alertmanager = format!("127.0.0.1:{}", free_port());
        self.set("DAARION__MONITORING__ENABLED", "true");
        self.set("DAARION__MONITORING__PROMETHEUS_LISTEN", prometheus.clone());
        self.set(
            "DAARION__MONITORING__ALERTMANAGER_LISTEN",
            alertmanager.clone(),
        );
        self.set("DAARION__MONITORING__SCRAPE_INTERVAL_SECS", "1");
        let secrets = self.dir.join("secrets");
        self.set(
            "DAARION__GENERAL__SECRETS_DIR",
            secrets.display().to_string(),
        );
        // The webhook token the installer creates: Alertmanager sends it, the gateway checks it.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::create_dir_all(&secrets).unwrap();
            let path = secrets.join("alertmanager-webhook");
            std::fs::write(&path, format!("w{}", uuid::Uuid::new_v4().simple())).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        (
            format!("http://{prometheus}"),
            format!("http://{alertmanager}"),
        )
    }

    pub async fn unit(&self, name: &str) -> Value {
        self.get(&format!("/api/services/{name}"))
            .await
            .json()
            .await
            .unwrap()
    }

    /// Waits until the supervisor's /ready says every unit is ready; returns how long it took.
    pub async fn wait_all_ready(&self, within: Duration) -> Duration {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Ok(r) = self.http.get(format!("{}/ready", self.admin)).send().await
                && r.status().is_success()
            {
                return started.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("not all ready within {within:?}; log:\n{}", self.log());
    }

    /// Polls a unit until `pred` holds.
    pub async fn wait_unit(
        &self,
        name: &str,
        within: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = Instant::now();
        loop {
            let unit = self.unit(name).await;
            if pred(&unit) {
                return unit;
            }
            if started.elapsed() > within {
                panic!(
                    "{name} never reached the expected state: {unit}\nlog:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// Waits for the supervisor to exit; returns its exit code and how long it took.
    pub fn wait_exit(&mut self, within: Duration) -> (Option<i32>, Duration) {
        let started = Instant::now();
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status.code(), started.elapsed());
            }
            if started.elapsed() > within {
                panic!("supervisor still running after {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub async fn cleanup(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(db) = self.db.take() {
            db.drop_schema().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A test that panics never reaches `cleanup`: its supervisor (and with it, by their death
/// signal, every unit) must not outlive it and keep its ports and NATS server.
impl Drop for Appliance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether a pid is gone (no process, or a zombie nobody reaped yet: it runs no code).
pub fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(program))
        .find(|p| p.is_file())
}

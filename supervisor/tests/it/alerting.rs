//! The whole alerting path on the real stack: the supervisor's gauges and the bus statistics,
//! scraped by Prometheus, evaluated by the shipped rules, grouped by Alertmanager, posted to the
//! gateway's `/v1/alerts`, sent to an operator chat through a local Bot API, and kept as
//! `ops.alert` (with the supervisor's `ops.health`) in memory's audit log.
//!
//! The shipped rules wait minutes (`for: 2m`, a 15-minute age threshold) and Alertmanager waits
//! 10–30 s per group and 5 minutes between a group's messages. The test does not wait that long:
//! it points the supervisor at a copy of `monitoring/` (`$DAARION_MONITORING_DIR`, which the
//! supervisor reads first) where the alerts under test wait seconds and Alertmanager sends at
//! once. Everything else — expressions, labels, routes, inhibitions, receivers — is the shipped
//! file as it is. Prometheus evaluates at the scrape interval, one second here.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use daarion_bus::Envelope;
use daarion_bus::events::AgentRunRequested;
use nix::sys::signal::Signal;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::appliance::Appliance;

const OPERATOR_CHAT: i64 = 4242;
/// How long the alerts under test wait in the copy, and Alertmanager's waits there.
const FOR: &str = "2s";
const GROUP_WAIT_SECS: u64 = 1;
/// How long the killed unit stays down: the supervisor's restart backoff.
const DOWN_MS: u64 = 10_000;
/// The age above which the copy's `BusOldestUnackedOld` fires (900 s shipped).
const AGE_THRESHOLD_SECS: u64 = 3;

/// One message the operator chat received.
#[derive(Debug, Clone)]
struct Sent {
    chat: i64,
    text: String,
    at: Instant,
}

/// A local Bot API that records `sendMessage` and answers like Telegram.
#[derive(Clone, Default)]
struct FakeBotApi {
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl FakeBotApi {
    async fn serve(&self) -> String {
        let app = Router::new()
            .route("/{token}/{method}", post(answer))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// The first message sent after `since` whose text has every one of `words`.
    fn find(&self, since: Instant, words: &[&str]) -> Option<Sent> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.at >= since && words.iter().all(|w| s.text.contains(w)))
            .cloned()
    }

    fn texts(&self) -> Vec<String> {
        let sent = self.sent.lock().unwrap();
        sent.iter().map(|s| s.text.clone()).collect()
    }
}

async fn answer(
    State(fake): State<FakeBotApi>,
    UrlPath((_token, method)): UrlPath<(String, String)>,
    body: Bytes,
) -> Json<Value> {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // Bot API method names are case-insensitive.
    if !method.eq_ignore_ascii_case("sendMessage") {
        return Json(json!({"ok": true, "result": true}));
    }
    let chat = body["chat_id"].as_i64().unwrap_or_default();
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    let id = {
        let mut sent = fake.sent.lock().unwrap();
        sent.push(Sent {
            chat,
            text: text.clone(),
            at: Instant::now(),
        });
        sent.len() as i64
    };
    Json(json!({"ok": true, "result": {
        "message_id": id, "date": 1_700_000_000, "text": text,
        "chat": {"id": chat, "type": "private", "first_name": "Operator"},
        "from": {"id": 42, "is_bot": true, "first_name": "Ops", "username": "ops_bot"},
    }}))
}

/// `rules` with the `for:` of each named alert replaced, and how many were.
fn with_for(rules: &str, alerts: &[&str], wait: &str) -> (String, usize) {
    let mut current = String::new();
    let mut replaced = 0;
    let mut out = String::new();
    for line in rules.lines() {
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- alert: ") {
            current = name.trim().to_owned();
        }
        if trimmed.starts_with("for: ") && alerts.contains(&current.as_str()) {
            let indent = &line[..line.len() - trimmed.len()];
            out.push_str(&format!("{indent}for: {wait}\n"));
            replaced += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    (out, replaced)
}

/// `text` with `from` replaced by `to`, which must be there exactly `times`: the test fails
/// rather than quietly testing the shipped waits when the shipped files change.
fn replace(text: &str, from: &str, to: &str, times: usize) -> String {
    assert_eq!(text.matches(from).count(), times, "`{from}` in:\n{text}");
    text.replace(from, to)
}

/// A copy of the shipped `monitoring/` under `dir` with short waits (see the module's doc).
fn fast_monitoring(dir: &Path) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../monitoring");
    let copy = dir.join("monitoring");
    let rules = copy.join("prometheus/rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::create_dir_all(copy.join("alertmanager")).unwrap();
    let fast = ["ServiceDown", "BusOldestUnackedOld"];
    let mut shortened = 0;
    for entry in std::fs::read_dir(shipped.join("prometheus/rules")).unwrap() {
        let path = entry.unwrap().path();
        let (mut text, replaced) = with_for(&std::fs::read_to_string(&path).unwrap(), &fast, FOR);
        shortened += replaced;
        if path.file_name().unwrap() == "bus.yml" {
            text = replace(
                &text,
                "(daarion_bus_consumer_oldest_unacked_age_seconds) > 900",
                &format!(
                    "(daarion_bus_consumer_oldest_unacked_age_seconds) > {AGE_THRESHOLD_SECS}"
                ),
                1,
            );
        }
        std::fs::write(rules.join(path.file_name().unwrap()), text).unwrap();
    }
    assert_eq!(shortened, fast.len(), "one `for:` per alert under test");

    let mut config =
        std::fs::read_to_string(shipped.join("alertmanager/alertmanager.yml")).unwrap();
    let wait = format!("group_wait: {GROUP_WAIT_SECS}s");
    config = replace(&config, "group_wait: 30s", &wait, 1);
    config = replace(&config, "group_wait: 10s", &wait, 1);
    // A resolved alert is told at the group's next interval.
    config = replace(&config, "group_interval: 5m", "group_interval: 2s", 1);
    std::fs::write(copy.join("alertmanager/alertmanager.yml"), config).unwrap();
    copy
}

fn secret(dir: &Path, name: &str, value: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Polls until `probe` returns `Some`, or fails the test with `what`, the chat and the log.
async fn eventually<T, F, Fut>(
    app: &Appliance,
    bot: &FakeBotApi,
    what: &str,
    within: Duration,
    probe: F,
) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            started.elapsed() < within,
            "{what}: not within {within:?}; chat: {:#?}\nlog:\n{}",
            bot.texts(),
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_json(url: &str) -> Option<Value> {
    let response = reqwest::get(url).await.ok()?;
    response.status().is_success().then_some(())?;
    response.json().await.ok()
}

/// The largest value of a PromQL query's series.
async fn query_max(prometheus: &str, promql: &str) -> Option<f64> {
    let url = reqwest::Url::parse_with_params(
        &format!("{prometheus}/api/v1/query"),
        &[("query", promql)],
    )
    .ok()?;
    let body = get_json(url.as_str()).await?;
    body["data"]["result"]
        .as_array()?
        .iter()
        .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
        .reduce(f64::max)
}

/// Whether Prometheus has `alertname` firing with `label`=`value`.
async fn firing_in_prometheus(prometheus: &str, alertname: &str, label: (&str, &str)) -> bool {
    let Some(body) = get_json(&format!("{prometheus}/api/v1/alerts")).await else {
        return false;
    };
    body["data"]["alerts"].as_array().is_some_and(|alerts| {
        alerts.iter().any(|a| {
            a["labels"]["alertname"] == alertname
                && a["labels"][label.0] == label.1
                && a["state"] == "firing"
        })
    })
}

/// Memory's audit log rows of `action` (through the admin port, with the root token).
async fn audit(app: &Appliance, action: &str) -> Option<Vec<Value>> {
    let response = app
        .get(&format!("/api/memory/v1/audit?action={action}&limit=500"))
        .await;
    response.status().is_success().then_some(())?;
    response.json().await.ok()
}

/// The appliance with monitoring on the fast copy, an operator bot on the local Bot API and
/// one operator chat; started and ready.
async fn started(bot: &FakeBotApi) -> (Appliance, String) {
    let mut app = Appliance::new().await;
    let (prometheus, _alertmanager) = app.with_monitoring();
    let monitoring = fast_monitoring(&app.dir);
    app.set("DAARION_MONITORING_DIR", monitoring.display().to_string());
    app.set("DAARION__MONITORING__OPERATOR_BOT", "opsbot");
    app.set(
        "DAARION__MONITORING__OPERATOR_CHATS",
        format!("[{OPERATOR_CHAT}]"),
    );
    app.set(
        "DAARION__SUPERVISOR__BACKOFF_INITIAL_MS",
        DOWN_MS.to_string(),
    );
    app.set("DAARION__SUPERVISOR__BACKOFF_MAX_MS", DOWN_MS.to_string());
    let secrets = app.dir.join("secrets");
    secret(
        &secrets,
        "alertmanager-webhook",
        &format!("w{}", uuid::Uuid::new_v4().simple()),
    );
    secret(&secrets, "ops-bot-token", "123:TESTTOKEN");
    secret(
        &secrets,
        "ops-bot-secret",
        &format!("s{}", uuid::Uuid::new_v4().simple()),
    );
    let api_url = bot.serve().await;
    app.start();
    app.wait_all_ready(Duration::from_secs(120)).await;
    app.root(
        Method::PUT,
        "/api/control/config/telegram.opsbot",
        json!({"value": {"token_ref": "file:ops-bot-token", "webhook_secret_ref": "file:ops-bot-secret",
                         "api_url": api_url}}),
    )
    .await;
    (app, prometheus)
}

#[tokio::test]
async fn a_killed_unit_and_a_stalled_consumer_reach_the_operator_chat_and_the_audit_log() {
    assert!(
        Path::new("/usr/bin/prometheus").is_file()
            && Path::new("/usr/bin/prometheus-alertmanager").is_file(),
        "Debian's prometheus and prometheus-alertmanager (tests/setup.sh installs them)"
    );
    let bot = FakeBotApi::default();
    let (app, prometheus) = started(&bot).await;
    // The rules Prometheus loaded are the copy's.
    eventually(
        &app,
        &bot,
        "the fast ServiceDown loaded",
        Duration::from_secs(30),
        || async {
            let rules = get_json(&format!("{prometheus}/api/v1/rules")).await?;
            let groups = rules["data"]["groups"].as_array()?.clone();
            groups
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .any(|r| r["name"] == "ServiceDown" && r["duration"] == 2)
                .then_some(())
        },
    )
    .await;
    eventually(
        &app,
        &bot,
        "memory up in Prometheus",
        Duration::from_secs(30),
        || async {
            let up = query_max(&prometheus, r#"daarion_supervisor_unit_up{unit="memory"}"#).await?;
            (up == 1.0).then_some(())
        },
    )
    .await;

    // kill -9: the supervisor waits DOWN_MS before the restart, past the rule's `for:`.
    let pid = app.unit("memory").await["pid"].as_i64().unwrap() as i32;
    let killed = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let firing = eventually(
        &app,
        &bot,
        "the FIRING message",
        Duration::from_secs(30),
        || async { bot.find(killed, &["FIRING", "ServiceDown", "memory"]) },
    )
    .await;
    let to_firing = firing.at - killed;
    println!(
        "figure: kill -9 to the operator's FIRING message: {} ms (for: {FOR}, scrape and \
         evaluation 1 s, group_wait {GROUP_WAIT_SECS} s)",
        to_firing.as_millis()
    );
    assert_eq!(firing.chat, OPERATOR_CHAT);
    assert!(firing.text.contains("critical"), "{}", firing.text);
    // for: + a scrape + an evaluation + group_wait, and a few seconds for a busy machine.
    assert!(
        to_firing < Duration::from_secs(2 + 1 + 1 + GROUP_WAIT_SECS + 6),
        "{to_firing:?}"
    );
    assert!(
        to_firing < Duration::from_millis(DOWN_MS),
        "told while the unit is still down: {to_firing:?}"
    );

    let resolved = eventually(
        &app,
        &bot,
        "the RESOLVED message",
        Duration::from_secs(60),
        || async { bot.find(firing.at, &["RESOLVED", "ServiceDown", "memory"]) },
    )
    .await;
    println!(
        "figure: kill -9 to the RESOLVED message: {} ms (restart after {DOWN_MS} ms)",
        (resolved.at - killed).as_millis()
    );
    assert_eq!(app.unit("memory").await["state"], "ready");

    // A consumer nobody runs (crews are off): its oldest message ages in Prometheus and the
    // age alert fires.
    let mut bus_config = daarion_config::Config::defaults().bus;
    bus_config.url = app.nats_url.clone();
    let bus = daarion_bus::Bus::connect(&bus_config, "it-alerting")
        .await
        .unwrap();
    let request = AgentRunRequested {
        run_id: uuid::Uuid::new_v4(),
        crew: "nobody-runs-this".into(),
        task: "wait".into(),
        user_id: uuid::Uuid::new_v4(),
        agent_id: "helper".into(),
        session_id: None,
        inputs: Default::default(),
        origin: None,
    };
    let published = Instant::now();
    bus.publish(&Envelope::event("it", request)).await.unwrap();
    let age = r#"daarion_bus_consumer_oldest_unacked_age_seconds{consumer="crewai-worker"}"#;
    // The supervisor polls the bus every 15 s.
    let seen = eventually(
        &app,
        &bot,
        "the age in Prometheus",
        Duration::from_secs(60),
        || async {
            let age = query_max(&prometheus, age).await?;
            (age > AGE_THRESHOLD_SECS as f64).then_some(age)
        },
    )
    .await;
    println!(
        "figure: crewai-worker's oldest unacked message {seen:.0} s old in Prometheus {} ms \
         after the publish",
        published.elapsed().as_millis()
    );
    eventually(
        &app,
        &bot,
        "BusOldestUnackedOld firing",
        Duration::from_secs(30),
        || async {
            firing_in_prometheus(
                &prometheus,
                "BusOldestUnackedOld",
                ("consumer", "crewai-worker"),
            )
            .await
            .then_some(())
        },
    )
    .await;
    let stalled = eventually(
        &app,
        &bot,
        "the consumer's message",
        Duration::from_secs(30),
        || async {
            bot.find(
                published,
                &["FIRING", "BusOldestUnackedOld", "consumer=crewai-worker"],
            )
        },
    )
    .await;
    println!(
        "figure: publish to the operator's BusOldestUnackedOld message: {} ms",
        (stalled.at - published).as_millis()
    );

    // The history: the unit's changes from the supervisor and the alerts from the gateway, in
    // memory's audit log (written by memory after its restart, from the durable consumer).
    let alerts = eventually(
        &app,
        &bot,
        "ops.alert rows",
        Duration::from_secs(60),
        || async {
            let rows = audit(&app, "ops.alert").await?;
            let has = |alertname: &str, status: &str, label: (&str, &str)| {
                rows.iter().any(|r| {
                    r["target"] == alertname
                        && r["detail"]["status"] == status
                        && r["detail"]["labels"][label.0] == label.1
                })
            };
            (has("ServiceDown", "firing", ("unit", "memory"))
                && has("ServiceDown", "resolved", ("unit", "memory"))
                && has(
                    "BusOldestUnackedOld",
                    "firing",
                    ("consumer", "crewai-worker"),
                ))
            .then_some(rows)
        },
    )
    .await;
    assert!(
        alerts
            .iter()
            .all(|r| r["actor"] == "gateway" && r["detail"]["alertname"] == r["target"]),
        "{alerts:#?}"
    );
    assert!(
        !alerts.iter().any(|r| r["target"] == "Watchdog"),
        "the heartbeat is not history: {alerts:#?}"
    );
    let health = audit(&app, "ops.health").await.unwrap();
    let memory: Vec<&str> = health
        .iter()
        .rev()
        .filter(|r| r["target"] == "memory")
        .filter_map(|r| r["detail"]["state"].as_str())
        .collect();
    let restart = memory
        .windows(3)
        .any(|w| w == ["backoff", "starting", "ready"]);
    assert!(restart, "memory's restart in the audit log: {memory:?}");
    assert!(health.iter().all(|r| r["actor"] == "supervisor"));
    app.cleanup().await;
}

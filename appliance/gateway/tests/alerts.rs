//! `POST /v1/alerts`: Alertmanager's webhook into the operator chats (through the fake Bot API)
//! and onto the bus as `ops.alert`.

mod helpers;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::post;
use futures::StreamExt;
use helpers::{Gateway, test_limits};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A gateway with `[monitoring]` set, in front of the helpers' stack and fake Bot API, and the
/// webhook token in its secrets directory.
struct Alerting {
    gw: Gateway,
    url: String,
    token: String,
    shutdown: CancellationToken,
}

impl Alerting {
    async fn start(chats: &[i64], operator_bot: Option<(&str, &str)>) -> Alerting {
        let gw = Gateway::start(false, None).await;
        let mut config = gw.config.clone();
        config.monitoring.operator_chats = chats.to_vec();
        if let Some((name, api_url)) = operator_bot {
            let mut bot = gw.bot.clone();
            bot["api_url"] = json!(api_url);
            gw.stack.config(&format!("telegram.{name}"), bot).await;
            config.monitoring.operator_bot = name.to_owned();
        }
        let token = format!("am{}", uuid::Uuid::new_v4().simple());
        std::fs::write(
            config.general.secrets_dir.join("alertmanager-webhook"),
            format!("{token}\n"),
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let app = daarion_gateway::app(config, test_limits()).await.unwrap();
        tokio::spawn(daarion_gateway::serve(app, listener, shutdown.clone()));
        for _ in 0..200 {
            if let Ok(r) = gw.stack.http.get(format!("{url}/ready")).send().await
                && r.status().is_success()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Alerting {
            gw,
            url,
            token,
            shutdown,
        }
    }

    async fn post(&self, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut request = self
            .gw
            .stack
            .http
            .post(format!("{}/v1/alerts", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, webhook: &Value) -> (u16, Value) {
        self.post(Some(&self.token), serde_json::to_vec(webhook).unwrap())
            .await
    }

    /// The messages each chat got.
    fn messages(&self, chat: i64) -> Vec<Value> {
        self.gw
            .telegram
            .calls("sendMessage")
            .into_iter()
            .filter(|c| c.body["chat_id"] == json!(chat))
            .map(|c| c.body)
            .collect()
    }

    /// `ops.alert` events stored on the bus.
    async fn published(&self) -> usize {
        let bus = daarion_bus::Bus::connect(&self.gw.config.bus, "test")
            .await
            .unwrap();
        let stream = bus
            .jetstream()
            .get_stream(bus.naming().stream("AUDIT"))
            .await
            .unwrap();
        let subjects = stream
            .info_with_subjects(bus.naming().subject("ops.alert"))
            .await
            .unwrap();
        subjects
            .map(|s| s.unwrap().1)
            .collect::<Vec<_>>()
            .await
            .iter()
            .sum()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.gw.stop().await;
    }
}

fn alert(status: &str, name: &str, severity: &str, summary: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": name, "severity": severity, "unit": "memory"},
        "annotations": {"summary": summary, "description": format!("{name} details")},
        "startsAt": "2024-05-01T10:00:00Z",
        "endsAt": if status == "firing" { "0001-01-01T00:00:00Z" } else { "2024-05-01T10:05:00Z" },
        "generatorURL": "http://prometheus/graph",
        "fingerprint": format!("fp-{name}"),
    })
}

fn webhook(receiver: &str, alerts: Vec<Value>) -> Value {
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"x\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": receiver,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager", "alerts": alerts,
    })
}

/// A metric's value by its one label (`None`: no such series).
fn metric(name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    let families = prometheus::gather();
    let family = families.iter().find(|f| f.name() == name)?;
    let series = family.get_metric().iter().find(|m| {
        label.is_none_or(|(k, v)| {
            m.get_label()
                .iter()
                .any(|l| l.name() == k && l.value() == v)
        })
    })?;
    Some(match family.get_field_type() {
        prometheus::proto::MetricType::COUNTER => series.get_counter().get_value(),
        _ => series.get_gauge().get_value(),
    })
}

#[tokio::test]
async fn firing_and_resolved_alerts_reach_the_operator_chats() {
    let chats = [5001, -100_777];
    let a = Alerting::start(&chats, None).await;
    let payload = webhook(
        "gateway",
        vec![
            alert(
                "firing",
                "MemoryDown",
                "critical",
                "memory <api> & co is down",
            ),
            alert("firing", "SlowAnswers", "warning", "answers are slow"),
            alert("resolved", "DiskFull", "warning", "disk was full"),
        ],
    );
    let (status, body) = a.send(&payload).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["published"].as_u64(), body["sent"].as_u64()),
        (Some(3), Some(2))
    );

    for chat in chats {
        let got = a.messages(chat);
        assert_eq!(got.len(), 1, "one message per call to chat {chat}: {got:?}");
        let text = got[0]["text"].as_str().unwrap();
        assert_eq!(got[0]["parse_mode"], "HTML");
        for part in [
            "🔥 <b>FIRING 2 · critical</b>",
            "<b>MemoryDown</b> · memory",
            "memory &lt;api&gt; &amp; co is down",
            "MemoryDown details",
            "<code>severity=critical unit=memory</code>",
            "✅ <b>RESOLVED 1</b>",
            "<b>DiskFull</b>",
        ] {
            assert!(text.contains(part), "{part:?} in {text}");
        }
        assert!(
            text.find("SlowAnswers") < text.find("RESOLVED"),
            "firing first: {text}"
        );
    }
    assert_eq!(a.published().await, 3);

    // Alertmanager repeats the group: the operator is reminded, the audit log is not flooded.
    let (status, body) = a.send(&payload).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["published"], 0, "{body}");
    assert_eq!(a.published().await, 3, "ops.alert once per occurrence");
    assert_eq!(a.messages(chats[0]).len(), 2);
    a.stop().await;
}

#[tokio::test]
async fn the_webhook_needs_its_token_and_the_heartbeat_is_only_recorded() {
    let a = Alerting::start(&[5002], None).await;
    let body =
        serde_json::to_vec(&webhook("gateway", vec![alert("firing", "X", "info", "x")])).unwrap();
    let longer = format!("{}x", a.token);
    for (token, payload, expected) in [
        (None, body.clone(), 401),
        (Some("wrong"), body.clone(), 401),
        (Some(longer.as_str()), body.clone(), 401),
        (Some(a.token.as_str()), b"not json".to_vec(), 400),
        (
            Some(a.token.as_str()),
            serde_json::to_vec(&webhook(
                "gateway",
                vec![alert("pending", "X", "info", "x")],
            ))
            .unwrap(),
            400,
        ),
    ] {
        let (status, answer) = a.post(token, payload).await;
        assert_eq!(status, expected, "{token:?}: {answer}");
        assert!(!answer.to_string().contains(&a.token), "{answer}");
    }
    assert!(a.messages(5002).is_empty());
    for outcome in ["sent", "failed"] {
        assert!(
            metric(
                "daarion_gateway_alert_notifications_total",
                Some(("outcome", outcome))
            )
            .is_some(),
            "{outcome} exported from the start"
        );
    }

    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (status, answer) = a
        .send(&webhook(
            "heartbeat",
            vec![alert("firing", "Watchdog", "none", "always firing")],
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    let beat = metric("daarion_gateway_alert_heartbeat_timestamp_seconds", None).unwrap();
    assert!(
        beat >= before.floor(),
        "heartbeat at {beat}, sent after {before}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(a.messages(5002).is_empty(), "the Watchdog is not posted");
    assert_eq!(a.published().await, 0, "nor published");

    // Without the token file the route is off, whatever the caller sends.
    std::fs::remove_file(a.gw.config.general.secrets_dir.join("alertmanager-webhook")).unwrap();
    let (status, answer) = a.post(Some(&a.token), body).await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer.to_string().contains("alerts are not configured"),
        "{answer}"
    );
    a.stop().await;
}

#[tokio::test]
async fn a_bot_api_failure_answers_5xx_and_is_counted() {
    // A Bot API that refuses every message, as Telegram does for a chat the bot is not in.
    let refusing = Router::new().route(
        "/{token}/{method}",
        post(|| async {
            (
                axum::http::StatusCode::BAD_REQUEST,
                axum::Json(
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: chat not found"}),
                ),
            )
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, refusing).await });
    let a = Alerting::start(&[5003], Some(("alertbot", &api_url))).await;

    let failed = || {
        metric(
            "daarion_gateway_alert_notifications_total",
            Some(("outcome", "failed")),
        )
        .unwrap_or(0.0)
    };
    let before = failed();
    let (status, answer) = a
        .send(&webhook(
            "gateway",
            vec![alert("firing", "GpuLost", "critical", "no GPU")],
        ))
        .await;
    assert_eq!(status, 502, "{answer}");
    assert_eq!(failed(), before + 1.0);
    assert!(
        a.gw.telegram.calls("sendMessage").is_empty(),
        "sent through monitoring.operator_bot, not the other bot"
    );
    // The event is on the bus all the same: the audit log does not wait for Telegram.
    assert_eq!(a.published().await, 1);
    a.stop().await;
}

//! Spans of one request through two services (the first calling the second with
//! daarion-client) recorded in each, and the trace route that serves them.

use std::net::SocketAddr;
use std::sync::Once;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use daarion_config::Config;
use daarion_http::{build_app, serve};
use daarion_telemetry::{Readiness, TraceContext};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "root-token-for-traces";

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut config = Config::defaults();
        config.telemetry.log_level = "info".into();
        daarion_telemetry::init_logging(&config.telemetry, "test").unwrap();
        let path = std::env::temp_dir().join(format!("daarion-trace-token-{}", std::process::id()));
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        daarion_http::set_root_token_file(path);
    });
}

async fn start(service: &'static str, routes: Router) -> (SocketAddr, CancellationToken) {
    let config = Config::defaults();
    let app = build_app(service, routes, Readiness::new(), &config.http);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(
        listener,
        app,
        shutdown.clone(),
        Duration::from_secs(1),
    ));
    (addr, shutdown)
}

fn back() -> Router {
    Router::new().route(
        "/work",
        get(|headers: HeaderMap| async move {
            tracing::info!(item = 7, "working on it");
            headers["traceparent"].to_str().unwrap().to_owned()
        }),
    )
}

fn front(back: SocketAddr) -> Router {
    let service = daarion_client::Service::new(
        "back",
        format!("http://{back}"),
        None,
        reqwest::Client::new(),
    );
    Router::new().route(
        "/hop",
        get(move || {
            let service = service.clone();
            async move {
                tracing::info!("calling back");
                let sent = service
                    .send(service.request(reqwest::Method::GET, "/work"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                serde_json::json!({
                    "trace_id": TraceContext::current().unwrap().trace_id(),
                    "sent": sent,
                })
                .to_string()
            }
        }),
    )
}

async fn traces(addr: SocketAddr, id: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(format!("http://{addr}/internal/traces/{id}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_request_through_two_services_is_one_trace() {
    setup();
    let (back_addr, back_stop) = start("back", back()).await;
    let (front_addr, front_stop) = start("front", front(back_addr)).await;
    let answer: Value = reqwest::get(format!("http://{front_addr}/hop"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let trace_id = answer["trace_id"].as_str().unwrap().to_owned();
    let sent = TraceContext::parse(answer["sent"].as_str().unwrap()).unwrap();
    assert_eq!(sent.trace_id(), trace_id);

    // A span is recorded once it closes, which may be a moment after the answer is sent.
    let mut dump = Value::Null;
    for _ in 0..50 {
        let (status, body) = traces(back_addr, &trace_id, Some(TOKEN)).await;
        assert_eq!(status, 200, "{body}");
        dump = body;
        if dump["spans"].as_array().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(dump["service"], "test");
    let spans = dump["spans"].as_array().unwrap();
    let by = |service: &str| {
        spans
            .iter()
            .find(|s| s["service"] == service && s["name"] == "request")
            .unwrap_or_else(|| panic!("no {service} request span in {dump}"))
    };
    let (front_span, back_span) = (by("front"), by("back"));
    assert_eq!(front_span["trace_id"], trace_id.as_str());
    assert_eq!(back_span["trace_id"], trace_id.as_str());
    assert_eq!(
        front_span["parent_id"],
        Value::Null,
        "the front request starts the trace"
    );
    assert_eq!(
        back_span["parent_id"],
        sent.span_id().as_str(),
        "the back request hangs under the span its caller named"
    );
    assert_eq!(front_span["fields"]["route"], "/hop");
    assert_eq!(back_span["fields"]["status"], "200");
    let started = |s: &Value| s["start_unix_nanos"].as_u64().unwrap();
    let took = |s: &Value| s["duration_nanos"].as_u64().unwrap();
    assert!(started(front_span) <= started(back_span));
    assert!(started(back_span) + took(back_span) <= started(front_span) + took(front_span));

    let events = dump["events"].as_array().unwrap();
    let line = |text: &str| {
        events
            .iter()
            .find(|e| e["text"] == text)
            .unwrap_or_else(|| panic!("no line {text:?} in {events:?}"))
    };
    assert_eq!(
        line("working on it item=7")["span_id"],
        back_span["span_id"]
    );
    assert_eq!(line("calling back")["span_id"], front_span["span_id"]);
    assert_eq!(line("calling back")["level"], "INFO");

    // The probes and the trace route itself are not in any trace.
    assert!(
        spans
            .iter()
            .all(|s| s["fields"]["route"] != "/internal/traces/{trace_id}")
    );
    back_stop.cancel();
    front_stop.cancel();
}

#[tokio::test]
async fn the_trace_route_needs_the_root_token() {
    setup();
    let (addr, stop) = start("back", back()).await;
    let good = "4bf92f3577b34da6a3ce929d0e0e4736";
    let cases = [
        (good, None, 401),
        (good, Some("wrong"), 401),
        (good, Some("root-token-for-traceS"), 401),
        ("not-hex", None, 401),
        ("not-hex", Some(TOKEN), 422),
        (&"0".repeat(32), Some(TOKEN), 422),
        (good, Some(TOKEN), 200),
    ];
    for (id, token, want) in cases {
        let (status, body) = traces(addr, id, token).await;
        assert_eq!(status, want, "{id} {token:?}: {body}");
        if want == 200 {
            assert_eq!(body["spans"], serde_json::json!([]));
        } else {
            assert!(body["error"]["code"].is_string(), "{body}");
            assert!(!body.to_string().contains(TOKEN));
        }
    }
    stop.cancel();
}

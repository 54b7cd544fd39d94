//! The OTLP exporter against a local collector that speaks OTLP/HTTP JSON.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use daarion_telemetry::{ExportOptions, Limits, Recorder, encode_metrics, start_otlp};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A collector answering `status` to every POST /v1/traces, handing each body to the test.
async fn collector(status: StatusCode) -> (String, mpsc::UnboundedReceiver<Value>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/v1/traces",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                assert_eq!(headers["content-type"], "application/json");
                let _ = tx.send(serde_json::from_str::<Value>(&body).unwrap());
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), rx)
}

/// Opens `n` request spans of one trace, each with a child, on a subscriber of its own.
fn spans(recorder: &Arc<Recorder>, n: usize) {
    let subscriber = tracing_subscriber::registry().with(recorder.layer());
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..n {
            tracing::info_span!("request", trace_id = TRACE, route = "/x", status = 503, i)
                .in_scope(|| tracing::info_span!("inner").in_scope(|| {}));
        }
    });
}

fn dropped() -> u64 {
    encode_metrics()
        .lines()
        .find_map(|l| l.strip_prefix("daarion_telemetry_otlp_dropped_total "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

fn is_hex(v: &Value, len: usize) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_are_valid_otlp_json() {
    let (endpoint, mut bodies) = collector(StatusCode::OK).await;
    let recorder = Arc::new(Recorder::new(Limits::default()));
    recorder.set_service("front");
    let options = ExportOptions {
        interval: Duration::from_millis(100),
        batch: 4,
        ..ExportOptions::default()
    };
    start_otlp(&recorder, &endpoint, options).unwrap();
    spans(&recorder, 5);

    let mut got = Vec::new();
    while got.len() < 10 {
        let body = tokio::time::timeout(Duration::from_secs(10), bodies.recv())
            .await
            .expect("the exporter posts within its interval")
            .unwrap();
        let resource = &body["resourceSpans"][0];
        assert_eq!(resource["resource"]["attributes"][0]["key"], "service.name");
        assert_eq!(
            resource["resource"]["attributes"][0]["value"]["stringValue"],
            "front"
        );
        let scope = &resource["scopeSpans"][0];
        assert_eq!(scope["scope"]["name"], "daarion");
        let batch = scope["spans"].as_array().unwrap().clone();
        assert!(batch.len() <= 4, "batches hold at most `batch` spans");
        got.extend(batch);
    }
    for span in &got {
        assert_eq!(span["traceId"], TRACE);
        assert!(is_hex(&span["spanId"], 16), "{span}");
        let start: u64 = span["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
        let end: u64 = span["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(end >= start && start > 1_600_000_000_000_000_000);
    }
    let requests: Vec<_> = got.iter().filter(|s| s["name"] == "request").collect();
    let inners: Vec<_> = got.iter().filter(|s| s["name"] == "inner").collect();
    assert_eq!((requests.len(), inners.len()), (5, 5));
    for request in &requests {
        assert_eq!(request["kind"], 2);
        assert_eq!(request["status"]["code"], 2, "a 5xx request is an error");
        assert!(request.get("parentSpanId").is_none());
        let attributes = request["attributes"].as_array().unwrap();
        assert!(
            attributes
                .iter()
                .any(|a| a["key"] == "route" && a["value"]["stringValue"] == "/x")
        );
    }
    for inner in &inners {
        assert_eq!(inner["kind"], 1);
        assert!(
            requests
                .iter()
                .any(|r| r["spanId"] == inner["parentSpanId"])
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_and_a_full_queue_are_counted() {
    let cases = [
        // (collector answer, queue bound, spans opened (each with a child), dropped at least)
        (StatusCode::INTERNAL_SERVER_ERROR, 1000, 2, 4),
        (StatusCode::OK, 3, 10, 17),
    ];
    for (status, queue, n, at_least) in cases {
        let (endpoint, mut bodies) = collector(status).await;
        let recorder = Arc::new(Recorder::new(Limits::default()));
        let interval = if status.is_success() {
            Duration::from_secs(3600)
        } else {
            Duration::from_millis(50)
        };
        let options = ExportOptions {
            interval,
            batch: 1000,
            queue,
            ..ExportOptions::default()
        };
        let before = dropped();
        start_otlp(&recorder, &endpoint, options).unwrap();
        spans(&recorder, n);
        if !status.is_success() {
            tokio::time::timeout(Duration::from_secs(10), bodies.recv())
                .await
                .unwrap();
            // The counter moves after the answer is read.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // Other tests in this binary may drop spans too, never fewer.
        assert!(
            dropped() - before >= at_least,
            "{status}: {} dropped",
            dropped() - before
        );
    }
}

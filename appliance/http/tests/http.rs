//! The shared HTTP layer, exercised over a real TCP socket.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use daarion_config::Config;
use daarion_http::{ErrorResponse, build_app, serve};
use daarion_telemetry::{Readiness, TraceContext};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), daarion_http::ServeError>>,
}

async fn start(routes: Router, tweak: impl FnOnce(&mut Config)) -> Server {
    let mut config = Config::defaults();
    tweak(&mut config);
    let app = build_app("test", routes, Readiness::new(), &config.http);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(
        listener,
        app,
        shutdown.clone(),
        config.http.shutdown_grace(),
    ));
    Server {
        addr,
        shutdown,
        task,
    }
}

fn routes() -> Router {
    Router::new()
        .route(
            "/echo",
            post(|axum::Json(v): axum::Json<Value>| async move { axum::Json(v) }),
        )
        .route(
            "/trace",
            get(|| async { TraceContext::current().unwrap().trace_id() }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "done"
            }),
        )
        .route(
            "/teapot",
            get(|| async { ErrorResponse::conflict("already there") }),
        )
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let ct = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    (status, response.json::<Value>().await.unwrap())
}

#[tokio::test]
async fn unknown_path_is_a_json_404() {
    let server = start(routes(), |_| {}).await;
    let r = reqwest::get(format!("http://{}/nope", server.addr))
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(body["error"]["trace_id"].as_str().unwrap().len(), 32);
}

#[tokio::test]
async fn malformed_json_is_a_json_400_with_the_reason() {
    let server = start(routes(), |_| {}).await;
    let r = reqwest::Client::new()
        .post(format!("http://{}/echo", server.addr))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("JSON"),
        "{body}"
    );
}

#[tokio::test]
async fn wrong_method_keeps_allow_header() {
    let server = start(routes(), |_| {}).await;
    let r = reqwest::get(format!("http://{}/echo", server.addr))
        .await
        .unwrap();
    assert!(r.headers().get("allow").is_some());
    let (status, body) = error_of(r).await;
    assert_eq!(status, 405);
    assert_eq!(body["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn oversized_body_is_a_json_413() {
    let server = start(routes(), |c| c.http.body_limit_bytes = 2048).await;
    let big = format!("\"{}\"", "x".repeat(10_000));
    let r = reqwest::Client::new()
        .post(format!("http://{}/echo", server.addr))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn slow_handler_times_out_with_json() {
    let server = start(routes(), |c| c.http.request_timeout_secs = 1).await;
    let r = reqwest::get(format!("http://{}/slow", server.addr))
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "timeout");
}

#[tokio::test]
async fn service_errors_keep_their_code() {
    let server = start(routes(), |_| {}).await;
    let r = reqwest::get(format!("http://{}/teapot", server.addr))
        .await
        .unwrap();
    let (status, body) = error_of(r).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "conflict");
    assert_eq!(body["error"]["message"], "already there");
}

#[tokio::test]
async fn incoming_traceparent_is_continued_and_returned() {
    let server = start(routes(), |_| {}).await;
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = reqwest::Client::new()
        .get(format!("http://{}/trace", server.addr))
        .header("traceparent", parent)
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    let returned = r.headers()["traceparent"].to_str().unwrap().to_owned();
    assert_eq!(r.headers()["x-request-id"], "req-42");
    let seen = r.text().await.unwrap();
    assert_eq!(seen, "4bf92f3577b34da6a3ce929d0e0e4736");
    let returned = TraceContext::parse(&returned).unwrap();
    assert_eq!(returned.trace_id(), seen);
    assert_ne!(
        returned.span_id(),
        "00f067aa0ba902b7",
        "server span is a child"
    );
}

#[tokio::test]
async fn missing_traceparent_starts_a_trace() {
    let server = start(routes(), |_| {}).await;
    let r = reqwest::get(format!("http://{}/trace", server.addr))
        .await
        .unwrap();
    let returned = TraceContext::parse(r.headers()["traceparent"].to_str().unwrap()).unwrap();
    assert_eq!(r.text().await.unwrap(), returned.trace_id());
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let server = start(routes(), |_| {}).await;
    for _ in 0..3 {
        reqwest::get(format!("http://{}/trace", server.addr))
            .await
            .unwrap();
    }
    let text = reqwest::get(format!("http://{}/metrics", server.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("daarion_http_requests_total")
                && l.contains("route=\"/trace\"")
                && l.contains("service=\"test\"")
        })
        .unwrap_or_else(|| panic!("no counter in:\n{text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{line}");
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let server = start(routes(), |_| {}).await;
    let url = format!("http://{}/slow", server.addr);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await.unwrap().text().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown.cancel();
    assert_eq!(in_flight.await.unwrap().unwrap(), "done");
    server.task.await.unwrap().unwrap();
    // And it no longer accepts connections.
    assert!(
        reqwest::get(format!("http://{}/health", server.addr))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn shutdown_reports_a_request_that_outlives_the_grace() {
    let routes = Router::new().route(
        "/hang",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(20)).await;
            "late"
        }),
    );
    let server = start(routes, |c| {
        c.http.request_timeout_secs = 60;
        c.http.shutdown_grace_secs = 1;
    })
    .await;
    let url = format!("http://{}/hang", server.addr);
    tokio::spawn(async move { reqwest::get(url).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.shutdown.cancel();
    let result = server.task.await.unwrap();
    assert!(
        matches!(result, Err(daarion_http::ServeError::GraceExceeded(_))),
        "{result:?}"
    );
}

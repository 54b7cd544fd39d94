//! Request middleware: trace context and metrics around every request, and JSON bodies for every
//! error response, including the ones axum produces itself (bad JSON, wrong method, 413).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use daarion_telemetry::{TRACEPARENT, TraceContext};
use tracing::Instrument;

use crate::error::ErrorResponse;
use crate::metrics::{DURATION, REQUESTS};

/// Echoed back so a client can quote it; it equals the server span id when none was sent.
pub const REQUEST_ID: &str = "x-request-id";

/// Continues the caller's trace (or starts one), runs the request inside a span carrying
/// `trace_id`, returns `traceparent` and `x-request-id`, and records the request metrics.
pub async fn trace_requests(
    State(service): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let incoming = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok());
    let parent = incoming.and_then(|v| TraceContext::parse(v).ok());
    let ctx = match &parent {
        Some(parent) => parent.child(),
        None => TraceContext::new_root(),
    };
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| ctx.span_id());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = bounded_method(request.method());
    // The caller's span: the trace view links this request under it.
    let parent_id = parent.map(|p| p.span_id());
    let span = tracing::info_span!(
        "request",
        service,
        trace_id = %ctx.trace_id(),
        span_id = %ctx.span_id(),
        parent_id = parent_id.as_deref(),
        untraced = is_probe(&route).then_some(true),
        request_id = %request_id,
        method,
        route = %route,
        status = tracing::field::Empty,
    );

    let mut response = ctx.scope(next.run(request)).instrument(span.clone()).await;

    let status = response.status();
    span.record("status", status.as_u16());
    let elapsed = started.elapsed();
    REQUESTS
        .with_label_values(&[service, method, &route, status.as_str()])
        .inc();
    DURATION
        .with_label_values(&[service, &route])
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                millis = elapsed.as_millis() as u64,
                "request failed"
            );
        } else {
            tracing::debug!(
                status = status.as_u16(),
                millis = elapsed.as_millis() as u64,
                "request done"
            );
        }
    });

    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ctx.to_header()) {
        headers.insert(TRACEPARENT, v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, v);
    }
    response
}

/// Probes and the trace route itself are kept out of the span recorder: they would fill it
/// with nothing anyone looks for.
fn is_probe(route: &str) -> bool {
    matches!(
        route,
        "/health" | "/ready" | "/metrics" | crate::traces::TRACE_ROUTE
    )
}

fn bounded_method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Rewrites any 4xx/5xx response that is not already JSON into the standard error body, keeping
/// the framework's (short, non-internal) text as the message.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) if !bytes.is_empty() && !status.is_server_error() => {
            String::from_utf8_lossy(&bytes).trim().to_owned()
        }
        _ => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
    };
    let mut rewritten =
        ErrorResponse::new(status, ErrorResponse::code_for(status), text).into_response();
    // Keep headers such as Allow or Retry-After that the original response carried.
    for (name, value) in parts.headers.iter() {
        if name != CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

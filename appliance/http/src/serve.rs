//! Assembling a service's router with the shared layers, and serving it until shutdown.

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use daarion_config::HttpConfig;
use daarion_telemetry::{Readiness, observability_routes};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower::timeout::error::Elapsed;
use tower_http::limit::RequestBodyLimitLayer;

use crate::error::ErrorResponse;
use crate::middleware::{json_errors, trace_requests};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("in-flight requests did not finish within the {0:?} shutdown grace period")]
    GraceExceeded(Duration),
}

/// A service's routes plus `/health`, `/ready`, `/metrics`, `/internal/traces/{trace_id}`, a
/// JSON 404, and the shared layers:
/// trace + metrics (outermost, so it sees the final status), JSON errors, timeout, body limit.
pub fn build_app(
    service: &'static str,
    routes: Router,
    readiness: Readiness,
    http: &HttpConfig,
) -> Router {
    routes
        .merge(observability_routes(service, readiness))
        .merge(crate::traces::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(http.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(http.body_limit_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(timeout_error))
                .timeout(http.request_timeout()),
        )
        .layer(axum::middleware::from_fn(json_errors))
        .layer(axum::middleware::from_fn_with_state(
            service,
            trace_requests,
        ))
}

async fn not_found() -> ErrorResponse {
    ErrorResponse::not_found("no such endpoint")
}

async fn timeout_error(err: tower::BoxError) -> impl IntoResponse {
    if err.is::<Elapsed>() {
        ErrorResponse::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took longer than the server allows",
        )
    } else {
        tracing::error!(error = %err, "middleware error");
        ErrorResponse::internal()
    }
}

/// Serves `app` until `shutdown` fires, then stops accepting connections and gives in-flight
/// requests `grace` to finish before returning an error (the caller exits either way).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> Result<(), ServeError> {
    use axum::serve::ListenerExt;
    let signal = shutdown.clone();
    // Streamed answers are many small writes; Nagle's algorithm would hold each one back until
    // the previous is acknowledged (40 ms with delayed ACKs).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move { signal.cancelled().await })
        .into_future();
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(ServeError::Io),
        () = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result.map_err(ServeError::Io),
        Err(_) => Err(ServeError::GraceExceeded(grace)),
    }
}

/// [`build_app`] then [`serve`]: what every service's `run` ends with.
pub async fn serve_app(
    service: &'static str,
    routes: Router,
    readiness: Readiness,
    http: &HttpConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let app = build_app(service, routes, readiness, http);
    serve(listener, app, shutdown, http.shutdown_grace()).await
}

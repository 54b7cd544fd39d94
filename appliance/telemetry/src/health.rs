//! `/health` says the process is alive; `/ready` says its dependencies answer; `/metrics` is the
//! Prometheus exposition. The supervisor polls the first two.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::{BoxFuture, join_all};
use serde::Serialize;

/// `Ok(detail)` when the dependency answered, `Err(reason)` when it did not.
pub type CheckResult = Result<String, String>;

/// One dependency probe. Implementations must be cheap: `/ready` runs all of them per call.
pub trait Check: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn check(&self) -> BoxFuture<'_, CheckResult>;
}

struct FnCheck<F> {
    name: String,
    f: F,
}

impl<F> Check for FnCheck<F>
where
    F: Fn() -> BoxFuture<'static, CheckResult> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn check(&self) -> BoxFuture<'_, CheckResult> {
        (self.f)()
    }
}

/// The set of checks behind `/ready`.
#[derive(Clone)]
pub struct Readiness {
    checks: Arc<Vec<Arc<dyn Check>>>,
    timeout: Duration,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            checks: Arc::default(),
            timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    pub millis: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadinessReport {
    pub ready: bool,
    pub checks: Vec<CheckReport>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// A check slower than this counts as failed, so `/ready` answers in bounded time.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_check(mut self, check: impl Check) -> Self {
        Arc::make_mut(&mut self.checks).push(Arc::new(check));
        self
    }

    pub fn with_fn<F>(self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, CheckResult> + Send + Sync + 'static,
    {
        self.with_check(FnCheck {
            name: name.into(),
            f,
        })
    }

    pub async fn evaluate(&self) -> ReadinessReport {
        let runs = self.checks.iter().map(|check| async move {
            let started = Instant::now();
            let outcome = tokio::time::timeout(self.timeout, check.check()).await;
            let (ok, detail) = match outcome {
                Ok(Ok(detail)) => (true, detail),
                Ok(Err(reason)) => (false, reason),
                Err(_) => (false, format!("no answer within {:?}", self.timeout)),
            };
            CheckReport {
                name: check.name().to_owned(),
                ok,
                detail,
                millis: started.elapsed().as_millis() as u64,
            }
        });
        let checks = join_all(runs).await;
        ReadinessReport {
            ready: checks.iter().all(|c| c.ok),
            checks,
        }
    }
}

#[derive(Clone)]
struct HealthState {
    service: &'static str,
    readiness: Readiness,
}

/// `/health`, `/ready` and `/metrics`, to be merged into a service's router.
pub fn observability_routes<S>(service: &'static str, readiness: Readiness) -> Router<S> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(HealthState { service, readiness })
}

async fn health(State(state): State<HealthState>) -> impl IntoResponse {
    Json(serde_json::json!({
        "status": "ok",
        "service": state.service,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

async fn ready(State(state): State<HealthState>) -> impl IntoResponse {
    let report = state.readiness.evaluate().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report))
}

async fn metrics() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        crate::encode_metrics(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn ok_check() -> BoxFuture<'static, CheckResult> {
        Box::pin(async { Ok("fine".to_owned()) })
    }

    #[tokio::test]
    async fn ready_is_503_when_any_check_fails_and_names_it() {
        let readiness = Readiness::new()
            .with_fn("postgres", ok_check)
            .with_fn("nats", || {
                Box::pin(async { Err("connection refused".to_owned()) })
            });
        let app: Router = observability_routes("test", readiness);
        let response = app
            .oneshot(Request::get("/ready").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(report["ready"], false);
        assert_eq!(report["checks"][1]["name"], "nats");
        assert_eq!(report["checks"][1]["detail"], "connection refused");
        assert_eq!(report["checks"][0]["ok"], true);
    }

    #[tokio::test]
    async fn slow_check_times_out() {
        let readiness = Readiness::new()
            .with_timeout(Duration::from_millis(50))
            .with_fn("slow", || {
                Box::pin(async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(String::new())
                })
            });
        let report = readiness.evaluate().await;
        assert!(!report.ready);
        assert!(report.checks[0].detail.contains("no answer"));
    }

    #[tokio::test]
    async fn health_and_metrics_answer() {
        let counter = prometheus::register_int_counter!(
            crate::metric_name("telemetry_selftest_total"),
            "test counter"
        )
        .unwrap();
        counter.inc();
        let app: Router = observability_routes("test", Readiness::new());
        let health = app
            .clone()
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let metrics = app
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = axum::body::to_bytes(metrics.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains("daarion_telemetry_selftest_total 1"),
            "{text}"
        );
    }
}

//! `/api/monitoring/*` on the admin port: what the admin UI's Metrics and Alerts pages read from
//! the Prometheus and Alertmanager the supervisor runs. Both listen on loopback without
//! authentication, so the browser never reaches them: every call comes through here, behind the
//! admin middleware, and only the few calls the pages need pass, with every parameter checked.
//!
//! | Here | Upstream |
//! |---|---|
//! | `GET /api/monitoring/query_range?query&start&end&step` | Prometheus `GET /api/v1/query_range` |
//! | `GET /api/monitoring/query?query[&time]` | Prometheus `GET /api/v1/query` |
//! | `GET /api/monitoring/rules[?type=alert\|record]` | Prometheus `GET /api/v1/rules` |
//! | `GET /api/monitoring/alerts` | Prometheus `GET /api/v1/alerts` (pending and firing) |
//! | `GET /api/monitoring/alertmanager/alerts[?active&silenced&inhibited]` | Alertmanager `GET /api/v2/alerts` |
//! | `GET /api/monitoring/silences` | Alertmanager `GET /api/v2/silences` |
//! | `POST /api/monitoring/silences` `{matchers, duration_secs, comment, created_by}` | Alertmanager `POST /api/v2/silences` |
//! | `DELETE /api/monitoring/silence/{id}` | Alertmanager `DELETE /api/v2/silence/{id}` |
//!
//! Answers are the upstream's JSON unchanged. When the unit is off, not ready, or does not
//! answer: 503 `monitoring is off: <why>`. An upstream's refusal (bad PromQL, an unknown silence)
//! becomes ours with its message; an answer larger than [`MAX_ANSWER`] is refused rather than held.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use daarion_config::MonitoringConfig;
use daarion_http::ErrorResponse;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::plan::UnitName;
use super::probe::dial;
use super::unit::{State as UnitState, UnitHandle};

/// The longest a page waits for Prometheus; its own query timeout is a little shorter so that it
/// gives up (and says why) before we do.
const TIMEOUT: Duration = Duration::from_secs(30);
const PROMETHEUS_QUERY_TIMEOUT: &str = "25s";
/// A dashboard panel over 7 days at its step is well under a megabyte; 16 MiB leaves room for a
/// busy box's rules and alerts without letting one query fill the supervisor's memory.
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// Prometheus refuses more than 11,000 points per series; we refuse first, in our words.
const MAX_POINTS: f64 = 11_000.0;
/// Retention is counted in days; a range longer than a year is a mistake, not a question.
const MAX_RANGE_SECS: f64 = 366.0 * 86_400.0;
const MAX_QUERY_LEN: usize = 4096;
const MAX_MATCHERS: usize = 20;
const MAX_SILENCE_SECS: u64 = 90 * 86_400;

#[derive(Clone)]
pub struct MonitoringApi {
    http: reqwest::Client,
    prometheus: SocketAddr,
    alertmanager: SocketAddr,
    /// The two units' states say why monitoring is off before any call is tried.
    units: Arc<Vec<UnitHandle>>,
}

impl MonitoringApi {
    pub fn new(config: &MonitoringConfig, units: Arc<Vec<UnitHandle>>) -> MonitoringApi {
        MonitoringApi {
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .connect_timeout(Duration::from_secs(2))
                .build()
                .unwrap_or_default(),
            prometheus: dial(config.prometheus_listen),
            alertmanager: dial(config.alertmanager_listen),
            units,
        }
    }

    /// Why `unit` cannot answer now, from its supervisor state; `None` when it is ready.
    fn off(&self, unit: UnitName) -> Option<String> {
        let Some(handle) = self.units.iter().find(|u| u.name == unit) else {
            return Some("monitoring.enabled = false".into());
        };
        let status = handle.snapshot();
        match status.state {
            UnitState::Ready => None,
            UnitState::Off => Some(status.detail.unwrap_or_else(|| format!("{unit} is off"))),
            state => Some(match status.detail {
                Some(detail) => format!("{unit} is {} ({detail})", state.as_str()),
                None => format!("{unit} is {}", state.as_str()),
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MonitoringApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("monitoring is off: {0}")]
    Off(String),
    #[error("{upstream}: {message}")]
    Refused {
        upstream: &'static str,
        status: StatusCode,
        message: String,
    },
    #[error("{0} did not answer within {1} s")]
    Timeout(&'static str, u64),
    #[error("{0}'s answer is larger than {MAX_ANSWER} bytes; narrow the query or the range")]
    TooLarge(&'static str),
    #[error("{0} failed; see the supervisor's log")]
    Upstream(&'static str),
}

impl IntoResponse for MonitoringApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            MonitoringApiError::BadRequest(_) => ErrorResponse::bad_request(message),
            MonitoringApiError::Off(_) => ErrorResponse::unavailable(message),
            MonitoringApiError::Refused { status, .. } => match status {
                StatusCode::NOT_FOUND => ErrorResponse::not_found(message),
                // Prometheus: 400 bad_data (a query that does not parse), 422 execution (one
                // that parses but cannot run); Alertmanager: 400 for a silence it refuses.
                StatusCode::UNPROCESSABLE_ENTITY => ErrorResponse::invalid(message),
                _ => ErrorResponse::bad_request(message),
            },
            MonitoringApiError::Timeout(..) => {
                ErrorResponse::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
            }
            MonitoringApiError::TooLarge(_) | MonitoringApiError::Upstream(_) => {
                ErrorResponse::new(StatusCode::BAD_GATEWAY, "upstream", message)
            }
        }
        .into_response()
    }
}

type Result<T> = std::result::Result<T, MonitoringApiError>;

/// The routes, authorised by the router they are merged into (mount them before its auth layer).
pub fn routes<S: Clone + Send + Sync + 'static>(api: MonitoringApi) -> Router<S> {
    Router::new()
        .route("/api/monitoring/query_range", get(query_range))
        .route("/api/monitoring/query", get(instant_query))
        .route("/api/monitoring/rules", get(rules))
        .route("/api/monitoring/alerts", get(prometheus_alerts))
        .route(
            "/api/monitoring/alertmanager/alerts",
            get(alertmanager_alerts),
        )
        .route(
            "/api/monitoring/silences",
            get(silences).post(create_silence),
        )
        .route("/api/monitoring/silence/{id}", delete(expire_silence))
        .with_state(api)
}

type Params = Query<HashMap<String, String>>;

/// Refuses parameters the call does not take: a typo should fail loudly, not be ignored.
fn only(params: &HashMap<String, String>, allowed: &[&str]) -> Result<()> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(MonitoringApiError::BadRequest(format!(
            "unknown parameter `{unknown}`; this call takes: {}",
            if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            }
        ))),
        None => Ok(()),
    }
}

fn promql(params: &HashMap<String, String>) -> Result<String> {
    let query = params.get("query").map(|q| q.trim()).unwrap_or_default();
    if query.is_empty() {
        return Err(MonitoringApiError::BadRequest(
            "`query` (PromQL) is required".into(),
        ));
    }
    if query.len() > MAX_QUERY_LEN {
        return Err(MonitoringApiError::BadRequest(format!(
            "`query` is longer than {MAX_QUERY_LEN} bytes"
        )));
    }
    Ok(query.to_owned())
}

/// A time as Unix seconds (fractions allowed), the one form the UI sends.
fn unix_seconds(params: &HashMap<String, String>, name: &str) -> Result<Option<f64>> {
    let Some(text) = params.get(name) else {
        return Ok(None);
    };
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(Some(value)),
        _ => Err(MonitoringApiError::BadRequest(format!(
            "`{name}` must be a non-negative number of seconds, not `{text}`"
        ))),
    }
}

fn required(value: Option<f64>, name: &str) -> Result<f64> {
    value.ok_or_else(|| MonitoringApiError::BadRequest(format!("`{name}` is required")))
}

/// Checks a range query; returns Prometheus's parameters.
fn range_params(params: &HashMap<String, String>) -> Result<Vec<(&'static str, String)>> {
    only(params, &["query", "start", "end", "step"])?;
    let query = promql(params)?;
    let start = required(unix_seconds(params, "start")?, "start")?;
    let end = required(unix_seconds(params, "end")?, "end")?;
    let step = required(unix_seconds(params, "step")?, "step")?;
    let bad = |m: String| Err(MonitoringApiError::BadRequest(m));
    if end <= start {
        return bad(format!("`end` ({end}) must be after `start` ({start})"));
    }
    if end - start > MAX_RANGE_SECS {
        return bad("the range is longer than 366 days".into());
    }
    if step < 1.0 {
        return bad("`step` must be at least 1 second".into());
    }
    if (end - start) / step > MAX_POINTS {
        return bad(format!(
            "{} points per series is more than {MAX_POINTS}; use a larger `step`",
            ((end - start) / step).ceil()
        ));
    }
    Ok(vec![
        ("query", query),
        ("start", start.to_string()),
        ("end", end.to_string()),
        ("step", step.to_string()),
        ("timeout", PROMETHEUS_QUERY_TIMEOUT.into()),
    ])
}

fn instant_params(params: &HashMap<String, String>) -> Result<Vec<(&'static str, String)>> {
    only(params, &["query", "time"])?;
    let mut out = vec![
        ("query", promql(params)?),
        ("timeout", PROMETHEUS_QUERY_TIMEOUT.into()),
    ];
    if let Some(time) = unix_seconds(params, "time")? {
        out.push(("time", time.to_string()));
    }
    Ok(out)
}

fn flag(
    params: &HashMap<String, String>,
    name: &'static str,
) -> Result<Option<(&'static str, String)>> {
    match params.get(name).map(String::as_str) {
        None => Ok(None),
        Some(v @ ("true" | "false")) => Ok(Some((name, v.to_owned()))),
        Some(other) => Err(MonitoringApiError::BadRequest(format!(
            "`{name}` must be true or false, not `{other}`"
        ))),
    }
}

async fn query_range(State(api): State<MonitoringApi>, Query(params): Params) -> Result<Response> {
    let upstream = range_params(&params)?;
    prometheus(&api, "/api/v1/query_range", &upstream).await
}

async fn instant_query(
    State(api): State<MonitoringApi>,
    Query(params): Params,
) -> Result<Response> {
    let upstream = instant_params(&params)?;
    prometheus(&api, "/api/v1/query", &upstream).await
}

async fn rules(State(api): State<MonitoringApi>, Query(params): Params) -> Result<Response> {
    only(&params, &["type"])?;
    let upstream = match params.get("type").map(String::as_str) {
        None => vec![],
        Some(kind @ ("alert" | "record")) => vec![("type", kind.to_owned())],
        Some(other) => {
            return Err(MonitoringApiError::BadRequest(format!(
                "`type` must be alert or record, not `{other}`"
            )));
        }
    };
    prometheus(&api, "/api/v1/rules", &upstream).await
}

async fn prometheus_alerts(
    State(api): State<MonitoringApi>,
    Query(params): Params,
) -> Result<Response> {
    only(&params, &[])?;
    prometheus(&api, "/api/v1/alerts", &[]).await
}

async fn alertmanager_alerts(
    State(api): State<MonitoringApi>,
    Query(params): Params,
) -> Result<Response> {
    only(&params, &["active", "silenced", "inhibited"])?;
    let mut upstream = Vec::new();
    for name in ["active", "silenced", "inhibited"] {
        upstream.extend(flag(&params, name)?);
    }
    alertmanager(
        &api,
        reqwest::Method::GET,
        "/api/v2/alerts",
        &upstream,
        None,
    )
    .await
}

async fn silences(State(api): State<MonitoringApi>, Query(params): Params) -> Result<Response> {
    only(&params, &[])?;
    alertmanager(&api, reqwest::Method::GET, "/api/v2/silences", &[], None).await
}

/// What the UI sends to silence alerts: which, for how long, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub matchers: Vec<Matcher>,
    pub duration_secs: u64,
    pub comment: String,
    pub created_by: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    #[serde(default, rename(serialize = "isRegex"))]
    pub is_regex: bool,
    #[serde(default = "yes", rename(serialize = "isEqual"))]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

fn label_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Alertmanager's `postableSilence`, starting now.
fn silence_body(new: NewSilence, now: OffsetDateTime) -> Result<serde_json::Value> {
    let bad = |m: String| Err(MonitoringApiError::BadRequest(m));
    if new.matchers.is_empty() || new.matchers.len() > MAX_MATCHERS {
        return bad(format!("a silence needs 1 to {MAX_MATCHERS} matchers"));
    }
    for m in &new.matchers {
        if !label_name_ok(&m.name) || m.name.len() > 128 {
            return bad(format!("`{}` is not a label name", m.name));
        }
        if m.value.len() > 1024 {
            return bad(format!(
                "the value for `{}` is longer than 1024 bytes",
                m.name
            ));
        }
    }
    // A silence whose every matcher matches the empty string silences everything.
    if new
        .matchers
        .iter()
        .all(|m| !m.is_regex && m.is_equal && m.value.is_empty())
    {
        return bad("at least one matcher must have a value".into());
    }
    if !(60..=MAX_SILENCE_SECS).contains(&new.duration_secs) {
        return bad(format!(
            "`duration_secs` must be 60 to {MAX_SILENCE_SECS} (90 days)"
        ));
    }
    let comment = new.comment.trim();
    if comment.is_empty() || comment.len() > 1000 {
        return bad("`comment` must say why, in 1 to 1000 bytes".into());
    }
    let created_by = new.created_by.trim();
    if created_by.is_empty() || created_by.len() > 200 {
        return bad("`created_by` must be 1 to 200 bytes".into());
    }
    let stamp = |t: OffsetDateTime| {
        t.format(&Rfc3339)
            .map_err(|_| MonitoringApiError::BadRequest("the time cannot be written".into()))
    };
    let ends = now + Duration::from_secs(new.duration_secs);
    Ok(serde_json::json!({
        "matchers": new.matchers,
        "startsAt": stamp(now)?,
        "endsAt": stamp(ends)?,
        "createdBy": created_by,
        "comment": comment,
    }))
}

async fn create_silence(
    State(api): State<MonitoringApi>,
    axum::Json(new): axum::Json<NewSilence>,
) -> Result<Response> {
    let body = silence_body(new, OffsetDateTime::now_utc())?;
    let answer = alertmanager(
        &api,
        reqwest::Method::POST,
        "/api/v2/silences",
        &[],
        Some(&body),
    )
    .await?;
    tracing::info!(matchers = %body["matchers"], ends = %body["endsAt"], "silence created");
    Ok(answer)
}

fn silence_id_ok(id: &str) -> bool {
    id.len() == 36
        && id.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

async fn expire_silence(
    State(api): State<MonitoringApi>,
    Path(id): Path<String>,
) -> Result<Response> {
    if !silence_id_ok(&id) {
        return Err(MonitoringApiError::BadRequest(format!(
            "`{id}` is not a silence id"
        )));
    }
    let answer = alertmanager(
        &api,
        reqwest::Method::DELETE,
        &format!("/api/v2/silence/{id}"),
        &[],
        None,
    )
    .await?;
    tracing::info!(silence = %id, "silence expired");
    Ok(answer)
}

async fn prometheus(
    api: &MonitoringApi,
    path: &str,
    params: &[(&'static str, String)],
) -> Result<Response> {
    if let Some(why) = api.off(UnitName::Prometheus) {
        return Err(MonitoringApiError::Off(why));
    }
    let request = api
        .http
        .get(format!("http://{}{path}", api.prometheus))
        .query(params);
    forward("Prometheus", api.prometheus, request).await
}

async fn alertmanager(
    api: &MonitoringApi,
    method: reqwest::Method,
    path: &str,
    params: &[(&'static str, String)],
    body: Option<&serde_json::Value>,
) -> Result<Response> {
    if let Some(why) = api.off(UnitName::Alertmanager) {
        return Err(MonitoringApiError::Off(why));
    }
    let mut request = api
        .http
        .request(method, format!("http://{}{path}", api.alertmanager))
        .query(params);
    if let Some(body) = body {
        request = request.json(body);
    }
    forward("Alertmanager", api.alertmanager, request).await
}

/// Sends, reads at most [`MAX_ANSWER`] bytes, and answers with the upstream's JSON.
async fn forward(
    upstream: &'static str,
    addr: SocketAddr,
    request: reqwest::RequestBuilder,
) -> Result<Response> {
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            MonitoringApiError::Timeout(upstream, TIMEOUT.as_secs())
        } else if e.is_connect() {
            MonitoringApiError::Off(format!("{upstream} is not answering on {addr}"))
        } else {
            tracing::warn!(error = %e, upstream, "monitoring API");
            MonitoringApiError::Upstream(upstream)
        }
    };
    let mut response = request.send().await.map_err(failed)?;
    let status = response.status();
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER as u64)
    {
        return Err(MonitoringApiError::TooLarge(upstream));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(MonitoringApiError::TooLarge(upstream));
        }
        body.extend_from_slice(&chunk);
    }
    let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if status.is_success() {
        // Alertmanager's DELETE answers 200 with an empty body; the UI reads JSON.
        if body.is_empty() {
            body = b"{}".to_vec();
        }
        return Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response());
    }
    if status.is_client_error() {
        return Err(MonitoringApiError::Refused {
            upstream,
            status,
            message: refusal(&body),
        });
    }
    tracing::warn!(%status, upstream, body = %String::from_utf8_lossy(&body[..body.len().min(500)]), "monitoring API");
    Err(MonitoringApiError::Upstream(upstream))
}

/// The reason in a refusal: Prometheus's `{"error": "..."}`, Alertmanager's JSON string or
/// `{"message": "..."}`, or the text itself, shortened.
fn refusal(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v
            .get("error")
            .or_else(|| v.get("message"))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.trim();
    match text.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::Json;
    use axum::extract::RawQuery;
    use serde_json::{Value, json};

    use super::*;
    use crate::up::ring::LogRing;
    use crate::up::unit::UnitStatus;

    /// Stands in for Prometheus and Alertmanager on one port, with their real answers' shapes;
    /// remembers each query string it was sent.
    #[derive(Clone, Default)]
    struct Upstream {
        seen: Arc<Mutex<Vec<String>>>,
    }

    async fn stand_in() -> (SocketAddr, Upstream) {
        let upstream = Upstream::default();
        let seen = upstream.clone();
        let remember = move |q: Option<String>| {
            seen.seen.lock().unwrap().push(q.unwrap_or_default());
        };
        let r1 = remember.clone();
        let r2 = remember.clone();
        let app = Router::new()
            .route(
                "/api/v1/query_range",
                get(move |RawQuery(q): RawQuery| async move {
                    let bad = q.as_deref().unwrap_or_default().contains("query=bad");
                    r1(q);
                    if bad {
                        return (
                            StatusCode::BAD_REQUEST,
                            Json(json!({"status": "error", "errorType": "bad_data",
                                "error": "invalid parameter \"query\": 1:4: parse error: unexpected end of input"})),
                        );
                    }
                    (StatusCode::OK, Json(json!({"status": "success", "data": {"resultType": "matrix",
                        "result": [{"metric": {"service": "gateway"}, "values": [[1700000000, "1.5"]]}]}})))
                }),
            )
            .route(
                "/api/v1/query",
                // Larger than the limit: the API must refuse it rather than hold it.
                get(|| async { "x".repeat(MAX_ANSWER + 1) }),
            )
            .route(
                "/api/v1/alerts",
                get(|| async {
                    Json(json!({"status": "success", "data": {"alerts": [{"labels": {"alertname": "ServiceDown",
                        "severity": "critical"}, "annotations": {"summary": "gateway is down"}, "state": "firing",
                        "activeAt": "2026-12-03T17:00:00Z", "value": "0e+00"}]}}))
                }),
            )
            .route(
                "/api/v1/rules",
                get(move |RawQuery(q): RawQuery| async move {
                    r2(q);
                    Json(json!({"status": "success", "data": {"groups": []}}))
                }),
            )
            .route(
                "/api/v2/silences",
                get(|| async { Json(json!([])) }).post(move |Json(body): Json<Value>| async move {
                    remember(Some(body.to_string()));
                    Json(json!({"silenceID": "0b5b2a3c-1d4e-4f60-8a9b-0c1d2e3f4a5b"}))
                }),
            )
            .route(
                "/api/v2/silence/{id}",
                delete(|Path(id): Path<String>| async move {
                    if id.starts_with("00000000") {
                        (StatusCode::NOT_FOUND, "silence not found".to_owned())
                    } else {
                        (StatusCode::OK, String::new())
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, upstream)
    }

    fn unit(name: UnitName, state: UnitState, detail: Option<&str>) -> UnitHandle {
        UnitHandle {
            name,
            status: Arc::new(std::sync::Mutex::new(UnitStatus {
                name: name.as_str().to_owned(),
                state,
                pid: None,
                started_at: None,
                restarts: 0,
                last_exit: None,
                detail: detail.map(str::to_owned),
            })),
            ring: Arc::new(LogRing::new(10)),
            commands: tokio::sync::mpsc::channel(1).0,
        }
    }

    /// The API in front of `upstream` (both units there), served; returns its base URL.
    async fn api(upstream: SocketAddr, units: Vec<UnitHandle>) -> String {
        let mut config = daarion_config::Config::defaults().monitoring;
        config.prometheus_listen = upstream;
        config.alertmanager_listen = upstream;
        let app: Router = routes(MonitoringApi::new(&config, Arc::new(units)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn ready() -> Vec<UnitHandle> {
        vec![
            unit(UnitName::Prometheus, UnitState::Ready, None),
            unit(UnitName::Alertmanager, UnitState::Ready, None),
        ]
    }

    async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
        let mut request = reqwest::Client::new().request(method, url);
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

    async fn get_json(url: String) -> (u16, Value) {
        call(reqwest::Method::GET, url, None).await
    }

    fn message(body: &Value) -> &str {
        body["error"]["message"].as_str().unwrap_or_default()
    }

    #[tokio::test]
    async fn a_range_query_passes_through_with_its_parameters_checked() {
        let (upstream, seen) = stand_in().await;
        let base = api(upstream, ready()).await;
        let (status, body) = get_json(format!(
            "{base}/api/monitoring/query_range?query=up&start=1700000000&end=1700003600&step=15"
        ))
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["result"][0]["metric"]["service"], "gateway");
        let sent = seen.seen.lock().unwrap().last().cloned().unwrap();
        assert!(
            sent.contains("query=up") && sent.contains("step=15"),
            "{sent}"
        );
        assert!(
            sent.contains("timeout=25s"),
            "Prometheus gives up first: {sent}"
        );

        // Each refused before Prometheus is asked.
        for (query, why) in [
            ("start=1&end=2&step=1", "`query` (PromQL) is required"),
            ("query=up&end=2&step=1", "`start` is required"),
            ("query=up&start=10&end=5&step=1", "must be after"),
            ("query=up&start=0&end=86400&step=1", "use a larger `step`"),
            ("query=up&start=0&end=60&step=0.5", "at least 1 second"),
            ("query=up&start=now&end=60&step=1", "non-negative number"),
            (
                "query=up&start=0&end=60&step=1&timeout=1h",
                "unknown parameter `timeout`",
            ),
            (
                "query=up&start=0&end=40000000&step=86400",
                "longer than 366 days",
            ),
        ] {
            let before = seen.seen.lock().unwrap().len();
            let (status, body) =
                get_json(format!("{base}/api/monitoring/query_range?{query}")).await;
            assert_eq!(status, 400, "{query}: {body}");
            assert!(message(&body).contains(why), "{query}: {body}");
            assert_eq!(
                seen.seen.lock().unwrap().len(),
                before,
                "{query} reached upstream"
            );
        }
    }

    #[tokio::test]
    async fn prometheus_refusals_and_oversized_answers_become_ours() {
        let (upstream, _) = stand_in().await;
        let base = api(upstream, ready()).await;
        let (status, body) = get_json(format!(
            "{base}/api/monitoring/query_range?query=bad(&start=0&end=60&step=15"
        ))
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            message(&body).starts_with("Prometheus: invalid parameter"),
            "{body}"
        );

        let (status, body) = get_json(format!("{base}/api/monitoring/query?query=up")).await;
        assert_eq!(status, 502, "{body}");
        assert!(message(&body).contains("larger than"), "{body}");
    }

    #[tokio::test]
    async fn alerts_rules_and_silences_pass_through() {
        let (upstream, seen) = stand_in().await;
        let base = api(upstream, ready()).await;
        let (status, body) = get_json(format!("{base}/api/monitoring/alerts")).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["alerts"][0]["state"], "firing");

        let (status, _) = get_json(format!("{base}/api/monitoring/rules?type=alert")).await;
        assert_eq!(status, 200);
        assert_eq!(seen.seen.lock().unwrap().last().unwrap(), "type=alert");
        let (status, _) = get_json(format!("{base}/api/monitoring/rules?type=all")).await;
        assert_eq!(status, 400);
        let (status, _) = get_json(format!(
            "{base}/api/monitoring/alertmanager/alerts?silenced=maybe"
        ))
        .await;
        assert_eq!(status, 400);

        let (status, body) = get_json(format!("{base}/api/monitoring/silences")).await;
        assert_eq!((status, body), (200, json!([])));

        let silence = json!({"matchers": [{"name": "alertname", "value": "ServiceDown"}],
            "duration_secs": 3600, "comment": "maintenance", "created_by": "admin"});
        let (status, body) = call(
            reqwest::Method::POST,
            format!("{base}/api/monitoring/silences"),
            Some(silence),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["silenceID"].is_string());
        let sent: Value = serde_json::from_str(seen.seen.lock().unwrap().last().unwrap()).unwrap();
        assert_eq!(
            sent["matchers"],
            json!([{"name": "alertname", "value": "ServiceDown", "isRegex": false, "isEqual": true}])
        );
        assert_eq!(sent["createdBy"], "admin");
        let starts = OffsetDateTime::parse(sent["startsAt"].as_str().unwrap(), &Rfc3339).unwrap();
        let ends = OffsetDateTime::parse(sent["endsAt"].as_str().unwrap(), &Rfc3339).unwrap();
        assert_eq!((ends - starts).whole_seconds(), 3600);

        let expire = |id: &str| {
            call(
                reqwest::Method::DELETE,
                format!("{base}/api/monitoring/silence/{id}"),
                None,
            )
        };
        assert_eq!(
            expire("0b5b2a3c-1d4e-4f60-8a9b-0c1d2e3f4a5b").await,
            (200, json!({}))
        );
        let (status, body) = expire("00000000-1d4e-4f60-8a9b-0c1d2e3f4a5b").await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(message(&body), "Alertmanager: silence not found");
        assert_eq!(expire("..%2F..%2Fapi%2Fv2%2Fstatus").await.0, 400);
    }

    #[test]
    fn silences_that_would_hide_too_much_are_refused() {
        let now = OffsetDateTime::now_utc();
        let new = |matchers: Value, duration: u64, comment: &str| -> NewSilence {
            serde_json::from_value(json!({"matchers": matchers, "duration_secs": duration,
                "comment": comment, "created_by": "admin"}))
            .unwrap()
        };
        let one = json!([{"name": "alertname", "value": "X"}]);
        for (silence, why) in [
            (new(json!([]), 3600, "x"), "1 to 20 matchers"),
            (
                new(json!([{"name": "a", "value": ""}]), 3600, "x"),
                "must have a value",
            ),
            (
                new(json!([{"name": "1a", "value": "x"}]), 3600, "x"),
                "not a label name",
            ),
            (new(one.clone(), 59, "x"), "`duration_secs` must be"),
            (
                new(one.clone(), 91 * 86_400, "x"),
                "`duration_secs` must be",
            ),
            (new(one.clone(), 3600, "  "), "`comment` must say why"),
        ] {
            let error = silence_body(silence, now).unwrap_err().to_string();
            assert!(error.contains(why), "{error} (wanted {why})");
        }
        assert!(silence_body(new(one, 3600, "ok"), now).is_ok());
    }

    #[tokio::test]
    async fn off_not_ready_or_not_answering_is_503_with_the_reason() {
        let (upstream, _) = stand_in().await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let nobody = closed.local_addr().unwrap();
        drop(closed);
        let cases: [(SocketAddr, Vec<UnitHandle>, &str); 4] = [
            (
                upstream,
                vec![],
                "monitoring is off: monitoring.enabled = false",
            ),
            (
                upstream,
                vec![unit(
                    UnitName::Prometheus,
                    UnitState::Off,
                    Some("/usr/bin/prometheus not found (monitoring.prometheus_bin)"),
                )],
                "monitoring is off: /usr/bin/prometheus not found",
            ),
            (
                upstream,
                vec![unit(
                    UnitName::Prometheus,
                    UnitState::Backoff,
                    Some("exit 1"),
                )],
                "monitoring is off: prometheus is backoff (exit 1)",
            ),
            (
                nobody,
                ready(),
                "monitoring is off: Prometheus is not answering on",
            ),
        ];
        for (addr, units, why) in cases {
            let base = api(addr, units).await;
            let (status, body) = get_json(format!("{base}/api/monitoring/alerts")).await;
            assert_eq!(status, 503, "{body}");
            assert!(message(&body).starts_with(why), "{body} (wanted {why})");
        }
    }

    /// A real binary (Debian's, as the installer puts them; `tests/setup.sh` installs both) on a
    /// free loopback port, killed when the test ends.
    struct Real {
        addr: SocketAddr,
        dir: std::path::PathBuf,
        _child: tokio::process::Child,
    }

    impl Drop for Real {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    async fn real(
        program: &str,
        config: &str,
        args: impl Fn(&std::path::Path) -> Vec<String>,
    ) -> Real {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "daarion-monitoring-api-{}-{}",
            std::process::id(),
            addr.port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let child = tokio::process::Command::new(program)
            .arg(format!(
                "--config.file={}",
                dir.join("config.yml").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .args(args(&dir))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e} (tests/setup.sh installs it)"));
        let ready = format!("http://{addr}/-/ready");
        for _ in 0..200 {
            if reqwest::get(&ready)
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Real {
                    addr,
                    dir,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{program} not ready on {addr} in 10 s");
    }

    #[tokio::test]
    async fn the_real_prometheus_and_alertmanager_answer_through_it() {
        let prometheus = real(
            "/usr/bin/prometheus",
            "global: {scrape_interval: 1s}\nscrape_configs: []\n",
            |dir| {
                vec![format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                )]
            },
        )
        .await;
        let alertmanager = real(
            "/usr/bin/prometheus-alertmanager",
            "route: {receiver: none}\nreceivers: [{name: none}]\n",
            |dir| {
                vec![
                    format!("--storage.path={}", dir.join("data").display()),
                    "--cluster.listen-address=".into(),
                ]
            },
        )
        .await;
        let mut config = daarion_config::Config::defaults().monitoring;
        config.prometheus_listen = prometheus.addr;
        config.alertmanager_listen = alertmanager.addr;
        let app: Router = routes(MonitoringApi::new(&config, Arc::new(ready())));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        // The parameters as the Metrics page sends them (fractional seconds included).
        let now = OffsetDateTime::now_utc().unix_timestamp() as f64;
        let (status, body) = get_json(format!(
            "{base}/api/monitoring/query_range?query=vector(2)&start={}&end={now}&step=15",
            now - 3600.5
        ))
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["resultType"], "matrix");
        assert_eq!(body["data"]["result"][0]["values"][0][1], "2");
        let (status, body) = get_json(format!(
            "{base}/api/monitoring/query_range?query=rate(up[5m]&start=0&end=60&step=15"
        ))
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(message(&body).contains("parse error"), "{body}");
        for path in ["alerts", "rules", "query?query=time()"] {
            let (status, body) = get_json(format!("{base}/api/monitoring/{path}")).await;
            assert_eq!(
                (status, &body["status"]),
                (200, &json!("success")),
                "{path}: {body}"
            );
        }

        let (status, body) = call(
            reqwest::Method::POST,
            format!("{base}/api/monitoring/silences"),
            Some(
                json!({"matchers": [{"name": "alertname", "value": "ServiceDown"},
                {"name": "unit", "value": "gate.*", "is_regex": true}],
                "duration_secs": 600, "comment": "test", "created_by": "admin"}),
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let id = body["silenceID"].as_str().unwrap().to_owned();
        let state = |silences: &Value| {
            silences
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["id"] == id.as_str())
                .map(|s| s["status"]["state"].clone())
        };
        let (_, silences) = get_json(format!("{base}/api/monitoring/silences")).await;
        assert_eq!(state(&silences), Some(json!("active")), "{silences}");
        let (status, _) = call(
            reqwest::Method::DELETE,
            format!("{base}/api/monitoring/silence/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200);
        let (_, silences) = get_json(format!("{base}/api/monitoring/silences")).await;
        assert_eq!(state(&silences), Some(json!("expired")), "{silences}");
        let (status, body) = get_json(format!(
            "{base}/api/monitoring/alertmanager/alerts?active=true"
        ))
        .await;
        assert_eq!((status, body), (200, json!([])));
    }
}

//! The one way a DAARION process calls another over HTTP.
//!
//! Each service has a client crate (`daarion-router-client`, `daarion-memory-client`,
//! `daarion-swapper-client`, `daarion-control-client`) holding the wire types both ends compile
//! against; they all stand on this crate, so every call between processes:
//!
//! - goes through a client made by [`http_client`] (no proxy from the environment: every hop is
//!   on the box, and a `HTTP_PROXY` meant for the outside world must not capture it);
//! - carries the caller's credential as a bearer token and the current trace as `traceparent`,
//!   naming the span it is made in as the parent, so the callee's request span hangs under a
//!   span the caller records ([`Service::request`]);
//! - reads an error answer as the services' shared body `{"error": {code, message, trace_id}}`
//!   ([`daarion_http::ErrorBody`]) into a [`ClientError`] the caller can match on: a transport
//!   failure or a 5xx is [`ClientError::Unavailable`] (worth retrying or a fallback), a 4xx is
//!   [`ClientError::Refused`] (the request itself was wrong or not allowed), and a 2xx whose body
//!   does not parse is [`ClientError::Protocol`] (the two ends disagree on the contract).

use std::time::Duration;

use daarion_http::ErrorBody;
use daarion_telemetry::TraceContext;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

pub use reqwest;

/// How long a call may take. `connect` bounds reaching a local service that is down or
/// restarting; `total`, when set, bounds the whole exchange (leave it unset for streams).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub total: Option<Duration>,
}

impl Timeouts {
    /// A call that must answer within `total`, connection included.
    pub fn total(total: Duration) -> Timeouts {
        Timeouts {
            connect: total.min(Duration::from_secs(5)),
            total: Some(total),
        }
    }

    /// A streamed answer: only connecting is bounded; the stream's own pace is the caller's.
    pub fn streaming() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            total: None,
        }
    }
}

/// The HTTP client every DAARION process uses for calls on the box.
pub fn http_client(timeouts: Timeouts) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .no_proxy();
    if let Some(total) = timeouts.total {
        builder = builder.timeout(total);
    }
    builder
        .build()
        .expect("a client with no TLS and no proxy always builds")
}

/// The HTTP client for calls that leave the box (model downloads): unlike [`http_client`] it
/// honours `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`, as a box behind a proxy needs.
pub fn outbound_client(timeouts: Timeouts) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().connect_timeout(timeouts.connect);
    if let Some(total) = timeouts.total {
        builder = builder.timeout(total);
    }
    builder
        .build()
        .expect("a client with no custom TLS always builds")
}

/// Why a call to another service did not give the answer asked for.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Not reachable, timed out, or it failed on its side (5xx): nothing wrong with the request.
    #[error("{service} unavailable: {detail}")]
    Unavailable {
        service: &'static str,
        /// HTTP status of a 5xx; `None` when no answer came.
        status: Option<u16>,
        detail: String,
    },
    /// The service refused the request (4xx); `body` says why in its own words.
    #[error("{service} answered HTTP {status}: {}", body.message)]
    Refused {
        service: &'static str,
        status: u16,
        body: ErrorBody,
    },
    /// A success whose body is not what the contract says.
    #[error("unexpected answer from {service}: {detail}")]
    Protocol {
        service: &'static str,
        detail: String,
    },
}

impl ClientError {
    /// The HTTP status the service answered, if it answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Unavailable { status, .. } => *status,
            ClientError::Refused { status, .. } => Some(*status),
            ClientError::Protocol { .. } => None,
        }
    }

    /// The service's stable error code (`not_found`, `invalid`, …) for a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { body, .. } => Some(&body.code),
            _ => None,
        }
    }

    /// What the service said, or what went wrong reaching it: for logs and for the caller's
    /// own error, never with a credential in it (reqwest's errors carry the URL, which carries
    /// none: tokens travel in headers).
    pub fn message(&self) -> String {
        match self {
            ClientError::Unavailable { detail, .. } | ClientError::Protocol { detail, .. } => {
                detail.clone()
            }
            ClientError::Refused { body, .. } => body.message.clone(),
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, ClientError::Unavailable { .. })
    }
}

/// One service as seen by a caller: where it is, which credential to show, and the client.
/// Cheap to clone.
#[derive(Clone)]
pub struct Service {
    name: &'static str,
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is left out on purpose: a Debug print must never reveal it.
        f.debug_struct("Service")
            .field("name", &self.name)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// `name` is how errors name it ("the memory API"); `base` like `http://127.0.0.1:8000`.
    pub fn new(
        name: &'static str,
        base: impl Into<String>,
        token: Option<String>,
        http: reqwest::Client,
    ) -> Service {
        Service {
            name,
            base: base.into().trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()),
            http,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The same service called with another credential (a caller acting as itself).
    pub fn with_token(&self, token: Option<String>) -> Service {
        Service {
            token: token.filter(|t| !t.is_empty()),
            ..self.clone()
        }
    }

    /// `path` must start with `/` and be built from trusted parts: callers put user text into
    /// it only through [`segment`].
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the credential and the current trace (a child span of it).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("traceparent", TraceContext::current_or_new().to_header());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
    }

    /// Sends, and turns a transport failure or a non-2xx answer into a [`ClientError`]; a 2xx
    /// response is returned unread (for streams and non-JSON bodies).
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, ClientError> {
        let response = request
            .send()
            .await
            .map_err(|e| self.unavailable(None, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(self.refusal(status, &text))
    }

    /// Sends and reads a JSON answer of type `T`.
    pub async fn json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.send(request).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.unavailable(None, e))?;
        serde_json::from_slice(&bytes).map_err(|e| self.protocol(e))
    }

    /// Sends and expects no body worth reading (a 204, or an answer the caller ignores).
    pub async fn call(&self, request: RequestBuilder) -> Result<(), ClientError> {
        self.send(request).await.map(drop)
    }

    /// For readiness checks: `GET /health` answers 2xx.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.call(self.http.get(self.url("/health"))).await
    }

    /// The error for an answer with `status` and body `text`.
    pub fn refusal(&self, status: StatusCode, text: &str) -> ClientError {
        let body = serde_json::from_str::<daarion_http::ErrorEnvelope>(text)
            .map(|e| e.error)
            .unwrap_or_else(|_| ErrorBody {
                code: if status.is_server_error() {
                    "internal".into()
                } else {
                    "http_error".into()
                },
                message: text.chars().take(200).collect(),
                trace_id: None,
            });
        if status.is_server_error() {
            ClientError::Unavailable {
                service: self.name,
                status: Some(status.as_u16()),
                detail: format!("HTTP {}: {}", status.as_u16(), body.message),
            }
        } else {
            ClientError::Refused {
                service: self.name,
                status: status.as_u16(),
                body,
            }
        }
    }

    pub fn unavailable(&self, status: Option<u16>, e: impl std::fmt::Display) -> ClientError {
        ClientError::Unavailable {
            service: self.name,
            status,
            detail: e.to_string(),
        }
    }

    pub fn protocol(&self, e: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol {
            service: self.name,
            detail: e.to_string(),
        }
    }
}

/// The `/ready` probe of a service that needs another one: it answers `/health`. `name` is the
/// check's name in the readiness report (`memory`, `control-plane`).
pub struct ServiceCheck(pub &'static str, pub Service);

impl daarion_telemetry::Check for ServiceCheck {
    fn name(&self) -> &str {
        self.0
    }
    fn check(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = daarion_telemetry::CheckResult> + Send + '_>> {
        Box::pin(async move {
            self.1
                .ping()
                .await
                .map(|()| "reachable".to_owned())
                .map_err(|e| e.to_string())
        })
    }
}

/// One path segment from caller-supplied text, percent-encoded so that `../auth/tokens` or a
/// `?` stays inside the segment it was meant for instead of steering the request elsewhere.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_leave_their_place() {
        for (text, expected) in [
            ("coder", "coder"),
            ("a.b", "a%2Eb"),
            ("../auth/tokens", "%2E%2E%2Fauth%2Ftokens"),
            ("x?y=1#z", "x%3Fy%3D1%23z"),
            ("ü", "%C3%BC"),
        ] {
            assert_eq!(segment(text), expected, "{text}");
        }
    }

    fn service() -> Service {
        Service::new(
            "the test service",
            "http://127.0.0.1:1/",
            Some("secret".into()),
            http_client(Timeouts::total(Duration::from_secs(1))),
        )
    }

    #[test]
    fn error_answers_become_typed_errors() {
        let s = service();
        let body = r#"{"error":{"code":"not_found","message":"no such user"}}"#;
        match s.refusal(StatusCode::NOT_FOUND, body) {
            ClientError::Refused { status, body, .. } => {
                assert_eq!(status, 404);
                assert_eq!(body.code, "not_found");
                assert_eq!(body.message, "no such user");
            }
            other => panic!("{other:?}"),
        }
        let e = s.refusal(StatusCode::BAD_GATEWAY, "upstream gone");
        assert!(e.is_unavailable(), "{e:?}");
        assert_eq!(e.status(), Some(502));
        assert!(e.to_string().contains("upstream gone"), "{e}");
        let e = s.refusal(StatusCode::BAD_REQUEST, "not json");
        assert_eq!(e.code(), Some("http_error"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let printed = format!("{:?}", service());
        assert!(!printed.contains("secret"), "{printed}");
        assert!(printed.contains("127.0.0.1:1"), "{printed}");
    }

    #[tokio::test]
    async fn a_call_carries_the_token_and_the_trace_and_reads_json() {
        use axum::http::HeaderMap;
        let app = axum::Router::new().route(
            "/echo",
            axum::routing::get(|headers: HeaderMap| async move {
                let get = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                axum::Json(serde_json::json!({
                    "authorization": get("authorization"),
                    "traceparent": get("traceparent"),
                }))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let s = Service::new(
            "the echo",
            format!("http://{addr}"),
            Some("t0ken".into()),
            http_client(Timeouts::total(Duration::from_secs(5))),
        );
        let trace = TraceContext::new_root();
        let seen: serde_json::Value = trace
            .scope(async { s.json(s.request(Method::GET, "/echo")).await })
            .await
            .unwrap();
        assert_eq!(seen["authorization"], "Bearer t0ken");
        let parent = TraceContext::parse(seen["traceparent"].as_str().unwrap()).unwrap();
        assert_eq!(parent.trace_id(), trace.trace_id());
        let missing = s
            .json::<serde_json::Value>(s.request(Method::GET, "/nope"))
            .await;
        assert_eq!(missing.unwrap_err().status(), Some(404));
    }
}

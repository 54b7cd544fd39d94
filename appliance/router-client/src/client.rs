//! Calls to the router with the caller's credential and the current trace.

use daarion_client::reqwest::{Method, Response, StatusCode};
use daarion_client::{ClientError, Service, Timeouts, http_client};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;

use crate::{
    Event, Inbound, ResetResponse, StepRequest, StepResponse, ToolRequest, ToolResponse, sse_events,
};

/// The router as its callers see it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RouterClient {
    service: Service,
}

/// The services' error body, read leniently: a refusal's code and words are all a turn's
/// caller needs, and a proxy's HTML page must still become an event.
#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    code: String,
    message: String,
}

impl RouterClient {
    /// `base` like `http://127.0.0.1:9102`; `token` the credential every call carries. Only
    /// connecting is bounded: a turn streams for as long as the model talks.
    pub fn new(base: impl Into<String>, token: Option<String>) -> RouterClient {
        RouterClient::from_service(Service::new(
            "the router",
            base,
            token,
            http_client(Timeouts::streaming()),
        ))
    }

    pub fn from_service(service: Service) -> RouterClient {
        RouterClient { service }
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The raw response of `/v1/route` whatever its status, for the web chat to pass through;
    /// only a router that cannot be reached is an error.
    pub async fn route_raw(&self, message: &Inbound) -> Result<Response, ClientError> {
        self.service
            .request(Method::POST, "/v1/route")
            .json(message)
            .send()
            .await
            .map_err(|e| self.service.unavailable(None, e))
    }

    /// A turn's events. An HTTP error from the router becomes one [`Event::Error`] carrying
    /// its code, message and status, so the caller has one path for everything the user should
    /// hear about; only a router that cannot be reached is an error.
    pub async fn route(&self, message: &Inbound) -> Result<BoxStream<'static, Event>, ClientError> {
        let response = self.route_raw(message).await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Ok(futures::stream::iter([error_event(status, &text)]).boxed());
        }
        Ok(sse_events(response.bytes_stream()))
    }

    /// `POST /v1/sessions/reset`: ends the session the next `message` of its chat would
    /// continue. A refusal is [`ClientError::Refused`] with the router's words.
    pub async fn reset(&self, message: &Inbound) -> Result<ResetResponse, ClientError> {
        self.service
            .json(
                self.service
                    .request(Method::POST, "/v1/sessions/reset")
                    .json(message),
            )
            .await
    }

    /// `POST /v1/steps/llm`: one model call of a crew run's step (see [`StepRequest`]).
    pub async fn llm_step(&self, step: &StepRequest) -> Result<StepResponse, ClientError> {
        self.service
            .json(
                self.service
                    .request(Method::POST, "/v1/steps/llm")
                    .json(step),
            )
            .await
    }

    /// `POST /v1/steps/tool`: one tool call of a crew run's step (see [`ToolRequest`]).
    pub async fn tool_step(&self, step: &ToolRequest) -> Result<ToolResponse, ClientError> {
        self.service
            .json(
                self.service
                    .request(Method::POST, "/v1/steps/tool")
                    .json(step),
            )
            .await
    }
}

fn error_event(status: StatusCode, text: &str) -> Event {
    let (code, message) = match serde_json::from_str::<ErrorEnvelope>(text) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => (
            if status.is_server_error() {
                "internal".into()
            } else {
                "http_error".into()
            },
            text.chars().take(200).collect(),
        ),
    };
    Event::Error {
        code,
        message,
        status: Some(status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use axum::Json;
    use axum::http::{HeaderMap, StatusCode as AxumStatus};
    use axum::response::IntoResponse;
    use axum::routing::post;

    use super::*;
    use crate::UserRef;

    fn message(text: &str) -> Inbound {
        Inbound {
            channel: "telegram".into(),
            bot: None,
            chat_id: "1".into(),
            chat_kind: Default::default(),
            user: UserRef::Identity {
                external_id: "7".into(),
                display_name: String::new(),
            },
            text: text.into(),
            agent: None,
            addressed: true,
            voice: false,
            images: Vec::new(),
            operator: false,
        }
    }

    /// A stand-in router: `/v1/route` streams the text back as a token (or refuses "long"
    /// with 413, or answers "html" with a proxy's page); `/v1/sessions/reset` ends a session
    /// only for the bearer token `t0ken`.
    async fn router() -> RouterClient {
        async fn route(Json(inbound): Json<Inbound>) -> axum::response::Response {
            match inbound.text.as_str() {
                "long" => (
                    AxumStatus::PAYLOAD_TOO_LARGE,
                    Json(serde_json::json!({"error": {"code": "payload_too_large", "message": "too long"}})),
                )
                    .into_response(),
                "html" => (AxumStatus::BAD_GATEWAY, "<html>bad gateway</html>").into_response(),
                text => {
                    let token = serde_json::to_string(&Event::Token { text: text.into() }).unwrap();
                    (
                        [("content-type", "text/event-stream")],
                        format!(": ping\n\nevent: token\ndata: {token}\n\n"),
                    )
                        .into_response()
                }
            }
        }
        async fn reset(headers: HeaderMap, Json(_): Json<Inbound>) -> axum::response::Response {
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer t0ken") {
                return (
                    AxumStatus::FORBIDDEN,
                    Json(serde_json::json!({"error": {"code": "forbidden", "message": "not you"}})),
                )
                    .into_response();
            }
            Json(ResetResponse {
                agent: "helper".into(),
                agent_name: "Helper".into(),
                ended: uuid::Uuid::nil(),
            })
            .into_response()
        }
        let app = axum::Router::new()
            .route("/v1/route", post(route))
            .route("/v1/sessions/reset", post(reset));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        RouterClient::new(format!("http://{addr}"), Some("t0ken".into()))
    }

    #[tokio::test]
    async fn a_turn_streams_typed_events() {
        let client = router().await;
        let events: Vec<Event> = client
            .route(&message("hello"))
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(
            events,
            [Event::Token {
                text: "hello".into()
            }]
        );
    }

    #[tokio::test]
    async fn http_errors_become_one_error_event() {
        let client = router().await;
        for (text, expected) in [
            (
                "long",
                Event::Error {
                    code: "payload_too_large".into(),
                    message: "too long".into(),
                    status: Some(413),
                },
            ),
            (
                "html",
                Event::Error {
                    code: "internal".into(),
                    message: "<html>bad gateway</html>".into(),
                    status: Some(502),
                },
            ),
        ] {
            let events: Vec<Event> = client.route(&message(text)).await.unwrap().collect().await;
            assert_eq!(events, [expected], "{text}");
        }
        let raw = client.route_raw(&message("long")).await.unwrap();
        assert_eq!(raw.status().as_u16(), 413, "the raw answer passes through");
    }

    #[tokio::test]
    async fn reset_answers_typed_and_refusals_are_errors() {
        let client = router().await;
        let done = client.reset(&message("/new")).await.unwrap();
        assert_eq!(done.agent_name, "Helper");
        let stranger =
            RouterClient::from_service(client.service().with_token(Some("other".into())));
        let e = stranger.reset(&message("/new")).await.unwrap_err();
        assert_eq!(e.status(), Some(403));
        assert_eq!(e.message(), "not you");
    }

    #[tokio::test]
    async fn an_unreachable_router_is_unavailable() {
        // Port 1 on loopback: nothing listens there.
        let client = RouterClient::new("http://127.0.0.1:1", None);
        let e = client.route(&message("hi")).await.err().unwrap();
        assert!(e.is_unavailable(), "{e:?}");
    }
}

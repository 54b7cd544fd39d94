//! `POST /v1/chat`: the web chat channel (the admin UI, scripts, testing without Telegram). The
//! caller's credential names the user: the root token is the operator, an API token with
//! `agents:use` is its own user, an admin's browser session (cookie plus `X-CSRF-Token`) is that
//! admin. The router's events are passed through as they stream.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use daarion_control_client::Principal;
use daarion_router_client::{ChatKind, Inbound, UserRef};
use serde::Deserialize;

use crate::auth::caller;
use crate::{App, GatewayError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    text: String,
    agent: Option<String>,
    /// Separate conversations of one user; one session per chat.
    #[serde(default)]
    chat_id: String,
}

/// The caller's name for memory, and whether it is the operator (the root token or an admin's
/// browser session), whom the router treats as the administrator.
async fn who(app: &App, headers: &HeaderMap) -> Result<(String, bool), GatewayError> {
    // A browser session must echo its CSRF token: without one it is refused here (403), before
    // the control plane is asked.
    if daarion_http::bearer(headers).is_none()
        && headers.contains_key(header::COOKIE)
        && !headers.contains_key(daarion_control_client::CSRF_HEADER)
    {
        return Err(GatewayError::Forbidden);
    }
    Ok(match caller(app, headers).await? {
        Principal::Root => ("operator".into(), true),
        token @ Principal::Token { .. } => {
            if !token.has("agents:use") {
                return Err(GatewayError::Forbidden);
            }
            (token.name(), false)
        }
        Principal::Session { name, .. } => (name, true),
    })
}

pub async fn chat(
    State(app): State<App>,
    headers: HeaderMap,
    Json(request): Json<ChatRequest>,
) -> Result<Response, GatewayError> {
    let (user, operator) = who(&app, &headers).await?;
    let message = Inbound {
        channel: "web".into(),
        bot: None,
        chat_id: request.chat_id,
        chat_kind: ChatKind::Private,
        user: UserRef::Identity {
            external_id: user,
            display_name: String::new(),
        },
        text: request.text,
        agent: request.agent,
        addressed: true,
        voice: false,
        images: Vec::new(),
        operator,
    };
    let response = app
        .router
        .route_raw(&message)
        .await
        .map_err(|e| GatewayError::unavailable("the router", e))?;
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    Ok((
        status,
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(response.bytes_stream()),
    )
        .into_response())
}

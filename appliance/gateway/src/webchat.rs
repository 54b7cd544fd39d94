//! `POST /v1/chat`: the web chat channel (the admin UI, scripts, testing without Telegram). The
//! caller's credential names the user: the root token is the operator, an API token with
//! `agents:use` is its own user, an admin's browser session (cookie plus `X-CSRF-Token`) is that
//! admin. The router's events are passed through as they stream.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Credential, bearer, credential};
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

/// An admin's browser session (the admin UI): the control plane checks the cookie and, this
/// being a POST, the CSRF token, and says who it is.
async fn session_user(app: &App, headers: &HeaderMap) -> Result<String, GatewayError> {
    let mut request = app.http.post(format!("{}/auth/whoami", app.control_url));
    for name in [header::COOKIE.as_str(), "x-csrf-token"] {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value.as_bytes());
        }
    }
    let response = request
        .send()
        .await
        .map_err(|e| GatewayError::unavailable("the control plane", e))?;
    match response.status().as_u16() {
        200 => {
            let who: serde_json::Value = response
                .json()
                .await
                .map_err(|e| GatewayError::unavailable("the control plane", e))?;
            Ok(who["name"].as_str().unwrap_or("admin:?").to_owned())
        }
        401 => Err(GatewayError::Unauthenticated),
        _ => Err(GatewayError::Forbidden),
    }
}

async fn who(app: &App, headers: &HeaderMap) -> Result<String, GatewayError> {
    let token = match bearer(headers) {
        Some(token) => token,
        None if headers.contains_key(header::COOKIE) => return session_user(app, headers).await,
        None => return Err(GatewayError::Unauthenticated),
    };
    let caller = credential(app, token).await?;
    caller.require(&["agents:use"])?;
    Ok(match caller {
        Credential::Root => "operator".into(),
        Credential::Token { name, .. } => format!("token:{name}"),
    })
}

pub async fn chat(
    State(app): State<App>,
    headers: HeaderMap,
    Json(request): Json<ChatRequest>,
) -> Result<Response, GatewayError> {
    let user = who(&app, &headers).await?;
    let message = json!({
        "channel": "web",
        "chat_id": request.chat_id,
        "user": {"external_id": user, "display_name": ""},
        "text": request.text,
        "agent": request.agent,
        "addressed": true,
    });
    let response = app.router.route_raw(&message).await?;
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
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

//! Who may call the router. `/v1/route` speaks for any user, so it takes the appliance's root
//! token (the gateway's) or an `admin` token; `/v1/chat/completions` takes any token with
//! `agents:use` and speaks for that token's own identity. `/v1/steps/*` speak for any user too
//! (a crew run's steps): the root token, `admin`, or a service's `service_write` token.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::OpenAiError;
use crate::{App, RouterError};

#[derive(Debug, Clone)]
pub enum Caller {
    Root,
    Token { name: String, admin: bool },
}

impl Caller {
    pub fn may_route(&self) -> Result<(), RouterError> {
        match self {
            Caller::Root | Caller::Token { admin: true, .. } => Ok(()),
            Caller::Token { .. } => Err(RouterError::Forbidden("admin")),
        }
    }
}

fn bearer(request: &Request) -> Result<String, RouterError> {
    daarion_http::bearer(request.headers())
        .map(str::to_owned)
        .ok_or(RouterError::Unauthenticated)
}

async fn caller_of(app: &App, token: &str) -> Result<Caller, RouterError> {
    if daarion_http::secret_eq(app.root_token.as_bytes(), token.as_bytes()) {
        return Ok(Caller::Root);
    }
    let (name, scopes) = app
        .introspector
        .check(token)
        .await
        .map_err(|_| RouterError::AuthUnavailable)?
        .ok_or(RouterError::Unauthenticated)?;
    let admin = scopes.iter().any(|s| s == "admin");
    if !admin && !scopes.iter().any(|s| s == "agents:use") {
        return Err(RouterError::Forbidden("agents:use"));
    }
    Ok(Caller::Token { name, admin })
}

/// The scope of a service that acts for any user (the crews worker).
pub const SERVICE_WRITE: &str = "service_write";

/// For `/v1/steps/*`: the root token, `admin` or `service_write`; nothing else.
pub async fn authenticate_steps(
    State(app): State<App>,
    request: Request,
    next: Next,
) -> Result<Response, RouterError> {
    let token = bearer(&request)?;
    if !daarion_http::secret_eq(app.root_token.as_bytes(), token.as_bytes()) {
        let (_, scopes) = app
            .introspector
            .check(&token)
            .await
            .map_err(|_| RouterError::AuthUnavailable)?
            .ok_or(RouterError::Unauthenticated)?;
        if !scopes.iter().any(|s| s == "admin" || s == SERVICE_WRITE) {
            return Err(RouterError::Forbidden(SERVICE_WRITE));
        }
    }
    Ok(next.run(request).await)
}

/// For `/v1/route`: failures in the appliance's error format.
pub async fn authenticate(
    State(app): State<App>,
    mut request: Request,
    next: Next,
) -> Result<Response, RouterError> {
    let caller = caller_of(&app, &bearer(&request)?).await?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

/// For the OpenAI-compatible API: failures in OpenAI's format, which its clients understand.
pub async fn authenticate_openai(
    State(app): State<App>,
    mut request: Request,
    next: Next,
) -> Result<Response, OpenAiError> {
    let caller = caller_of(&app, &bearer(&request)?).await?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

//! Who is calling the gateway's own API (web chat, pairing): the appliance's root token, an API
//! token the control plane minted, or an admin's browser session, resolved the way every
//! service resolves them (`daarion_control_client::identify`). Each endpoint decides what it
//! needs.

use axum::http::HeaderMap;
use daarion_control_client::Principal;

use crate::{App, GatewayError};

pub async fn caller(app: &App, headers: &HeaderMap) -> Result<Principal, GatewayError> {
    daarion_control_client::identify(
        Some(app.root_token.as_ref()),
        Some(&app.introspector),
        headers,
    )
    .await
    .map_err(|e| GatewayError::unavailable("the control plane", e))?
    .ok_or(GatewayError::Unauthenticated)
}

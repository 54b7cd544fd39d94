//! Who is calling the gateway's own API (web chat, pairing): the appliance's root token, or an
//! API token the control plane minted, with its scopes. Each endpoint decides what it needs.

use crate::{App, GatewayError};

pub enum Credential {
    Root,
    Token { name: String, scopes: Vec<String> },
}

impl Credential {
    /// The root token, or a token with one of `scopes` (`admin` always counts).
    pub fn require(&self, scopes: &[&str]) -> Result<(), GatewayError> {
        match self {
            Credential::Root => Ok(()),
            Credential::Token { scopes: held, .. }
                if held
                    .iter()
                    .any(|s| s == "admin" || scopes.contains(&s.as_str())) =>
            {
                Ok(())
            }
            Credential::Token { .. } => Err(GatewayError::Forbidden),
        }
    }
}

pub use daarion_http::bearer;

pub async fn credential(app: &App, token: &str) -> Result<Credential, GatewayError> {
    if daarion_http::secret_eq(app.root_token.as_bytes(), token.as_bytes()) {
        return Ok(Credential::Root);
    }
    let (name, scopes) = app
        .introspector
        .check(token)
        .await
        .map_err(|e| GatewayError::unavailable("the control plane", e))?
        .ok_or(GatewayError::Unauthenticated)?;
    Ok(Credential::Token { name, scopes })
}

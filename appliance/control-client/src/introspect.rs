//! Checking API tokens that the control plane minted, for the services that accept them (memory,
//! swapper). Answers are cached by the token's SHA-256 for a short time, so a busy caller costs
//! one control-plane round trip per 30 seconds, and a revoked token stops working within that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use daarion_client::reqwest::{Method, header};
use daarion_client::{Service, Timeouts, http_client};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const CACHE_FOR: Duration = Duration::from_secs(30);

/// What the control plane said about a token: its name and scopes, or `None` when unknown.
pub type Introspection = Option<(String, Vec<String>)>;

/// Who a request to a service comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The appliance's root token: everything.
    Root,
    /// An API token the control plane minted.
    Token { name: String, scopes: Vec<String> },
    /// An administrator's browser session (the admin UI).
    Session { name: String, scopes: Vec<String> },
}

impl Principal {
    /// The name an audit record gives the caller: `root`, `token:<name>` or the admin's name.
    pub fn name(&self) -> String {
        match self {
            Principal::Root => "root".into(),
            Principal::Token { name, .. } => format!("token:{name}"),
            Principal::Session { name, .. } => name.clone(),
        }
    }

    /// Holds `scope`, or `admin`, which holds every scope.
    pub fn has(&self, scope: &str) -> bool {
        match self {
            Principal::Root => true,
            Principal::Token { scopes, .. } | Principal::Session { scopes, .. } => {
                scopes.iter().any(|s| s == scope || s == "admin")
            }
        }
    }

    pub fn is_admin(&self) -> bool {
        self.has("admin")
    }
}

/// The caller of a request to a service: the root token, else a bearer token the control plane
/// knows, else (no bearer token at all) an admin's browser session. `Ok(None)`: no credential,
/// or one nobody knows (401); `Err`: the control plane could not be asked (503). Without an
/// introspector (no root token to ask with) only the root token could be accepted, and there is
/// none.
pub async fn identify(
    root_token: Option<&str>,
    introspector: Option<&Introspector>,
    headers: &header::HeaderMap,
) -> Result<Option<Principal>, String> {
    let token = daarion_http::bearer(headers);
    if let (Some(token), Some(root)) = (token, root_token)
        && daarion_http::secret_eq(root.as_bytes(), token.as_bytes())
    {
        return Ok(Some(Principal::Root));
    }
    let Some(introspector) = introspector else {
        return Ok(None);
    };
    Ok(match token {
        Some(token) => introspector
            .check(token)
            .await?
            .map(|(name, scopes)| Principal::Token { name, scopes }),
        None => introspector
            .session(headers)
            .await?
            .map(|(name, scopes)| Principal::Session { name, scopes }),
    })
}

/// The body of `POST /auth/introspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    pub token: String,
}

/// The answer of `POST /auth/introspect`: `active` with the token's name and scopes, or only
/// `active: false` for a token nobody knows (or one revoked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenStatus {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

impl TokenStatus {
    pub fn unknown() -> TokenStatus {
        TokenStatus {
            active: false,
            name: None,
            scopes: None,
        }
    }

    pub fn known(name: String, scopes: Vec<String>) -> TokenStatus {
        TokenStatus {
            active: true,
            name: Some(name),
            scopes: Some(scopes),
        }
    }
}

/// The answer of `POST /auth/whoami`: who the credential is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identity {
    pub name: String,
    pub scopes: Vec<String>,
}

type Entries = HashMap<Vec<u8>, (Introspection, Instant)>;

#[derive(Clone)]
pub struct Introspector {
    /// Asks with the appliance's root token, which introspection requires.
    control: Service,
    cache: Arc<Mutex<Entries>>,
}

impl Introspector {
    /// `base` is the control plane (`http://127.0.0.1:9200`); `root_token` the appliance's own
    /// admin token, which introspection requires.
    pub fn new(base: &str, root_token: impl Into<String>) -> Introspector {
        let http = http_client(Timeouts::total(Duration::from_secs(5)));
        Introspector {
            control: Service::new("the control plane", base, Some(root_token.into()), http),
            cache: Arc::default(),
        }
    }

    /// The introspector a service builds from its configuration: it asks the configured control
    /// plane with the appliance's root token; `None` when that token is not readable.
    pub fn from_config(config: &daarion_config::Config) -> Option<Introspector> {
        let root = config.supervisor.root_token()?;
        let base = format!("http://{}", config.control_plane.dial());
        Some(Introspector::new(&base, root))
    }

    /// `Err` when the control plane could not be asked (the caller answers 503, not 401).
    pub async fn check(&self, token: &str) -> Result<Introspection, String> {
        let key = Sha256::digest(token.as_bytes()).to_vec();
        if let Some((known, at)) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(known.clone());
        }
        let query = TokenQuery {
            token: token.to_owned(),
        };
        let request = self
            .control
            .request(Method::POST, "/auth/introspect")
            .json(&query);
        let answer: TokenStatus = self
            .control
            .json(request)
            .await
            .map_err(|e| e.to_string())?;
        let known = answer.active.then(|| {
            (
                answer.name.unwrap_or_else(|| "?".into()),
                answer.scopes.unwrap_or_default(),
            )
        });
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (known.clone(), Instant::now()));
        Ok(known)
    }

    /// An admin's browser session, for a service the admin UI reaches with the session cookie:
    /// the control plane's `POST /auth/whoami` is asked with the request's `Cookie` and
    /// `X-CSRF-Token` headers. Being a POST, it needs the CSRF token even for a read, so a page
    /// on another site that makes the browser send the cookie learns nothing. Never cached: a
    /// logout ends access at once. `Ok(None)` for no, expired or CSRF-less sessions.
    pub async fn session(&self, headers: &header::HeaderMap) -> Result<Introspection, String> {
        let Some(cookie) = headers.get(header::COOKIE) else {
            return Ok(None);
        };
        // Without the root token: the answer must be about the session, not about us.
        let anonymous = self.control.with_token(None);
        let mut request = anonymous
            .request(Method::POST, "/auth/whoami")
            .header(header::COOKIE, cookie);
        if let Some(csrf) = headers.get(CSRF_HEADER) {
            request = request.header(CSRF_HEADER, csrf);
        }
        match anonymous.json::<Identity>(request).await {
            Ok(who) => Ok(Some((who.name, who.scopes))),
            Err(e) if matches!(e.status(), Some(401 | 403)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The header a browser session echoes its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[cfg(test)]
mod tests {
    use super::*;

    fn with_bearer(token: &str) -> header::HeaderMap {
        let mut headers = header::HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[tokio::test]
    async fn the_root_token_needs_no_control_plane_and_nothing_else_passes_without_one() {
        let root = identify(Some("s3cret"), None, &with_bearer("s3cret")).await;
        assert_eq!(root, Ok(Some(Principal::Root)));
        let wrong = identify(Some("s3cret"), None, &with_bearer("s3cres")).await;
        assert_eq!(wrong, Ok(None));
        let none = identify(None, None, &header::HeaderMap::new()).await;
        assert_eq!(none, Ok(None));
    }

    #[tokio::test]
    async fn an_unreachable_control_plane_is_an_error_not_a_refusal() {
        // Port 1 on loopback refuses at once.
        let introspector = Introspector::new("http://127.0.0.1:1", "root");
        let asked = identify(Some("root"), Some(&introspector), &with_bearer("other")).await;
        assert!(asked.is_err(), "{asked:?}");
    }

    #[test]
    fn scopes_and_names() {
        let token = Principal::Token {
            name: "bot".into(),
            scopes: vec!["memory:read".into()],
        };
        assert!(token.has("memory:read") && !token.has("memory:write") && !token.is_admin());
        assert_eq!(token.name(), "token:bot");
        let admin = Principal::Session {
            name: "admin:ann".into(),
            scopes: vec!["admin".into()],
        };
        assert!(admin.has("models:use") && admin.is_admin());
        assert_eq!(admin.name(), "admin:ann");
        assert!(Principal::Root.has("anything"));
        assert_eq!(Principal::Root.name(), "root");
    }
}

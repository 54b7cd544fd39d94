//! Checking API tokens that the control plane minted, for the services that accept them (memory,
//! swapper). Answers are cached by the token's SHA-256 for a short time, so a busy caller costs
//! one control-plane round trip per 30 seconds, and a revoked token stops working within that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    headers: &reqwest::header::HeaderMap,
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

type Entries = HashMap<Vec<u8>, (Introspection, Instant)>;

#[derive(Clone)]
pub struct Introspector {
    url: String,
    whoami: String,
    root_token: String,
    http: reqwest::Client,
    cache: Arc<Mutex<Entries>>,
}

impl Introspector {
    /// `base` is the control plane (`http://127.0.0.1:9200`); `root_token` the appliance's own
    /// admin token, which introspection requires.
    pub fn new(base: &str, root_token: impl Into<String>) -> Introspector {
        Introspector {
            url: format!("{}/auth/introspect", base.trim_end_matches('/')),
            whoami: format!("{}/auth/whoami", base.trim_end_matches('/')),
            root_token: root_token.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .no_proxy()
                .build()
                .expect("a plain HTTP client builds"),
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
        let answer: serde_json::Value = self
            .http
            .post(&self.url)
            .bearer_auth(&self.root_token)
            .json(&serde_json::json!({"token": token}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let known = (answer["active"] == true).then(|| {
            (
                answer["name"].as_str().unwrap_or("?").to_owned(),
                answer["scopes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect(),
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
    pub async fn session(
        &self,
        headers: &reqwest::header::HeaderMap,
    ) -> Result<Introspection, String> {
        let Some(cookie) = headers.get(reqwest::header::COOKIE) else {
            return Ok(None);
        };
        let mut request = self
            .http
            .post(&self.whoami)
            .header(reqwest::header::COOKIE, cookie);
        if let Some(csrf) = headers.get(CSRF_HEADER) {
            request = request.header(CSRF_HEADER, csrf);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => return Ok(None),
            other => return Err(format!("the control plane answered {other}")),
        }
        let who: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
        Ok(Some((
            who["name"].as_str().unwrap_or("admin:?").to_owned(),
            who["scopes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect(),
        )))
    }
}

/// The header a browser session echoes its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

#[cfg(test)]
mod tests {
    use super::*;

    fn with_bearer(token: &str) -> reqwest::header::HeaderMap {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
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
        let none = identify(None, None, &reqwest::header::HeaderMap::new()).await;
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

//! Checking API tokens that the control plane minted, for the services that accept them (memory,
//! swapper). Answers are cached by the token's SHA-256 for a short time, so a busy caller costs
//! one control-plane round trip per 30 seconds, and a revoked token stops working within that.
//!
//! Anyone who can reach a service can send bearers by the million, so the cache is bounded (a
//! fixed number of entries, least recently used evicted first) and a refusal is cached only
//! briefly. Questions about tokens never seen active are rate limited (a token bucket): past it
//! the caller gets an error (503) without the control plane being asked, while tokens already
//! known to be active keep being checked, so legitimate callers ride out a flood.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use daarion_client::reqwest::{Method, header};
use daarion_client::{Service, Timeouts, http_client};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How the cache and the rate of unknown tokens are bounded.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Entries kept at most: about 100 bytes each.
    capacity: usize,
    /// How long an active token's answer is trusted (the revocation delay).
    active_for: Duration,
    /// How long a refusal is remembered: a retried wrong token costs nothing, a token minted
    /// right after a failed try works soon.
    refused_for: Duration,
    /// Control-plane questions about tokens not known active, in a burst and then per second.
    burst: f64,
    per_second: f64,
}

const LIMITS: Limits = Limits {
    capacity: 10_000,
    active_for: Duration::from_secs(30),
    refused_for: Duration::from_secs(5),
    burst: 20.0,
    per_second: 5.0,
};

/// The error [`Introspector::check`] answers when unknown tokens arrive faster than allowed.
pub const TOO_MANY_UNKNOWN: &str = "too many unknown tokens: try again shortly";

/// What the control plane said about a token: its name and scopes, or `None` when unknown.
pub type Introspection = Option<(String, Vec<String>)>;

/// What the control plane said about an active token, in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub name: String,
    pub scopes: Vec<String>,
    /// The user a `memory:user` token was minted for: it acts for that user and no other.
    pub user: Option<String>,
}

/// Who a request to a service comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The appliance's root token: everything.
    Root,
    /// An API token the control plane minted; `user` when it was minted for one user.
    Token {
        name: String,
        scopes: Vec<String>,
        user: Option<String>,
    },
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

    /// The user this credential was minted for, if any: it may act for that user only.
    pub fn user(&self) -> Option<&str> {
        match self {
            Principal::Token { user, .. } => user.as_deref(),
            Principal::Root | Principal::Session { .. } => None,
        }
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
            .grant(token)
            .await?
            .map(|Grant { name, scopes, user }| Principal::Token { name, scopes, user }),
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
    /// The user a user-confined (`memory:user`) token was minted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl TokenStatus {
    pub fn unknown() -> TokenStatus {
        TokenStatus {
            active: false,
            name: None,
            scopes: None,
            user_id: None,
        }
    }

    pub fn known(name: String, scopes: Vec<String>) -> TokenStatus {
        TokenStatus {
            active: true,
            name: Some(name),
            scopes: Some(scopes),
            user_id: None,
        }
    }

    /// A token minted for one user (`None`: for none).
    pub fn for_user(self, user_id: Option<String>) -> TokenStatus {
        TokenStatus { user_id, ..self }
    }
}

/// The answer of `POST /auth/whoami`: who the credential is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identity {
    pub name: String,
    pub scopes: Vec<String>,
    /// The user the credential was minted for, when it is confined to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

struct Entry {
    answer: Option<Grant>,
    fetched: Instant,
    used: Instant,
}

/// The answers by token hash, and the bucket of questions about tokens not known active.
struct Cache {
    limits: Limits,
    entries: HashMap<[u8; 32], Entry>,
    tokens: f64,
    refilled: Instant,
}

/// What the cache says about a token.
enum Cached {
    Fresh(Option<Grant>),
    /// Known active once, its answer now too old: asked again, never rate limited.
    WasActive,
    Unknown,
}

impl Cache {
    fn new(limits: Limits) -> Cache {
        Cache {
            limits,
            entries: HashMap::new(),
            tokens: limits.burst,
            refilled: Instant::now(),
        }
    }

    fn lookup(&mut self, key: &[u8; 32], now: Instant) -> Cached {
        let limits = self.limits;
        let Some(entry) = self.entries.get_mut(key) else {
            return Cached::Unknown;
        };
        let ttl = match entry.answer {
            Some(_) => limits.active_for,
            None => limits.refused_for,
        };
        if now.duration_since(entry.fetched) < ttl {
            entry.used = now;
            Cached::Fresh(entry.answer.clone())
        } else if entry.answer.is_some() {
            Cached::WasActive
        } else {
            self.entries.remove(key);
            Cached::Unknown
        }
    }

    /// Takes one question from the bucket, `false` when it is empty.
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limits.per_second).min(self.limits.burst);
        self.refilled = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    fn insert(&mut self, key: [u8; 32], answer: Option<Grant>, now: Instant) {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.limits.capacity {
            self.evict(now);
        }
        let entry = Entry {
            answer,
            fetched: now,
            used: now,
        };
        self.entries.insert(key, entry);
    }

    /// Makes room: expired refusals first, else the least recently used entry. A linear scan,
    /// but only when full, and the rate of new entries is bounded by the bucket.
    fn evict(&mut self, now: Instant) {
        let refused_for = self.limits.refused_for;
        self.entries
            .retain(|_, e| e.answer.is_some() || now.duration_since(e.fetched) < refused_for);
        if self.entries.len() < self.limits.capacity {
            return;
        }
        if let Some(oldest) = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.used)
            .map(|(key, _)| *key)
        {
            self.entries.remove(&oldest);
        }
    }
}

#[derive(Clone)]
pub struct Introspector {
    /// Asks with the appliance's root token, which introspection requires.
    control: Service,
    cache: Arc<Mutex<Cache>>,
}

impl Introspector {
    /// `base` is the control plane (`http://127.0.0.1:9200`); `root_token` the appliance's own
    /// admin token, which introspection requires.
    pub fn new(base: &str, root_token: impl Into<String>) -> Introspector {
        Introspector::with_limits(base, root_token, LIMITS)
    }

    fn with_limits(base: &str, root_token: impl Into<String>, limits: Limits) -> Introspector {
        let http = http_client(Timeouts::total(Duration::from_secs(5)));
        Introspector {
            control: Service::new("the control plane", base, Some(root_token.into()), http),
            cache: Arc::new(Mutex::new(Cache::new(limits))),
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // A panic elsewhere while holding the lock leaves the map whole: keep using it.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The introspector a service builds from its configuration: it asks the configured control
    /// plane with the appliance's root token; `None` when that token is not readable.
    pub fn from_config(config: &daarion_config::Config) -> Option<Introspector> {
        let root = config.supervisor.root_token()?;
        let base = format!("http://{}", config.control_plane.dial());
        Some(Introspector::new(&base, root))
    }

    /// The token's name and scopes; see [`Introspector::grant`].
    pub async fn check(&self, token: &str) -> Result<Introspection, String> {
        Ok(self
            .grant(token)
            .await?
            .map(|grant| (grant.name, grant.scopes)))
    }

    /// `Err` when the control plane could not be asked, or unknown tokens arrive too fast to
    /// ask about this one ([`TOO_MANY_UNKNOWN`]): the caller answers 503, not 401.
    pub async fn grant(&self, token: &str) -> Result<Option<Grant>, String> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        {
            let mut cache = self.cache();
            let now = Instant::now();
            match cache.lookup(&key, now) {
                Cached::Fresh(known) => return Ok(known),
                Cached::WasActive => {}
                Cached::Unknown => {
                    if !cache.take(now) {
                        return Err(TOO_MANY_UNKNOWN.into());
                    }
                }
            }
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
        let known = answer.active.then(|| Grant {
            name: answer.name.unwrap_or_else(|| "?".into()),
            scopes: answer.scopes.unwrap_or_default(),
            user: answer.user_id,
        });
        self.cache().insert(key, known.clone(), Instant::now());
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

    /// A control plane whose introspection counts its questions; tokens starting `good` exist.
    async fn control_plane() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let asked = Arc::new(AtomicUsize::new(0));
        let counter = asked.clone();
        let app = axum::Router::new().route(
            "/auth/introspect",
            axum::routing::post(move |axum::Json(query): axum::Json<TokenQuery>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    axum::Json(if query.token.starts_with("good-user") {
                        TokenStatus::known("ann".into(), vec!["memory:user".into()])
                            .for_user(Some("u-ann".into()))
                    } else if query.token.starts_with("good") {
                        TokenStatus::known("bot".into(), vec!["memory:read".into()])
                    } else {
                        TokenStatus::unknown()
                    })
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (base, asked)
    }

    fn asked(counter: &std::sync::atomic::AtomicUsize) -> usize {
        counter.load(std::sync::atomic::Ordering::SeqCst)
    }

    const SMALL: Limits = Limits {
        capacity: 50,
        active_for: Duration::from_secs(30),
        refused_for: Duration::from_secs(5),
        burst: 10.0,
        per_second: 0.001,
    };

    #[tokio::test]
    async fn a_flood_of_random_bearers_neither_grows_the_cache_nor_reaches_the_control_plane() {
        let (base, counter) = control_plane().await;
        let introspector = Introspector::with_limits(&base, "root", SMALL);
        let good = introspector.check("good-token").await.unwrap();
        assert_eq!(good, Some(("bot".into(), vec!["memory:read".into()])));
        let mut refused = 0;
        for i in 0..2000 {
            match introspector.check(&format!("random-{i}")).await {
                Ok(None) => {}
                Err(e) if e == TOO_MANY_UNKNOWN => refused += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(asked(&counter) <= 11, "asked {} times", asked(&counter));
        assert!(refused >= 1989, "{refused} refused");
        assert!(introspector.cache().entries.len() <= SMALL.capacity);
        // The known token still passes, from the cache, during the flood.
        assert_eq!(introspector.check("good-token").await.unwrap(), good);
    }

    #[tokio::test]
    async fn a_token_minted_for_a_user_names_that_user() {
        let (base, _) = control_plane().await;
        let introspector = Introspector::with_limits(&base, "root", SMALL);
        let who = identify(
            Some("root"),
            Some(&introspector),
            &with_bearer("good-user-token"),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(who.user(), Some("u-ann"));
        let broad = identify(Some("root"), Some(&introspector), &with_bearer("good-bot"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(broad.user(), None);
        assert_eq!(Principal::Root.user(), None);
    }

    #[tokio::test]
    async fn a_retried_wrong_token_is_answered_from_the_cache() {
        let (base, counter) = control_plane().await;
        let introspector = Introspector::with_limits(&base, "root", SMALL);
        for _ in 0..100 {
            assert_eq!(introspector.check("wrong").await, Ok(None));
        }
        assert_eq!(asked(&counter), 1);
    }

    #[tokio::test]
    async fn answers_expire_and_a_once_active_token_is_rechecked_even_when_the_bucket_is_empty() {
        let (base, counter) = control_plane().await;
        let limits = Limits {
            active_for: Duration::from_millis(50),
            refused_for: Duration::from_millis(50),
            burst: 2.0,
            ..SMALL
        };
        let introspector = Introspector::with_limits(&base, "root", limits);
        assert!(introspector.check("good-a").await.unwrap().is_some());
        assert_eq!(introspector.check("bad").await, Ok(None));
        assert_eq!(
            introspector.check("bad-2").await,
            Err(TOO_MANY_UNKNOWN.into())
        );
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(introspector.check("good-a").await.unwrap().is_some());
        assert_eq!(
            asked(&counter),
            3,
            "the expired active token was asked again"
        );
        // The expired refusal is forgotten, and the empty bucket now refuses to ask.
        assert_eq!(
            introspector.check("bad").await,
            Err(TOO_MANY_UNKNOWN.into())
        );
    }

    #[test]
    fn a_full_cache_evicts_expired_refusals_then_the_least_recently_used() {
        let limits = Limits {
            capacity: 3,
            ..SMALL
        };
        let mut cache = Cache::new(limits);
        let start = Instant::now();
        let key = |n: u8| [n; 32];
        let active = Some(Grant {
            name: "bot".to_owned(),
            scopes: vec![],
            user: None,
        });
        cache.insert(key(1), active.clone(), start);
        cache.insert(key(2), active.clone(), start);
        cache.insert(key(3), None, start);
        let later = start + Duration::from_secs(6);
        assert!(matches!(cache.lookup(&key(1), later), Cached::Fresh(_)));
        cache.insert(key(4), active.clone(), later);
        assert!(
            !cache.entries.contains_key(&key(3)),
            "the expired refusal went first"
        );
        cache.insert(key(5), active, later);
        assert_eq!(cache.entries.len(), 3);
        assert!(
            !cache.entries.contains_key(&key(2)),
            "then the least recently used"
        );
        assert!(cache.entries.contains_key(&key(1)));
    }

    #[test]
    fn scopes_and_names() {
        let token = Principal::Token {
            name: "bot".into(),
            scopes: vec!["memory:read".into()],
            user: None,
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

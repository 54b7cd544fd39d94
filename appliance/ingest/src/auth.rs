//! Who is calling, and the memory client that speaks for them.
//!
//! Ingest authorises nothing itself: every record is read and written on the memory API with
//! the caller's own credential (bearer token, or the admin's session cookie and CSRF token) and
//! `X-Daarion-Acting-For`, so memory's rules hold here unchanged (a token confined to user A
//! cannot add to B). Ingest only identifies the caller first, so that no stranger's upload
//! reaches the disk, and refuses early what memory would refuse anyway.

use axum::http::{HeaderMap, header};
use daarion_client::Service;
use daarion_control_client::{CSRF_HEADER, Principal, identify};
use daarion_memory_client::{ACTING_FOR, MemoryClient};
use uuid::Uuid;

use crate::{App, IngestError};

pub struct Caller {
    principal: Principal,
    acting_for: Option<Uuid>,
    /// The memory API with this caller's credential.
    pub memory: MemoryClient,
}

impl Caller {
    /// Refuses at once a confined caller naming another user (before its bytes are stored).
    pub fn may_act_for(&self, user: Uuid) -> Result<(), IngestError> {
        let bound = self.principal.user().map(str::to_owned);
        let other = |u: Option<String>| u.is_some_and(|u| u != user.to_string());
        if other(bound) || self.acting_for.is_some_and(|a| a != user) {
            return Err(IngestError::OtherUser);
        }
        Ok(())
    }
}

pub async fn caller(app: &App, headers: &HeaderMap) -> Result<Caller, IngestError> {
    let principal = identify(
        Some(app.root_token.as_ref()),
        Some(&app.introspector),
        headers,
    )
    .await
    .map_err(|_| IngestError::AuthUnavailable)?
    .ok_or(IngestError::Unauthenticated)?;
    if !["memory:write", "memory:read", "memory:user"]
        .iter()
        .any(|s| principal.has(s))
    {
        return Err(IngestError::Forbidden("memory:write"));
    }
    let acting_for = match headers.get(ACTING_FOR) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<Uuid>().ok())
                .ok_or_else(|| IngestError::invalid(ACTING_FOR, "must be a user id (UUID)"))?,
        ),
    };
    let mut memory = match daarion_http::bearer(headers) {
        Some(token) => app.memory.with_token(Some(token.to_owned())),
        None => session_client(app, headers)?,
    };
    if let Some(user) = acting_for {
        memory = memory.acting_for(user);
    }
    Ok(Caller {
        principal,
        acting_for,
        memory,
    })
}

/// An admin's browser session has no bearer token to pass on: its cookie and CSRF token go to
/// memory as they came, which checks them with the control plane itself.
fn session_client(app: &App, headers: &HeaderMap) -> Result<MemoryClient, IngestError> {
    let mut forwarded = HeaderMap::new();
    for name in [header::COOKIE.as_str(), CSRF_HEADER] {
        if let Some(value) = headers.get(name) {
            forwarded.insert(header::HeaderName::from_static(name), value.clone());
        }
    }
    let http = daarion_client::reqwest::Client::builder()
        .default_headers(forwarded)
        .no_proxy()
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| IngestError::Blobs(e.to_string()))?;
    Ok(MemoryClient::from_service(Service::new(
        MemoryClient::NAME,
        app.memory.service().base(),
        None,
        http,
    )))
}

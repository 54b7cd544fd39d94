//! Who is calling the memory API, and for whom.
//!
//! Credentials: the appliance's root token, an API token minted by the control plane, or an
//! admin's browser session cookie with its CSRF token (both checked there through
//! `daarion_control_client::Introspector`). Scopes: `memory:read` and
//! `memory:write` reach every user's data; `memory:user` only the user named in
//! `X-Daarion-Acting-For`, and that header confines any caller who sends it.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use super::error::ApiError;
use crate::App;

pub use daarion_memory_client::ACTING_FOR;

#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    read: bool,
    write: bool,
    /// The root token or an `admin` token: may read the audit log.
    admin: bool,
    /// Set when the caller acts for one user: every request is confined to that user.
    pub acting_for: Option<Uuid>,
}

impl Caller {
    /// May read `user`'s data.
    pub fn read(&self, user: Uuid) -> Result<(), ApiError> {
        self.confined(user)?;
        if self.read || self.acting_for == Some(user) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("memory:read"))
        }
    }

    /// May change `user`'s data.
    pub fn write(&self, user: Uuid) -> Result<(), ApiError> {
        self.confined(user)?;
        if self.write || self.acting_for == Some(user) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("memory:write"))
        }
    }

    /// Data across users (usage totals): a reader not confined to one user.
    pub fn read_all(&self) -> Result<(), ApiError> {
        if self.read && self.acting_for.is_none() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("memory:read"))
        }
    }

    /// Who did what on the appliance: administrators only.
    pub fn admin(&self) -> Result<(), ApiError> {
        if self.admin && self.acting_for.is_none() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("admin"))
        }
    }

    /// Operations on no particular user (resolving identities): services only.
    pub fn service_write(&self) -> Result<(), ApiError> {
        if self.write && self.acting_for.is_none() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("memory:write"))
        }
    }

    fn confined(&self, user: Uuid) -> Result<(), ApiError> {
        match self.acting_for {
            Some(me) if me != user => Err(ApiError::OtherUser),
            _ => Ok(()),
        }
    }
}

pub async fn authenticate(
    State(app): State<App>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let acting_for = match request.headers().get(ACTING_FOR) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<Uuid>().ok())
                .ok_or_else(|| ApiError::invalid(ACTING_FOR, "must be a user id (UUID)"))?,
        ),
    };
    let principal = daarion_control_client::identify(
        app.root_token.as_deref(),
        app.introspector.as_ref(),
        request.headers(),
    )
    .await
    .map_err(ApiError::AuthUnavailable)?
    .ok_or(ApiError::Unauthenticated)?;
    let has = |s: &str| principal.has(s);
    if !(has("memory:read") || has("memory:write") || has("memory:user")) {
        return Err(ApiError::Forbidden("memory:read"));
    }
    if !has("memory:read") && !has("memory:write") && acting_for.is_none() {
        // A user-scoped token must say which user it acts for.
        return Err(ApiError::invalid(
            ACTING_FOR,
            "a memory:user token must name the user it acts for",
        ));
    }
    let caller = Caller {
        name: principal.name(),
        read: has("memory:read"),
        write: has("memory:write"),
        admin: principal.is_admin(),
        acting_for,
    };
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

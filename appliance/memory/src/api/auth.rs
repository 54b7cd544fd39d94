//! Who is calling the memory API, and for whom.
//!
//! Credentials: the appliance's root token, an API token minted by the control plane, or an
//! admin's browser session cookie with its CSRF token (both checked there through
//! `daarion_control_client::Introspector`). Scopes: `memory:read` and
//! `memory:write` reach every user's data; a `memory:user` token only the user it was minted
//! for. `X-Daarion-Acting-For` only ever narrows: it confines a broad caller (the router and
//! the gateway act for one user at a time with it), and a token minted for a user that names
//! anyone else is refused. A header is what the caller says; the token's user is what the
//! control plane recorded when an administrator minted it.

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

/// The user a caller acts for: the one its token was minted for (`bound`), which the header may
/// repeat but never change; else, for a broad caller, the one the header names (or none).
fn confine(
    bound: Option<&str>,
    broad: bool,
    header: Option<Uuid>,
) -> Result<Option<Uuid>, ApiError> {
    match bound {
        Some(bound) => {
            let bound: Uuid = bound
                .parse()
                .map_err(|_| ApiError::Forbidden("memory:user"))?;
            match header {
                Some(named) if named != bound => Err(ApiError::OtherUser),
                _ => Ok(Some(bound)),
            }
        }
        // A `memory:user` token minted before tokens named their user: it could act for anyone
        // it liked, so it acts for no one (mint it again with `user_id`).
        None if !broad => Err(ApiError::Forbidden("memory:user (minted for a user)")),
        None => Ok(header),
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
    let acting_for = confine(
        principal.user(),
        has("memory:read") || has("memory:write"),
        acting_for,
    )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_narrows_and_never_widens() {
        let ann = Uuid::now_v7();
        let bob = Uuid::now_v7();
        let ann_text = ann.to_string();
        let bound = Some(ann_text.as_str());
        for (bound, broad, header, expected) in [
            // A token minted for Ann acts for Ann, named or not, and for nobody else.
            (bound, false, None, Ok(Some(ann))),
            (bound, false, Some(ann), Ok(Some(ann))),
            (bound, false, Some(bob), Err("other_user")),
            // Even with broad scopes besides, its user confines it.
            (bound, true, Some(bob), Err("other_user")),
            (bound, true, None, Ok(Some(ann))),
            // Broad callers (router, gateway) narrow themselves with the header.
            (None, true, Some(bob), Ok(Some(bob))),
            (None, true, None, Ok(None)),
            // A memory:user token bound to nobody reaches nobody.
            (None, false, Some(bob), Err("forbidden")),
            (None, false, None, Err("forbidden")),
            (Some("not-a-uuid"), false, None, Err("forbidden")),
        ] {
            let got = confine(bound, broad, header).map_err(|e| match e {
                ApiError::OtherUser => "other_user",
                ApiError::Forbidden(_) => "forbidden",
                _ => "other",
            });
            assert_eq!(got, expected, "{bound:?} broad={broad} header={header:?}");
        }
    }
}

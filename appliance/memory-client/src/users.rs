//! Users and their channel identities: `/v1/identities/resolve`, `/v1/users`, `/v1/users/{id}`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `POST /v1/identities/resolve`: who is behind this identity on this channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// Lowercase letters, digits, `_` and `-`, at most 32 (`telegram`, `webchat`).
    pub channel: String,
    /// The channel's own id for the person, 1 to 128 bytes.
    pub external_id: String,
    /// The name a first contact's user is created with, at most 200 bytes.
    #[serde(default)]
    pub display_name: String,
}

/// The answer to [`Resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resolved {
    pub user_id: Uuid,
    /// `true` when this call created the user (first contact).
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    pub display_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One way a user is known on a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identity {
    pub channel: String,
    pub external_id: String,
}

/// `GET /v1/users/{id}`: the user and their identities (by channel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    pub user: User,
    pub identities: Vec<Identity>,
}

/// `GET /v1/users?q=&limit=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    /// Part of a display name or channel id (case-insensitive).
    #[serde(default)]
    pub q: String,
    /// 1 to 500.
    #[serde(default = "fifty")]
    pub limit: i64,
}

fn fifty() -> i64 {
    50
}

impl Default for UsersQuery {
    fn default() -> Self {
        UsersQuery {
            q: String::new(),
            limit: fifty(),
        }
    }
}

/// One user in `GET /v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Listed {
    pub id: Uuid,
    pub display_name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// `channel:external_id` of each identity.
    pub identities: Vec<String>,
}

//! Where each hot read is cached in Redis (under `<redis.key_prefix>memory:`), in one place:
//! a handler that writes must drop the key another handler reads through.

use uuid::Uuid;

use crate::App;

/// The user behind a channel identity. An identity never moves to another user, so nothing
/// drops it.
pub fn identity(app: &App, channel: &str, external_id: &str) -> String {
    app.cache.key(&format!("identity:{channel}:{external_id}"))
}

/// A user's profile. Nothing changes a profile after first contact; whatever comes to change
/// one must drop this key.
pub fn profile(app: &App, user: Uuid) -> String {
    app.cache.key(&format!("user:{user}"))
}

/// The open session of a user, agent and chat (lengths keep the parts apart).
pub fn open_session(app: &App, user: Uuid, agent: &str, chat: &str) -> String {
    app.cache
        .key(&format!("open:{user}:{}:{agent}:{chat}", agent.len()))
}

/// A session's last messages.
pub fn history(app: &App, session: Uuid) -> String {
    app.cache.key(&format!("history:{session}"))
}

/// A session's state entries.
pub fn state(app: &App, session: Uuid) -> String {
    app.cache.key(&format!("state:{session}"))
}

/// A user's current facts.
pub fn facts(app: &App, user: Uuid) -> String {
    app.cache.key(&format!("facts:{user}"))
}

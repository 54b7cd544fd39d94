//! What every handler is given.

use std::sync::Arc;

use daarion_bus::Bus;
use daarion_config::Config;
use daarion_db::PgPool;

use crate::changes::Changes;

/// Shared by every handler.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub pool: PgPool,
    pub bus: Bus,
    pub changes: Changes,
    /// Quota counters.
    pub redis: redis::aio::ConnectionManager,
    /// The appliance's root token (the supervisor's admin token), when its file is readable.
    pub root_token: Option<Arc<str>>,
    /// Login backoff and the bound on concurrent password hashing.
    pub login: crate::login_guard::LoginGuard,
}

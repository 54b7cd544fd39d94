//! How data-plane services read the control plane, and the wire types both sides compile.
//!
//! Every getter returns a [`Versioned`] value: the version that served it (so a trace can record
//! the prompt, policy and config versions behind an answer) and whether it was stale. Values are
//! cached for a TTL; [`ControlClient::watch`] drops entries the moment the control plane
//! announces a change on `control.changed.>`; when the control plane cannot be reached, the last
//! known value keeps being served (marked `stale`) instead of failing the user's request.
//!
//! Config documents are typed by `daarion-settings` (and flags by `daarion-policy`): each type
//! knows its key, so `control.config::<Routing>()` is the whole call. The quota bodies
//! ([`Usage`], [`Settlement`], [`QuotaStatus`], …) and the change [`Announcement`] are defined
//! here once; the control plane's handlers use the same types, so a renamed field fails to
//! compile on both sides. Calls go through `daarion_client::Service`, and caller text placed in
//! a path goes through `daarion_client::segment`.

mod cache;
mod client;
mod config;
mod error;
mod introspect;
mod quota;
mod secrets;
mod types;

pub use client::ControlClient;
pub use error::ClientError;
pub use introspect::{
    CSRF_HEADER, Grant, Identity, Introspection, Introspector, Principal, TokenQuery, TokenStatus,
    identify,
};
pub use quota::{
    Consumed, LimitSources, Limits, LimitsStored, QuotaStatus, Settled, Settlement, Usage,
    UsageNow, usd,
};
pub use secrets::{SecretError, resolve_secret_in};
pub use types::{Agent, AgentPolicy, Announcement, DecisionReport, Prompt, Versioned};

//! Policy as data, and the one function that evaluates it.
//!
//! The control plane stores a [`PolicyDoc`] per agent; the data plane (through the control-plane
//! client's cache) and the control plane itself decide with [`decide`], so a decision never
//! depends on who evaluates it. Flags are evaluated the same way with [`flag_enabled`].

mod flags;
mod rbac;

pub use flags::{Flag, bucket, flag_enabled};
pub use rbac::{Action, BUILTIN_ROLES, Decision, Grant, MODES, PolicyDoc, Rule, Subject, decide};

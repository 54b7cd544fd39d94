//! The HTTP conventions every DAARION service shares: one JSON error shape with a stable code,
//! trace propagation and request metrics, a request timeout, a body size limit, the
//! observability routes, and a server loop that drains on shutdown.

mod error;
mod metrics;
mod middleware;
mod serve;

pub use error::{ErrorBody, ErrorResponse};
pub use middleware::{REQUEST_ID, json_errors, trace_requests};
pub use serve::{ServeError, build_app, serve, serve_app};

//! What every DAARION service needs to be observable: logging set up in one call, a W3C trace
//! context carried on every request and message, Prometheus metrics, and the `/health`, `/ready`
//! and `/metrics` endpoints.

mod health;
mod journald;
mod logging;
mod metrics;
mod trace;

pub use health::{Check, CheckResult, Readiness, observability_routes};
pub use logging::{LoggingError, init_logging};
pub use metrics::{encode_metrics, metric_name};
pub use trace::{TRACEPARENT, TraceContext, TraceParseError};

//! What every DAARION service needs to be observable: logging set up in one call, a W3C trace
//! context carried on every request and message, Prometheus metrics, and the `/health`, `/ready`
//! and `/metrics` endpoints; every span of a trace kept in memory for the admin UI's trace view,
//! and sent to an OTLP collector when one is configured.

mod health;
mod journald;
mod logging;
mod metrics;
mod otlp;
mod spans;
mod trace;

pub use health::{Check, CheckResult, Readiness, observability_routes};
pub use logging::{LoggingError, init_logging};
pub use metrics::{encode_metrics, metric_name};
pub use otlp::{ExportOptions, OtlpError, encode as encode_otlp, start_otlp, traces_url};
pub use spans::{
    EventRecord, EventView, Limits, MAX_EVENT_BYTES, Recorder, SpanLayer, SpanRecord, SpanView,
    TraceDump, parse_trace_id,
};
pub use trace::{TRACEPARENT, TraceContext, TraceParseError};

//! Prometheus exposition. Each crate declares its own metrics in one `metrics.rs`, registered in
//! the process-wide default registry; this module renders them.

use prometheus::{Encoder, TextEncoder};

/// Every metric the appliance exports starts with `daarion_`.
pub fn metric_name(name: &str) -> String {
    format!("daarion_{name}")
}

/// The text exposition of every registered metric.
pub fn encode_metrics() -> String {
    let families = prometheus::gather();
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for the text format.
    let _ = TextEncoder::new().encode(&families, &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// Spans the OTLP exporter could not deliver: its queue was full, or the collector refused or
/// did not answer a batch.
pub(crate) static OTLP_DROPPED: std::sync::LazyLock<prometheus::IntCounter> =
    std::sync::LazyLock::new(|| {
        prometheus::register_int_counter!(
            "daarion_telemetry_otlp_dropped_total",
            "Spans not delivered to the OTLP collector (queue full, or the batch failed)"
        )
        .expect("metric registered once")
    });

//! Bus metrics. Labels are bounded: event types come from the fixed topology and consumers are
//! the durable names, never ids or subjects with data in them.

use std::sync::LazyLock;

use prometheus::{
    HistogramVec, IntCounterVec, IntGaugeVec, register_histogram_vec, register_int_counter_vec,
    register_int_gauge_vec,
};

pub(crate) static PUBLISHED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_bus_published_total",
        "Events acknowledged by JetStream, by stream and whether the server dropped a duplicate",
        &["stream", "duplicate"]
    )
    .expect("metric registered once")
});

pub(crate) static PUBLISH_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_bus_publish_seconds",
        "Time from publish to JetStream ack",
        &["stream"],
        vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0
        ]
    )
    .expect("metric registered once")
});

pub(crate) static HANDLED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_bus_handled_total",
        "Messages a consumer finished with, by outcome: acked, retried, dead_lettered",
        &["consumer", "outcome"]
    )
    .expect("metric registered once")
});

pub(crate) static HANDLER_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_bus_handler_seconds",
        "Time a consumer's handler spent on one message",
        &["consumer"],
        vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0]
    )
    .expect("metric registered once")
});

pub(crate) static PENDING: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_bus_consumer_pending",
        "Messages waiting for a consumer as of its last delivery (queue lag)",
        &["consumer"]
    )
    .expect("metric registered once")
});

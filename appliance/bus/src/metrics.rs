//! Bus metrics. Labels are bounded: event types come from the fixed topology and consumers are
//! the durable names, never ids or subjects with data in them.
//!
//! The `daarion_bus_consumer_*` (but `running`), `daarion_bus_stream_*`, `dead_letters` and
//! `stats_up` gauges are set by the poller in [`crate::stats`] (see there why polled); other
//! engineers' alert rules use these exact names.

use std::sync::LazyLock;

use prometheus::{
    GaugeVec, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, register_gauge_vec,
    register_histogram_vec, register_int_counter_vec, register_int_gauge, register_int_gauge_vec,
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
        "Messages stored for a consumer and not yet delivered (num_pending): the queue lag",
        &["consumer"]
    )
    .expect("metric registered once")
});

pub(crate) static ACK_PENDING: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_bus_consumer_ack_pending",
        "Messages delivered to a consumer and not yet acknowledged (num_ack_pending)",
        &["consumer"]
    )
    .expect("metric registered once")
});

pub(crate) static REDELIVERED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_bus_consumer_redelivered",
        "Messages of a consumer delivered more than once and not yet acknowledged (num_redelivered)",
        &["consumer"]
    )
    .expect("metric registered once")
});

pub(crate) static OLDEST_UNACKED_AGE: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "daarion_bus_consumer_oldest_unacked_age_seconds",
        "Age of the oldest message a consumer has not acknowledged; 0 when it has none",
        &["consumer"]
    )
    .expect("metric registered once")
});

pub(crate) static DEAD_LETTERS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_bus_dead_letters",
        "Messages of a consumer stored in the DEAD_LETTERS stream",
        &["consumer"]
    )
    .expect("metric registered once")
});

pub(crate) static STREAM_BYTES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_bus_stream_bytes",
        "Bytes a stream stores",
        &["stream"]
    )
    .expect("metric registered once")
});

pub(crate) static STREAM_MAX_BYTES: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_bus_stream_max_bytes",
        "A stream's byte limit; 0 when unlimited",
        &["stream"]
    )
    .expect("metric registered once")
});

pub(crate) static STATS_UP: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "daarion_bus_stats_up",
        "1 when the last poll of the bus statistics read everything it asked NATS for, else 0"
    )
    .expect("metric registered once")
});

pub(crate) static RUNNING: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_bus_consumer_running",
        "Consuming tasks of a consumer running in this process: 1 while it runs, 0 once it ended",
        &["consumer"]
    )
    .expect("metric registered once")
});

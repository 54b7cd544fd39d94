//! HTTP metrics, shared by every service and labelled by it. Labels are bounded: the route is the
//! matched pattern (`/prompts/{agent_id}`), never the raw path.

use std::sync::LazyLock;

use prometheus::{HistogramVec, IntCounterVec, register_histogram_vec, register_int_counter_vec};

pub(crate) static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_http_requests_total",
        "HTTP requests answered, by service, method, route pattern and status code",
        &["service", "method", "route", "status"]
    )
    .expect("metric registered once")
});

pub(crate) static DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_http_request_duration_seconds",
        "Time from request received to response headers, by service and route pattern",
        &["service", "route"],
        vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0
        ]
    )
    .expect("metric registered once")
});

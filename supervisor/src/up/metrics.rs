//! The supervisor's metrics. `unit` is one of the fixed unit names.

use std::sync::LazyLock;

use prometheus::{
    HistogramVec, IntCounterVec, IntGaugeVec, register_histogram_vec, register_int_counter_vec,
    register_int_gauge_vec,
};

pub static RESTARTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_supervisor_restarts_total",
        "Unit restarts, by unit and cause (failure: exit, failed health or readiness; operator)",
        &["unit", "cause"]
    )
    .expect("metric registered once")
});

pub static UP: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_supervisor_unit_up",
        "1 while the unit is ready, else 0",
        &["unit"]
    )
    .expect("metric registered once")
});

pub static START_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_supervisor_start_seconds",
        "Time from spawning a unit to its first successful readiness probe",
        &["unit"],
        vec![0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]
    )
    .expect("metric registered once")
});

//! Crews worker metrics. Why runs stopped is the crews service's `daarion_crews_runs_stopped_
//! total`; this process counts what it does. Labels are fixed sets: step kinds and outcomes.

use std::sync::LazyLock;

use prometheus::{
    Histogram, HistogramVec, IntCounterVec, IntGauge, register_histogram_vec,
    register_int_counter_vec, register_int_gauge,
};

/// Steps by kind (`llm`, `tool`, `guardrail`, `summary`, `delegation`, `task_output`) and
/// whether they were made now or taken from the journal (`replayed`).
pub(crate) static STEPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_crews_worker_steps_total",
        "Run steps by kind and source (made, replayed from the journal)",
        &["kind", "source"]
    )
    .expect("metric registered once")
});

pub(crate) static STEP_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_crews_worker_step_seconds",
        "Time of a model or tool call made by the worker, journal write included",
        &["kind"],
        vec![
            0.005, 0.02, 0.1, 0.5, 1.0, 2.5, 5.0, 15.0, 30.0, 60.0, 180.0
        ]
    )
    .expect("metric registered once")
});

pub(crate) static RUNS_ACTIVE: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "daarion_crews_worker_runs_active",
        "Runs executing in this worker now (not those waiting for a slot)"
    )
    .expect("metric registered once")
});

/// How a claimed run left this worker: completed, failed, waiting_input, interrupted.
pub(crate) static RUNS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_crews_worker_runs_total",
        "Runs this worker handled, by how they left it",
        &["outcome"]
    )
    .expect("metric registered once")
});

pub(crate) fn step_seconds(kind: &str) -> Histogram {
    STEP_SECONDS.with_label_values(&[kind])
}

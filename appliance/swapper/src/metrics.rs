//! Swapper metrics; `model` is a manifest id, a bounded set.

use std::sync::LazyLock;

use prometheus::{
    HistogramVec, IntCounterVec, IntGauge, register_histogram_vec, register_int_counter_vec,
    register_int_gauge,
};

pub(crate) static LOAD_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_swapper_load_seconds",
        "Time to start a worker and load its model; start is cold for the first load since the swapper started, warm after",
        &["model", "start"],
        vec![0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0]
    )
    .expect("metric registered once")
});

pub(crate) static EVICTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_swapper_evictions_total",
        "Models unloaded, by reason: budget, idle, operator, crashed",
        &["model", "reason"]
    )
    .expect("metric registered once")
});

pub(crate) static QUEUE_WAIT: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_swapper_queue_wait_seconds",
        "Time a request waited for its model (load and swap included)",
        &["model"],
        vec![0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0]
    )
    .expect("metric registered once")
});

pub(crate) static FIRST_TOKEN: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_swapper_first_token_seconds",
        "Time from the request reaching its worker to the first token",
        &["model"],
        vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]
    )
    .expect("metric registered once")
});

pub(crate) static TOKENS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_swapper_tokens_total",
        "Tokens processed, by model and direction (prompt, completion)",
        &["model", "direction"]
    )
    .expect("metric registered once")
});

pub(crate) static MEMORY_USED: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "daarion_swapper_memory_used_bytes",
        "Footprint of the loaded and loading models, as the ledger counts it"
    )
    .expect("metric registered once")
});

pub(crate) static RELEASE_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_swapper_release_seconds",
        "From asking a worker to stop to its exit: until then its memory is not free",
        &["model"],
        vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
    )
    .expect("metric registered once")
});

pub(crate) static TOKENS_PER_SECOND: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_swapper_tokens_per_second",
        "Generation speed of one answer, after its prompt was evaluated",
        &["model"],
        vec![1.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0]
    )
    .expect("metric registered once")
});

pub(crate) static IMAGE_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_swapper_image_seconds",
        "Time the worker took to make one request's pictures (text encoding, sampling, decoding)",
        &["model"],
        vec![0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]
    )
    .expect("metric registered once")
});

//! Router metrics. Labels are bounded: outcomes and tool names are fixed sets, providers are
//! the configured ones.

use std::sync::LazyLock;

use prometheus::{
    Histogram, HistogramVec, IntCounter, IntCounterVec, register_histogram, register_histogram_vec,
    register_int_counter, register_int_counter_vec,
};

pub(crate) static TURNS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_router_turns_total",
        "Turns by outcome: answered, interrupted, refused, failed, ignored",
        &["outcome"]
    )
    .expect("metric registered once")
});

pub(crate) static TURN_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "daarion_router_turn_seconds",
        "Admission to stored answer, model time included",
        vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]
    )
    .expect("metric registered once")
});

pub(crate) static LLM_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_router_llm_seconds",
        "One streamed model call, from request to last chunk",
        &["provider"],
        vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]
    )
    .expect("metric registered once")
});

pub(crate) static LLM_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_router_llm_failures_total",
        "Model calls that failed (after the provider's own retries)",
        &["provider"]
    )
    .expect("metric registered once")
});

pub(crate) static FALLBACKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_router_fallbacks_total",
        "Answers given by a link other than the first of the chain",
        &["provider"]
    )
    .expect("metric registered once")
});

pub(crate) static TOOL_CALLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_router_tool_calls_total",
        "Tool calls by tool and outcome: ok, failed, invalid, refused, timeout",
        &["tool", "outcome"]
    )
    .expect("metric registered once")
});

pub(crate) static SUMMARIES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "daarion_router_summaries_total",
        "History summaries made because a session outgrew the model's context"
    )
    .expect("metric registered once")
});

pub(crate) static STEPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_router_steps_total",
        "Crew steps by kind (llm, tool) and outcome: answered, replayed, refused, invalid, in_progress, failed",
        &["kind", "outcome"]
    )
    .expect("metric registered once")
});

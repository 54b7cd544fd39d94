//! Gateway metrics; `bot` is a configured bot name, the rest are fixed sets.

use std::sync::LazyLock;

use prometheus::{Histogram, IntCounterVec, register_histogram, register_int_counter_vec};

pub(crate) static UPDATES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_gateway_updates_total",
        "Webhook calls by outcome: accepted, duplicate, bad_secret, malformed",
        &["bot", "outcome"]
    )
    .expect("metric registered once")
});

pub(crate) static HANDLED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_gateway_messages_total",
        "Updates handled by kind: answered, command, unsupported, ignored, failed",
        &["kind"]
    )
    .expect("metric registered once")
});

pub(crate) static TELEGRAM_CALLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_gateway_telegram_calls_total",
        "Bot API calls by method and outcome: ok, retry_after, failed",
        &["method", "outcome"]
    )
    .expect("metric registered once")
});

pub(crate) static FIRST_REPLY: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "daarion_gateway_first_reply_seconds",
        "From taking an update off the queue to the first text in the chat",
        vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]
    )
    .expect("metric registered once")
});

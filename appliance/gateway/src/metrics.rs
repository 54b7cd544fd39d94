//! Gateway metrics; `bot` is a configured bot name, the rest are fixed sets.

use std::sync::LazyLock;

use prometheus::{
    Gauge, Histogram, IntCounterVec, register_gauge, register_histogram, register_int_counter_vec,
};

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

pub(crate) static RUN_EVENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_gateway_run_events_total",
        "agent.run events by kind (progress, completed, failed) and what the chat saw: sent, \
         edited, asked, duplicate, stale, not_telegram",
        &["event", "outcome"]
    )
    .expect("metric registered once")
});

pub(crate) static RUN_ANSWERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_gateway_run_answers_total",
        "Messages answering a waiting crew run: resumed, stale (it no longer waited), failed",
        &["outcome"]
    )
    .expect("metric registered once")
});

pub(crate) static ALERT_NOTIFICATIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_gateway_alert_notifications_total",
        "Alert messages to operator chats by outcome: sent, failed",
        &["outcome"]
    )
    .expect("metric registered once")
});

pub(crate) static ALERT_HEARTBEAT: LazyLock<Gauge> = LazyLock::new(|| {
    register_gauge!(
        "daarion_gateway_alert_heartbeat_timestamp_seconds",
        "When Alertmanager's Watchdog last reached the gateway (Unix time; 0: not since start)"
    )
    .expect("metric registered once")
});

//! The control plane's own metrics (HTTP metrics come from daarion-http). Labels are fixed sets.

use std::sync::LazyLock;

use prometheus::{IntCounterVec, IntGauge, register_int_counter_vec, register_int_gauge};

pub(crate) static QUOTA_CHECKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_control_quota_checks_total",
        "Quota check-and-consume calls, by outcome: allowed, refused",
        &["outcome"]
    )
    .expect("metric registered once")
});

pub(crate) static AUTH_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_control_auth_failures_total",
        "Refused credentials, by kind: token, session, csrf, login",
        &["kind"]
    )
    .expect("metric registered once")
});

pub(crate) static LOGIN_REFUSALS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_control_login_refusals_total",
        "Logins refused before the password was checked, by reason: backoff, busy",
        &["reason"]
    )
    .expect("metric registered once")
});

pub(crate) static OUTBOX_PENDING: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "daarion_control_outbox_pending",
        "Committed changes whose events are not yet on the bus"
    )
    .expect("metric registered once")
});

//! Crews metrics. Labels are the fixed sets of run states and stop codes.

use std::sync::LazyLock;
use std::time::Duration;

use daarion_crews_client::{RunState, StopCode};
use prometheus::{IntCounterVec, IntGaugeVec, register_int_counter_vec, register_int_gauge_vec};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

static RUNS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_crews_runs",
        "Runs recorded, by state (queued, running, waiting_input, completed, failed, cancelled)",
        &["state"]
    )
    .expect("metric registered once")
});

static STOPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_crews_runs_stopped_total",
        "Runs that stopped without completing, by reason (tokens, cost, gpu_seconds, steps, wall_time, max_iter, delegation_loop, cancelled, refused, invalid, failed)",
        &["reason"]
    )
    .expect("metric registered once")
});

/// The gauge is read from the table (other replicas' and the past's runs count too).
const REFRESH: Duration = Duration::from_secs(15);

pub(crate) fn stopped(code: StopCode) {
    STOPPED.with_label_values(&[code.as_str()]).inc();
}

/// Refreshes the gauge every 15 s, and soon after `changed` is notified.
pub(crate) async fn refresh_runs(
    pool: PgPool,
    changed: std::sync::Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        match crate::store::runs::counts(&pool).await {
            Ok(counts) => {
                for state in RunState::ALL {
                    let n = counts
                        .iter()
                        .find(|(s, _)| s == state.as_str())
                        .map_or(0, |(_, n)| *n);
                    RUNS.with_label_values(&[state.as_str()]).set(n);
                }
            }
            Err(e) => tracing::warn!(error = %e, "runs gauge: cannot count"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = changed.notified() => {}
            () = tokio::time::sleep(REFRESH) => {}
        }
    }
}

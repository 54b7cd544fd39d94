//! What recording costs per span: `cargo test -p daarion-telemetry --test span_overhead --
//! --ignored --nocapture` prints nanoseconds per span (a request span with one child and one
//! log line) on a bare registry, with the recorder, and a span outside any trace.

use std::sync::Arc;
use std::time::Instant;

use daarion_telemetry::{Limits, Recorder};
use tracing_subscriber::layer::SubscriberExt;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const N: u32 = 50_000;

fn traced() {
    tracing::info_span!(
        "request",
        trace_id = TRACE,
        span_id = "00f067aa0ba902b7",
        route = "/x"
    )
    .in_scope(|| {
        tracing::info_span!("inner").in_scope(|| tracing::info!(n = 1, "line"));
    });
}

fn untraced() {
    tracing::info_span!("other", route = "/x").in_scope(|| {
        tracing::info_span!("inner").in_scope(|| tracing::info!(n = 1, "line"));
    });
}

fn per_call(f: fn()) -> f64 {
    let started = Instant::now();
    for _ in 0..N {
        f();
    }
    started.elapsed().as_nanos() as f64 / f64::from(N)
}

#[test]
#[ignore = "a measurement, not a check"]
fn overhead_per_span() {
    let bare =
        tracing::subscriber::with_default(tracing_subscriber::registry(), || per_call(traced));
    let recorder = Arc::new(Recorder::new(Limits::default()));
    let subscriber = tracing_subscriber::registry().with(recorder.layer());
    let (recorded, outside) =
        tracing::subscriber::with_default(subscriber, || (per_call(traced), per_call(untraced)));
    println!(
        "bare registry {bare:.0} ns; recorded (2 spans + 1 line) {recorded:.0} ns, \
         +{:.0} ns per span; outside any trace {outside:.0} ns",
        (recorded - bare) / 2.0
    );
    assert!(recorder.usage().0 > 0);
}

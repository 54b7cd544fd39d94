//! GPU-seconds for quotas. The swapper does not report how long a call held the GPU, so the
//! router measures it: the wall time of a call to a local model is its GPU time (it includes
//! waiting for the model to load, which holds the GPU too).
//!
//! Before a call the quota is reserved at an estimate: the work asked for (the most tokens the
//! call may write, the characters to speak, the pictures to draw) times the seconds per unit this
//! model took on average over its last calls here, or a default per kind of work until it has
//! been measured. After the call the reservation is settled with the measured time, so the
//! counter holds what was really used; the estimate only decides whether there is room to start.

use std::collections::HashMap;
use std::sync::Mutex;

/// What a unit of work costs a model never measured yet, in seconds: a generous CPU speed for
/// text (20 tokens/s), speech by characters, pictures by the picture.
pub const TOKEN_SECONDS: f64 = 0.05;
pub const SPOKEN_CHAR_SECONDS: f64 = 0.01;
pub const PICTURE_SECONDS: f64 = 20.0;

/// Every local reservation is at least this much, so a GPU budget that is spent refuses the
/// next local call instead of letting it through at zero.
pub const MIN_RESERVATION: f64 = 0.1;
/// And at most this much (ten minutes: the longest a request may run).
pub const MAX_RESERVATION: f64 = 600.0;

/// How much a new measurement moves a model's average (an exponential moving average).
const WEIGHT: f64 = 0.3;

/// Seconds per unit of work, per local model, measured.
#[derive(Default)]
pub struct GpuMeter {
    rates: Mutex<HashMap<String, f64>>,
}

impl GpuMeter {
    /// The GPU-seconds to reserve for `units` of work on `model`.
    pub fn estimate(&self, model: &str, units: f64, default_rate: f64) -> f64 {
        let rate = self
            .rates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(model)
            .copied()
            .unwrap_or(default_rate);
        (units.max(1.0) * rate).clamp(MIN_RESERVATION, MAX_RESERVATION)
    }

    /// Learns from a finished call: `seconds` for `units` of work.
    pub fn record(&self, model: &str, units: f64, seconds: f64) {
        if !(seconds.is_finite() && seconds > 0.0) {
            return;
        }
        let rate = seconds / units.max(1.0);
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        rates
            .entry(model.to_owned())
            .and_modify(|r| *r += WEIGHT * (rate - *r))
            .or_insert(rate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_start_from_the_default_and_follow_measurements() {
        let meter = GpuMeter::default();
        // (units, default rate, expected estimate)
        for (units, rate, expected) in [
            (100.0, TOKEN_SECONDS, 5.0),
            (0.0, TOKEN_SECONDS, MIN_RESERVATION),
            (1.0e9, TOKEN_SECONDS, MAX_RESERVATION),
            (1.0, PICTURE_SECONDS, PICTURE_SECONDS),
        ] {
            assert_eq!(
                meter.estimate("m", units, rate),
                expected,
                "{units} × {rate}"
            );
        }
        meter.record("m", 100.0, 1.0);
        assert!((meter.estimate("m", 100.0, TOKEN_SECONDS) - 1.0).abs() < 1e-9);
        meter.record("m", 100.0, 2.0);
        let moved = meter.estimate("m", 100.0, TOKEN_SECONDS);
        assert!(moved > 1.0 && moved < 2.0, "{moved}");
        meter.record("m", 100.0, 0.0);
        assert_eq!(
            meter.estimate("m", 100.0, TOKEN_SECONDS),
            moved,
            "zero is no measurement"
        );
        assert_eq!(meter.estimate("other", 100.0, TOKEN_SECONDS), 5.0);
    }
}

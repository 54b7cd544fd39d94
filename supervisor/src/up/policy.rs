//! When to restart a unit that exited, and when to give up on it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use daarion_config::SupervisorConfig;
use rand::Rng;

/// Crash bookkeeping for one unit.
#[derive(Debug)]
pub struct RestartPolicy {
    initial: Duration,
    max: Duration,
    window: Duration,
    max_restarts: usize,
    crashes: VecDeque<Instant>,
    consecutive: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Restart after this delay.
    RestartIn(Duration),
    /// Too many crashes inside the window: leave it stopped and report it.
    GiveUp { crashes: usize, window: Duration },
}

impl RestartPolicy {
    pub fn new(config: &SupervisorConfig) -> Self {
        RestartPolicy {
            initial: Duration::from_millis(config.backoff_initial_ms),
            max: Duration::from_millis(config.backoff_max_ms),
            window: config.restart_window(),
            max_restarts: config.max_restarts as usize,
            crashes: VecDeque::new(),
            consecutive: 0,
        }
    }

    /// Records a crash at `now` and decides what to do.
    pub fn crashed(&mut self, now: Instant) -> Decision {
        self.crashes.push_back(now);
        while self
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            self.crashes.pop_front();
        }
        if self.crashes.len() >= self.max_restarts {
            return Decision::GiveUp {
                crashes: self.crashes.len(),
                window: self.window,
            };
        }
        self.consecutive += 1;
        let base = self
            .initial
            .saturating_mul(1 << (self.consecutive - 1).min(20))
            .min(self.max);
        // ±20% so that services crashing together do not restart in lockstep.
        let jitter = rand::rng().random_range(0.8..=1.2);
        Decision::RestartIn(base.mul_f64(jitter))
    }

    /// A unit that reached ready resets the backoff (not the crash window).
    pub fn became_ready(&mut self) {
        self.consecutive = 0;
    }

    /// An operator's start clears the history: they asked for a fresh try.
    pub fn reset(&mut self) {
        self.crashes.clear();
        self.consecutive = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RestartPolicy {
        let mut config = daarion_config::Config::defaults().supervisor;
        config.backoff_initial_ms = 100;
        config.backoff_max_ms = 1000;
        config.max_restarts = 4;
        config.restart_window_secs = 60;
        RestartPolicy::new(&config)
    }

    fn delay(d: Decision) -> Duration {
        match d {
            Decision::RestartIn(d) => d,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let mut p = policy();
        let now = Instant::now();
        let d1 = delay(p.crashed(now));
        let d2 = delay(p.crashed(now));
        let d3 = delay(p.crashed(now));
        assert!((80..=120).contains(&d1.as_millis()), "{d1:?}");
        assert!((160..=240).contains(&d2.as_millis()), "{d2:?}");
        assert!((320..=480).contains(&d3.as_millis()), "{d3:?}");
    }

    #[test]
    fn gives_up_after_max_crashes_in_window() {
        let mut p = policy();
        let now = Instant::now();
        for _ in 0..3 {
            delay(p.crashed(now));
        }
        assert!(matches!(
            p.crashed(now),
            Decision::GiveUp { crashes: 4, .. }
        ));
    }

    #[test]
    fn old_crashes_leave_the_window() {
        let mut p = policy();
        let start = Instant::now();
        for _ in 0..3 {
            delay(p.crashed(start));
        }
        // Far later: the early crashes no longer count.
        let later = start + Duration::from_secs(61);
        assert!(matches!(p.crashed(later), Decision::RestartIn(_)));
    }

    #[test]
    fn ready_resets_backoff_and_cap_applies() {
        let mut p = policy();
        let now = Instant::now();
        delay(p.crashed(now));
        delay(p.crashed(now));
        p.became_ready();
        let d = delay(p.crashed(now));
        assert!(d.as_millis() <= 120, "{d:?}");
        p.reset();
        let mut p2 = policy();
        p2.max_restarts = 100;
        let mut last = Duration::ZERO;
        for _ in 0..10 {
            last = delay(p2.crashed(now));
        }
        assert!(last.as_millis() <= 1200, "capped: {last:?}");
    }
}

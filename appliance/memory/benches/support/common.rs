//! What the memory benchmarks share: a seeded generator, so they build the same data on every
//! run (and the same graph for each backend they compare), and percentiles in milliseconds.

use std::time::Duration;

use rand::SeedableRng;
pub use rand::rngs::StdRng as Rng;

pub fn seeded(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// The `p` quantile (0 to 1) of `sorted`, in milliseconds.
pub fn ms(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

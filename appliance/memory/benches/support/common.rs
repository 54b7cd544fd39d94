//! What the memory benchmarks share: a seeded xorshift generator, so they build the same data
//! on every run (and the same graph for each backend they compare) without a dependency, and
//! percentiles in milliseconds.

use std::time::Duration;

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The `p` quantile (0 to 1) of `sorted`, in milliseconds.
pub fn ms(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

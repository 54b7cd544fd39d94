//! How much memory the models may fill: the configured size; else, on a box with NVIDIA GPUs
//! (read through NVML), the VRAM free when the swapper starts; else the RAM available; less the
//! reserve either way. On a GPU box a model's footprint is then measured as the VRAM its worker
//! holds (NVML's per-process figure), not its RSS.

use daarion_config::Config;
use daarion_gpu::Gpus;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Configured,
    Vram,
    Ram,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Budget {
    pub bytes: u64,
    pub source: Source,
}

const MIB: u64 = 1024 * 1024;

/// The rule, apart from where the numbers come from.
pub fn choose(
    configured_mb: u64,
    reserve_mb: u64,
    vram_free: Option<u64>,
    ram_available: u64,
) -> Budget {
    if configured_mb > 0 {
        return Budget {
            bytes: configured_mb * MIB,
            source: Source::Configured,
        };
    }
    let (free, source) = match vram_free {
        Some(free) if free > 0 => (free, Source::Vram),
        _ => (ram_available, Source::Ram),
    };
    Budget {
        bytes: free.saturating_sub(reserve_mb * MIB),
        source,
    }
}

fn ram_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// The budget on this machine, and the NVML handle when it is VRAM that is budgeted.
pub fn detect(config: &Config) -> (Budget, Option<Gpus>) {
    let gpus = Gpus::new();
    let vram_free = gpus.available().then(|| {
        gpus.snapshot()
            .devices
            .iter()
            .map(|d| d.free_bytes)
            .sum::<u64>()
    });
    let budget = choose(
        config.models.budget_mb,
        config.models.reserve_mb,
        vram_free,
        ram_available(),
    );
    let meter = (budget.source == Source::Vram).then_some(gpus);
    (budget, meter)
}

/// What a worker holds: its VRAM on every GPU when NVML reports it, else its RSS.
pub fn footprint(gpus: Option<&Gpus>, pid: u32, rss: u64) -> u64 {
    let vram: u64 = gpus
        .map(|g| {
            g.snapshot()
                .devices
                .iter()
                .flat_map(|d| d.processes.iter())
                .filter(|p| p.pid == pid)
                .filter_map(|p| p.used_bytes)
                .sum()
        })
        .unwrap_or(0);
    if vram > 0 { vram } else { rss }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_then_vram_then_ram_less_the_reserve() {
        let gb = 1024 * MIB;
        assert_eq!(
            choose(2048, 1024, Some(80 * gb), 16 * gb),
            Budget {
                bytes: 2 * gb,
                source: Source::Configured
            }
        );
        assert_eq!(
            choose(0, 1024, Some(80 * gb), 16 * gb),
            Budget {
                bytes: 79 * gb,
                source: Source::Vram
            }
        );
        assert_eq!(
            choose(0, 1024, None, 16 * gb),
            Budget {
                bytes: 15 * gb,
                source: Source::Ram
            }
        );
        assert_eq!(
            choose(0, 1024, Some(0), 16 * gb).source,
            Source::Ram,
            "a GPU with nothing free is no budget"
        );
        assert_eq!(choose(0, 4096, None, gb).bytes, 0);
        assert_eq!(footprint(None, 1, 123), 123);
    }
}

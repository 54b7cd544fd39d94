//! How much memory the models may fill: the configured size; else, on a box with NVIDIA GPUs
//! (read through NVML), the VRAM free when the swapper starts; else the RAM available; less the
//! reserve either way. On a GPU box a model's footprint is then measured as the VRAM its worker
//! holds (NVML's per-process figure), not its RSS.

use daarion_config::Config;
use daarion_gpu::{GpuReport, Gpus};
use serde::{Deserialize, Serialize};

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
    let vram_free = gpus.free_bytes();
    let budget = choose(
        config.models.budget_mb,
        config.models.reserve_mb,
        vram_free,
        ram_available(),
    );
    let meter = (budget.source == Source::Vram).then_some(gpus);
    (budget, meter)
}

/// Where a model's measured footprint came from (shown in the swapper's status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FootprintSource {
    /// NVML's figure for the worker process.
    GpuProcess,
    /// The drop in the GPUs' free memory across the load.
    GpuFree,
    /// The worker's resident memory: the model runs on the CPU.
    #[default]
    Rss,
}

/// What a worker holds, by the best figure there is: its VRAM as NVML reports it for the
/// process; where the driver gives no per-process figure (in a container NVML lists the host's
/// pids, and some virtual GPUs report none) the drop in free VRAM across its load, which the
/// caller passes only when no other load overlapped it; else its RSS.
pub fn footprint(process_vram: u64, free_drop: Option<u64>, rss: u64) -> (u64, FootprintSource) {
    if process_vram > 0 {
        (process_vram, FootprintSource::GpuProcess)
    } else if let Some(drop) = free_drop.filter(|d| *d > 0) {
        (drop, FootprintSource::GpuFree)
    } else {
        (rss, FootprintSource::Rss)
    }
}

/// The VRAM NVML reported for one process, summed over the GPUs (0 where it reports none).
pub fn process_vram(report: &GpuReport, pid: u32) -> u64 {
    report
        .devices
        .iter()
        .flat_map(|d| d.processes.iter())
        .filter(|p| p.pid == pid)
        .filter_map(|p| p.used_bytes)
        .sum()
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
    }

    #[test]
    fn footprint_is_the_process_vram_then_the_free_drop_then_rss() {
        let gb = 1024 * MIB;
        assert_eq!(
            footprint(3 * gb, Some(5 * gb), gb),
            (3 * gb, FootprintSource::GpuProcess)
        );
        assert_eq!(
            footprint(0, Some(5 * gb), gb),
            (5 * gb, FootprintSource::GpuFree),
            "no per-process figure (a container): the free memory the load took"
        );
        assert_eq!(
            footprint(0, Some(0), gb),
            (gb, FootprintSource::Rss),
            "nothing left the GPU's free memory: the model is on the CPU"
        );
        assert_eq!(footprint(0, None, gb), (gb, FootprintSource::Rss));
    }
}

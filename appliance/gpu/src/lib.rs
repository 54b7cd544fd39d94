//! What the GPUs hold right now, read through NVML.
//!
//! NVML is loaded at run time (`libnvidia-ml.so`), so this builds and runs everywhere; on a
//! machine without the NVIDIA driver every call reports "no GPU" with the reason instead of
//! failing, and the appliance runs its models on the CPU.

use nvml_wrapper::Nvml;
use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
use nvml_wrapper::enums::device::UsedGpuMemory;
use serde::Serialize;

/// A handle on NVML, or the reason there is none. Initialise once; snapshots are cheap.
pub struct Gpus {
    nvml: Result<Nvml, String>,
}

impl std::fmt::Debug for Gpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.nvml {
            Ok(_) => f.write_str("Gpus(nvml)"),
            Err(reason) => write!(f, "Gpus(none: {reason})"),
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GpuReport {
    /// `None` when the driver could not be read; then `devices` is empty and `reason` says why.
    pub driver_version: Option<String>,
    pub cuda_version: Option<String>,
    pub devices: Vec<GpuDevice>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GpuDevice {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub temperature_c: Option<u32>,
    pub utilization_pct: Option<u32>,
    /// Board power draw in milliwatts (NVML's unit); `None` where the device does not report it.
    pub power_mw: Option<u32>,
    pub processes: Vec<GpuProcess>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GpuProcess {
    pub pid: u32,
    /// `None` where the driver does not report per-process memory (some MIG/WSL setups).
    pub used_bytes: Option<u64>,
}

impl GpuReport {
    /// Free memory summed over every device.
    pub fn free_bytes(&self) -> u64 {
        self.devices.iter().map(|d| d.free_bytes).sum()
    }
}

impl Default for Gpus {
    fn default() -> Self {
        Self::new()
    }
}

impl Gpus {
    pub fn new() -> Gpus {
        Gpus {
            nvml: Nvml::init().map_err(|e| format!("NVML unavailable: {e}")),
        }
    }

    pub fn available(&self) -> bool {
        self.nvml.is_ok()
    }

    /// Free memory summed over every device, or `None` without NVML.
    pub fn free_bytes(&self) -> Option<u64> {
        self.available().then(|| self.snapshot().free_bytes())
    }

    /// Every device with its memory, temperature, utilisation and processes. A device that
    /// fails to answer is reported in `reason` and skipped; the others are still listed.
    pub fn snapshot(&self) -> GpuReport {
        let nvml = match &self.nvml {
            Ok(nvml) => nvml,
            Err(reason) => {
                return GpuReport {
                    driver_version: None,
                    cuda_version: None,
                    devices: Vec::new(),
                    reason: Some(reason.clone()),
                };
            }
        };
        let mut problems = Vec::new();
        let count = nvml.device_count().unwrap_or_else(|e| {
            problems.push(format!("device count: {e}"));
            0
        });
        let devices = (0..count)
            .filter_map(|index| match read_device(nvml, index) {
                Ok(device) => Some(device),
                Err(e) => {
                    problems.push(format!("device {index}: {e}"));
                    None
                }
            })
            .collect::<Vec<_>>();
        if count == 0 && problems.is_empty() {
            problems.push("driver loaded but no devices found".into());
        }
        GpuReport {
            driver_version: nvml.sys_driver_version().ok(),
            cuda_version: nvml
                .sys_cuda_driver_version()
                .ok()
                .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10)),
            devices,
            reason: (!problems.is_empty()).then(|| problems.join("; ")),
        }
    }
}

fn read_device(nvml: &Nvml, index: u32) -> Result<GpuDevice, nvml_wrapper::error::NvmlError> {
    let device = nvml.device_by_index(index)?;
    let memory = device.memory_info()?;
    let processes = device
        .running_compute_processes()
        .unwrap_or_default()
        .into_iter()
        .chain(device.running_graphics_processes().unwrap_or_default())
        .map(|p| GpuProcess {
            pid: p.pid,
            used_bytes: match p.used_gpu_memory {
                UsedGpuMemory::Used(bytes) => Some(bytes),
                UsedGpuMemory::Unavailable => None,
            },
        })
        .collect();
    Ok(GpuDevice {
        index,
        name: device.name()?,
        uuid: device.uuid()?,
        total_bytes: memory.total,
        used_bytes: memory.used,
        free_bytes: memory.free,
        temperature_c: device.temperature(TemperatureSensor::Gpu).ok(),
        utilization_pct: device.utilization_rates().ok().map(|u| u.gpu),
        power_mw: device.power_usage().ok(),
        processes,
    })
}

impl GpuReport {
    /// One line for `daarion doctor` and logs.
    pub fn summary(&self) -> String {
        if self.devices.is_empty() {
            return format!(
                "no GPU ({}); models run on the CPU",
                self.reason.as_deref().unwrap_or("none found")
            );
        }
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        let list: Vec<String> = self
            .devices
            .iter()
            .map(|d| {
                format!(
                    "#{} {} {:.1}/{:.1} GiB free",
                    d.index,
                    d.name,
                    gib(d.free_bytes),
                    gib(d.total_bytes)
                )
            })
            .collect();
        format!(
            "{} (driver {})",
            list.join(", "),
            self.driver_version.as_deref().unwrap_or("?")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_never_panics_and_explains_itself() {
        let gpus = Gpus::new();
        let report = gpus.snapshot();
        if report.devices.is_empty() {
            assert!(report.reason.is_some(), "{report:?}");
            assert!(report.summary().starts_with("no GPU"));
        } else {
            for d in &report.devices {
                assert!(d.total_bytes >= d.free_bytes);
                assert!(!d.name.is_empty());
            }
        }
        // Serialises for the admin API.
        serde_json::to_string(&report).unwrap();
    }
}

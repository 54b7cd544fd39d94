//! The supervisor's metrics. `unit` is one of the fixed unit names; `path` one of the configured
//! directories (`general.data_dir`, `general.models_dir`); `gpu` an NVML device index.

use std::sync::LazyLock;

use prometheus::{
    GaugeVec, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, register_gauge_vec,
    register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge,
    register_int_gauge_vec,
};

pub static RESTARTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_supervisor_restarts_total",
        "Unit restarts, by unit and cause (failure: exit, failed health or readiness; operator)",
        &["unit", "cause"]
    )
    .expect("metric registered once")
});

pub static UP: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_supervisor_unit_up",
        "1 while the unit is ready, else 0",
        &["unit"]
    )
    .expect("metric registered once")
});

pub static START_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "daarion_supervisor_start_seconds",
        "Time from spawning a unit to its first successful readiness probe",
        &["unit"],
        vec![0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]
    )
    .expect("metric registered once")
});

pub static HEALTH_EVENTS_PUBLISHED: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "daarion_supervisor_health_events_published_total",
        "ops.health events published on the bus"
    )
    .expect("metric registered once")
});

pub static HEALTH_EVENTS_DROPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_supervisor_health_events_dropped_total",
        "ops.health events not published, by reason (queue_full, bus_unavailable)",
        &["reason"]
    )
    .expect("metric registered once")
});

pub static DEPENDENCY_UP: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_dependency_up",
        "1 when the store answered the last probe (postgres, redis, nats), else 0",
        &["dependency"]
    )
    .expect("metric registered once")
});

pub static DISK_FREE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_disk_free_bytes",
        "Bytes available to the appliance on the filesystem of a configured directory",
        &["path"]
    )
    .expect("metric registered once")
});

pub static DISK_TOTAL: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_disk_total_bytes",
        "Size of the filesystem of a configured directory",
        &["path"]
    )
    .expect("metric registered once")
});

pub static GPU_PRESENT: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "daarion_gpu_present",
        "1 when the box has an NVIDIA GPU (on the PCI bus or through NVML), else 0"
    )
    .expect("metric registered once")
});

pub static GPU_UP: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "daarion_gpu_up",
        "1 when NVML answered the last poll with at least one device, else 0"
    )
    .expect("metric registered once")
});

pub static GPU_MEMORY_USED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_gpu_memory_used_bytes",
        "GPU memory in use, by GPU index",
        &["gpu"]
    )
    .expect("metric registered once")
});

pub static GPU_MEMORY_TOTAL: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_gpu_memory_total_bytes",
        "GPU memory in all, by GPU index",
        &["gpu"]
    )
    .expect("metric registered once")
});

pub static GPU_UTILIZATION: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "daarion_gpu_utilization_ratio",
        "Share of the last sample period the GPU was busy (0..1), by GPU index",
        &["gpu"]
    )
    .expect("metric registered once")
});

pub static GPU_TEMPERATURE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    register_int_gauge_vec!(
        "daarion_gpu_temperature_celsius",
        "GPU core temperature, by GPU index",
        &["gpu"]
    )
    .expect("metric registered once")
});

pub static GPU_POWER: LazyLock<GaugeVec> = LazyLock::new(|| {
    register_gauge_vec!(
        "daarion_gpu_power_watts",
        "GPU board power draw, by GPU index",
        &["gpu"]
    )
    .expect("metric registered once")
});

//! Which models are loaded, and what to evict to load another.
//!
//! All decisions happen under one (synchronous) lock that is never held across an await;
//! loading and stopping workers happen outside it, with the slot marked `Loading` or
//! `Unloading` meanwhile so nobody else plans with that memory. Rules:
//! - a model is loaded on the first request that needs it;
//! - a model with a request in flight (`active > 0`) or waiting (`queued > 0`) is never
//!   evicted; a request that needs room waits until such a model falls idle;
//! - among idle, unpinned models the cheapest to reload per byte freed goes first, then the
//!   least recently used;
//! - the sum of footprints of loaded, loading and unloading models never exceeds the budget: a
//!   model waiting for room is `reserved` and starts loading only after its victims stopped.
//!   A model that grows while loaded (`remeasure`) can take the sum past the budget; the next
//!   load then evicts for the grown figure, and the ledger keeps it for every later plan.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Notify;

use crate::ledger::{Ledger, Measured};
use crate::manifest::Manifest;
use crate::metrics::{EVICTIONS, LOAD_SECONDS, MEMORY_USED, QUEUE_WAIT, RELEASE_SECONDS};
use crate::worker::Worker;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("no model `{0}`")]
    UnknownModel(String),
    #[error("`{model}` has {queued} requests waiting; try again later")]
    QueueFull { model: String, queued: usize },
    #[error("`{model}` needs {need_mb} MiB but the budget is {budget_mb} MiB")]
    TooLarge {
        model: String,
        need_mb: u64,
        budget_mb: u64,
    },
    #[error("`{model}` could not be loaded: {reason}")]
    LoadFailed { model: String, reason: String },
    #[error("`{0}` is serving requests; try again when it is idle")]
    Busy(String),
}

#[derive(Debug)]
enum Status {
    Unloaded,
    /// Room is being made (victims stopping): the memory is booked for planning but not used
    /// yet; the worker starts only once the victims are gone.
    Reserved,
    Loading,
    Loaded(Arc<Worker>),
    Unloading,
}

#[derive(Debug)]
struct Slot {
    manifest: Manifest,
    status: Status,
    active: usize,
    queued: usize,
    pinned: bool,
    last_used: Option<Instant>,
    footprint: u64,
    measured: Option<Measured>,
    last_error: Option<String>,
    /// Loads since the swapper started: the first is cold (files not yet in the page cache).
    loads: u32,
}

/// Stops a worker and records how long its memory took to come back.
async fn stop_timed(model: &str, worker: &Worker) {
    let started = Instant::now();
    worker.stop().await;
    RELEASE_SECONDS
        .with_label_values(&[model])
        .observe(started.elapsed().as_secs_f64());
}

impl Slot {
    fn holds_memory(&self) -> bool {
        !matches!(self.status, Status::Unloaded)
    }

    /// The expected reload time: as measured, else a millisecond per megabyte.
    fn reload_ms(&self) -> f64 {
        self.measured
            .map_or(self.footprint as f64 / 1e6, |m| m.load_ms as f64)
    }
}

/// An idle model that could be evicted to make room.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub footprint: u64,
    /// What bringing it back would cost.
    pub reload_ms: f64,
    /// Larger is more recent; only the order matters.
    pub last_used: u64,
}

impl Candidate {
    /// Expected reload time per byte freed.
    pub fn cost_per_byte(&self) -> f64 {
        self.reload_ms / self.footprint.max(1) as f64
    }
}

/// The eviction policy: which candidates to unload so `need` more bytes fit under `budget` with
/// `used` already taken, or `None` when even all of them would not make room (then the request
/// waits for a busy model to fall idle). Least recently used first; among equally recent ones
/// (never used since loading), the cheapest to reload per byte freed.
///
/// Why recency first: on the policy benchmark's mixed, bursty workload, ordering by reload cost
/// per byte first spent 1.75× as long loading models as this, GreedyDual-Size 1.27×
/// (`cargo bench -p daarion-swapper --bench policy`). A pure function, so the benchmark replays
/// exactly this code.
pub fn choose_victims(
    candidates: &[Candidate],
    mut used: u64,
    need: u64,
    budget: u64,
) -> Option<Vec<usize>> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&candidates[a], &candidates[b]);
        a.last_used
            .cmp(&b.last_used)
            .then(a.cost_per_byte().total_cmp(&b.cost_per_byte()))
    });
    let mut victims = Vec::new();
    for i in order {
        if used + need <= budget {
            break;
        }
        used -= candidates[i].footprint.min(used);
        victims.push(i);
    }
    (used + need <= budget).then_some(victims)
}

/// One model's line in `/v1/swapper/status`.
#[derive(Debug, Serialize)]
pub struct SlotStatus {
    pub id: String,
    pub kind: crate::manifest::Kind,
    pub state: &'static str,
    pub pid: Option<u32>,
    pub footprint_bytes: u64,
    pub measured: bool,
    /// How the footprint was measured; `None` while it is the manifest's estimate.
    pub footprint_source: Option<crate::budget::FootprintSource>,
    pub active: usize,
    pub queued: usize,
    pub pinned: bool,
    pub idle_secs: Option<u64>,
    pub last_load_ms: Option<u64>,
    pub last_error: Option<String>,
}

pub struct Scheduler {
    slots: Mutex<BTreeMap<String, Slot>>,
    ledger: Mutex<Ledger>,
    changed: Notify,
    pub budget: u64,
    queue_limit: usize,
    workers: Workers,
    /// The reference for ordering `last_used` instants.
    epoch: Instant,
    /// Set when VRAM is what is budgeted: footprints are then measured on the GPU.
    vram: Option<daarion_gpu::Gpus>,
    loads: LoadWindows,
}

/// Growth below this is noise (allocator slack), not worth a ledger write.
const GROWTH_NOISE: u64 = 4 * 1024 * 1024;

/// Tells whether a load had the GPUs to itself: only then is the drop in free VRAM across it
/// that model's footprint. Loads in flight, and a count of load starts and ends.
#[derive(Debug, Default)]
struct LoadWindows(Mutex<(usize, u64)>);

impl LoadWindows {
    /// Starts a load; `Some` when no other is in flight.
    fn begin(&self) -> Option<u64> {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let alone = w.0 == 0;
        w.0 += 1;
        w.1 += 1;
        alone.then_some(w.1)
    }

    /// Ends the load `begin` answered; true when no other load started or ended meanwhile.
    fn end(&self, began: Option<u64>) -> bool {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let alone = began == Some(w.1);
        w.0 -= 1;
        w.1 += 1;
        alone
    }
}

/// How workers start: the binary of each backend (`None` when it is not installed: its models
/// then fail to load with a message saying so, and the rest keep working), where model files
/// are, and the CPU threads each gets.
#[derive(Debug, Clone)]
pub struct Workers {
    pub llama: PathBuf,
    pub whisper: Option<PathBuf>,
    pub tts: Option<PathBuf>,
    /// stable-diffusion.cpp, for image models.
    pub sd: Option<PathBuf>,
    pub models_dir: PathBuf,
    pub threads: u32,
}

impl Workers {
    fn for_kind(&self, kind: crate::manifest::Kind) -> Result<&std::path::Path, String> {
        match kind.backend() {
            crate::manifest::WHISPER_CPP => self.whisper.as_deref().ok_or_else(|| {
                "the whisper.cpp worker is not installed (models.whisper_worker)".to_owned()
            }),
            crate::manifest::ESPEAK_NG => self.tts.as_deref().ok_or_else(|| {
                "the text-to-speech worker is not installed (models.tts_worker)".to_owned()
            }),
            crate::manifest::STABLE_DIFFUSION_CPP => self
                .sd
                .as_deref()
                .ok_or_else(|| "the image worker is not installed (models.sd_worker)".to_owned()),
            _ => Ok(&self.llama),
        }
    }
}

/// A model held for one request; dropping it lets the model be evicted again.
pub struct Lease {
    pub worker: Arc<Worker>,
    model: String,
    scheduler: Arc<Scheduler>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut slots = self.scheduler.lock();
        if let Some(slot) = slots.get_mut(&self.model) {
            slot.active = slot.active.saturating_sub(1);
            slot.last_used = Some(Instant::now());
        }
        drop(slots);
        self.scheduler.changed.notify_waiters();
    }
}

struct QueuedGuard<'a> {
    scheduler: &'a Scheduler,
    model: String,
}

impl Drop for QueuedGuard<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.scheduler.lock().get_mut(&self.model) {
            slot.queued = slot.queued.saturating_sub(1);
        }
        self.scheduler.changed.notify_waiters();
    }
}

enum Plan {
    Wait,
    Load { evict: Vec<(String, Arc<Worker>)> },
}

impl Scheduler {
    pub fn new(
        manifests: Vec<Manifest>,
        ledger: Ledger,
        budget: u64,
        queue_limit: usize,
        workers: Workers,
        vram: Option<daarion_gpu::Gpus>,
    ) -> Arc<Scheduler> {
        let slots = manifests
            .into_iter()
            .map(|manifest| {
                let measured = ledger.get(&manifest.id);
                let footprint = measured
                    .map(|m| m.footprint_bytes)
                    .unwrap_or(manifest.estimate_mb * 1024 * 1024);
                let slot = Slot {
                    pinned: manifest.pin,
                    status: Status::Unloaded,
                    active: 0,
                    queued: 0,
                    last_used: None,
                    footprint,
                    measured,
                    last_error: None,
                    loads: 0,
                    manifest,
                };
                (slot.manifest.id.clone(), slot)
            })
            .collect();
        Arc::new(Scheduler {
            slots: Mutex::new(slots),
            ledger: Mutex::new(ledger),
            changed: Notify::new(),
            budget,
            queue_limit,
            workers,
            epoch: Instant::now(),
            vram,
            loads: LoadWindows::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn manifest(&self, model: &str) -> Option<Manifest> {
        self.lock().get(model).map(|s| s.manifest.clone())
    }

    pub fn manifests(&self) -> Vec<Manifest> {
        self.lock().values().map(|s| s.manifest.clone()).collect()
    }

    fn used(slots: &BTreeMap<String, Slot>) -> u64 {
        slots
            .values()
            .filter(|s| s.holds_memory())
            .map(|s| s.footprint)
            .sum()
    }

    /// Waits for `model` to be loaded (loading it, and evicting others, as needed) and holds it.
    pub async fn acquire(self: &Arc<Self>, model: &str) -> Result<Lease, ScheduleError> {
        let started = Instant::now();
        {
            let mut slots = self.lock();
            let slot = slots
                .get_mut(model)
                .ok_or_else(|| ScheduleError::UnknownModel(model.to_owned()))?;
            if slot.queued >= self.queue_limit {
                return Err(ScheduleError::QueueFull {
                    model: model.to_owned(),
                    queued: slot.queued,
                });
            }
            slot.queued += 1;
        }
        let _queued = QueuedGuard {
            scheduler: self,
            model: model.to_owned(),
        };
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let plan = {
                let mut slots = self.lock();
                let used = Self::used(&slots);
                let slot = slots.get_mut(model).expect("slots are never removed");
                match &slot.status {
                    Status::Loaded(worker) if worker.alive() => {
                        slot.active += 1;
                        slot.last_used = Some(Instant::now());
                        let worker = worker.clone();
                        QUEUE_WAIT
                            .with_label_values(&[model])
                            .observe(started.elapsed().as_secs_f64());
                        return Ok(Lease {
                            worker,
                            model: model.to_owned(),
                            scheduler: self.clone(),
                        });
                    }
                    Status::Loaded(_) => {
                        // The worker died (killed, crashed): forget it and load again.
                        tracing::warn!(model, "worker gone; reloading");
                        EVICTIONS.with_label_values(&[model, "crashed"]).inc();
                        slot.status = Status::Unloaded;
                        continue;
                    }
                    Status::Reserved | Status::Loading | Status::Unloading => Plan::Wait,
                    Status::Unloaded => {
                        let need = slot.footprint;
                        if need > self.budget {
                            return Err(ScheduleError::TooLarge {
                                model: model.to_owned(),
                                need_mb: need / (1024 * 1024),
                                budget_mb: self.budget / (1024 * 1024),
                            });
                        }
                        self.plan_room(&mut slots, model, used, need)
                    }
                }
            };
            match plan {
                Plan::Wait => notified.await,
                Plan::Load { evict } => {
                    for (victim, worker) in evict {
                        tracing::info!(victim = %victim, for_model = model, "evicting to make room");
                        EVICTIONS.with_label_values(&[&victim, "budget"]).inc();
                        stop_timed(&victim, &worker).await;
                        if let Some(slot) = self.lock().get_mut(&victim) {
                            slot.status = Status::Unloaded;
                        }
                    }
                    self.load(model).await?;
                }
            }
        }
    }

    /// Under the lock: pick victims so `need` fits, or decide to wait.
    fn plan_room(
        &self,
        slots: &mut BTreeMap<String, Slot>,
        model: &str,
        used: u64,
        need: u64,
    ) -> Plan {
        let idle: Vec<(&String, &Slot)> = slots
            .iter()
            .filter(|(id, s)| {
                id.as_str() != model
                    && matches!(s.status, Status::Loaded(_))
                    && s.active == 0
                    && s.queued == 0
                    && !s.pinned
            })
            .collect();
        let candidates: Vec<Candidate> = idle
            .iter()
            .map(|(_, slot)| Candidate {
                footprint: slot.footprint,
                reload_ms: slot.reload_ms(),
                // Never used sorts first; the order is all that matters.
                last_used: slot.last_used.map_or(0, |t| {
                    t.saturating_duration_since(self.epoch).as_nanos() as u64 + 1
                }),
            })
            .collect();
        // Room frees up only when a busy model falls idle.
        let Some(chosen) = choose_victims(&candidates, used, need, self.budget) else {
            return Plan::Wait;
        };
        let victims: Vec<String> = chosen.into_iter().map(|i| idle[i].0.clone()).collect();
        let evict = victims
            .into_iter()
            .filter_map(|id| {
                let slot = slots.get_mut(&id)?;
                match std::mem::replace(&mut slot.status, Status::Unloading) {
                    Status::Loaded(worker) => Some((id, worker)),
                    other => {
                        slot.status = other;
                        None
                    }
                }
            })
            .collect();
        if let Some(slot) = slots.get_mut(model) {
            slot.status = Status::Reserved;
        }
        Plan::Load { evict }
    }

    async fn load(&self, model: &str) -> Result<(), ScheduleError> {
        let manifest = {
            let mut slots = self.lock();
            let slot = slots.get_mut(model).expect("slots are never removed");
            // The victims are stopped: the booked memory is now really taken.
            slot.status = Status::Loading;
            MEMORY_USED.set(Self::used(&slots) as i64);
            slots[model].manifest.clone()
        };
        let started = Instant::now();
        let window = self.loads.begin();
        let free_before = window.and(self.vram.as_ref()).and_then(|g| g.free_bytes());
        let missing = manifest
            .files(&self.workers.models_dir)
            .into_iter()
            .find(|file| !file.path.is_file());
        let result = match missing {
            Some(file) => Err(format!(
                "model file {} is missing (daarion models pull)",
                file.path.display()
            )),
            None => match self.workers.for_kind(manifest.kind) {
                Ok(exe) => {
                    Worker::spawn(
                        exe,
                        &manifest,
                        &self.workers.models_dir,
                        self.workers.threads,
                        manifest.gpu_layers(self.vram.is_some()),
                    )
                    .await
                }
                Err(e) => Err(e),
            },
        };
        let elapsed = started.elapsed();
        let alone = self.loads.end(window);
        // One NVML look after a load gives both the free memory and the worker's own figure,
        // taken before the slots' lock so that no request waits on the driver.
        let after = match (&result, &self.vram) {
            (Ok(_), Some(gpus)) => Some(gpus.snapshot()),
            _ => None,
        };
        let free_drop = free_before
            .filter(|_| alone)
            .zip(after.as_ref().map(|r| r.free_bytes()))
            .map(|(before, after)| before.saturating_sub(after));
        let process_vram = match (&result, &after) {
            (Ok(worker), Some(report)) => crate::budget::process_vram(report, worker.pid),
            _ => 0,
        };
        let outcome = {
            let mut slots = self.lock();
            let slot = slots.get_mut(model).expect("slots are never removed");
            match result {
                Ok(worker) => {
                    let (footprint, source) =
                        crate::budget::footprint(process_vram, free_drop, worker.rss_bytes);
                    let measured = Measured {
                        footprint_bytes: footprint.max(1),
                        load_ms: elapsed.as_millis() as u64,
                        source: Some(source),
                    };
                    tracing::info!(
                        model,
                        pid = worker.pid,
                        ms = measured.load_ms,
                        footprint_mb = measured.footprint_bytes / (1024 * 1024),
                        ?source,
                        "model loaded"
                    );
                    slot.footprint = measured.footprint_bytes;
                    slot.measured = Some(measured);
                    slot.last_error = None;
                    slot.status = Status::Loaded(Arc::new(worker));
                    self.ledger
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .record(model, measured);
                    let start = if slot.loads == 0 { "cold" } else { "warm" };
                    slot.loads += 1;
                    LOAD_SECONDS
                        .with_label_values(&[model, start])
                        .observe(elapsed.as_secs_f64());
                    Ok(())
                }
                Err(reason) => {
                    tracing::error!(model, %reason, "model load failed");
                    slot.status = Status::Unloaded;
                    slot.last_error = Some(reason.clone());
                    Err(ScheduleError::LoadFailed {
                        model: model.to_owned(),
                        reason,
                    })
                }
            }
        };
        MEMORY_USED.set(Self::used(&self.lock()) as i64);
        self.changed.notify_waiters();
        outcome
    }

    /// Unloads an idle model now (operator request). A busy one is refused.
    pub async fn unload(&self, model: &str, reason: &str) -> Result<bool, ScheduleError> {
        let worker = {
            let mut slots = self.lock();
            let slot = slots
                .get_mut(model)
                .ok_or_else(|| ScheduleError::UnknownModel(model.to_owned()))?;
            if slot.active > 0 {
                return Err(ScheduleError::Busy(model.to_owned()));
            }
            match std::mem::replace(&mut slot.status, Status::Unloading) {
                Status::Loaded(worker) => worker,
                other => {
                    slot.status = other;
                    return Ok(false);
                }
            }
        };
        EVICTIONS.with_label_values(&[model, reason]).inc();
        stop_timed(model, &worker).await;
        if let Some(slot) = self.lock().get_mut(model) {
            slot.status = Status::Unloaded;
        }
        MEMORY_USED.set(Self::used(&self.lock()) as i64);
        self.changed.notify_waiters();
        Ok(true)
    }

    pub fn set_pinned(&self, model: &str, pinned: bool) -> Result<(), ScheduleError> {
        let mut slots = self.lock();
        let slot = slots
            .get_mut(model)
            .ok_or_else(|| ScheduleError::UnknownModel(model.to_owned()))?;
        slot.pinned = pinned;
        Ok(())
    }

    /// Raises each loaded model's footprint to what its worker holds now, when that is more.
    /// Memory grows after a load: stable-diffusion.cpp reads its weights at the first picture
    /// and sizes its compute buffers by the picture's size, llama.cpp allocates the projector's
    /// buffers at the first image. Eviction must plan with the high-water mark, so it is kept
    /// (and persisted): on the CPU the kernel's own peak (`VmHWM`), on a GPU what NVML reports
    /// at each look. A footprint read from the free-VRAM drop cannot be looked at again.
    pub fn remeasure(&self) {
        use crate::budget::FootprintSource;
        let loaded: Vec<(String, u32, FootprintSource)> = self
            .lock()
            .iter()
            .filter_map(
                |(id, s)| match (&s.status, s.measured.and_then(|m| m.source)) {
                    (Status::Loaded(w), Some(source)) if source != FootprintSource::GpuFree => {
                        Some((id.clone(), w.pid, source))
                    }
                    _ => None,
                },
            )
            .collect();
        // One NVML look for every model on the GPU.
        let report = loaded
            .iter()
            .any(|(_, _, source)| *source == FootprintSource::GpuProcess)
            .then(|| self.vram.as_ref().map(|g| g.snapshot()))
            .flatten();
        for (model, pid, source) in loaded {
            let now = match (source, &report) {
                (FootprintSource::GpuProcess, Some(report)) => {
                    crate::budget::process_vram(report, pid)
                }
                _ => crate::worker::peak_rss_bytes(pid),
            };
            let mut slots = self.lock();
            let Some(slot) = slots.get_mut(&model) else {
                continue;
            };
            // The same worker still, and grown by more than noise.
            let same = matches!(&slot.status, Status::Loaded(w) if w.pid == pid);
            if !same || now <= slot.footprint + GROWTH_NOISE {
                continue;
            }
            tracing::info!(
                model,
                from_mb = slot.footprint / (1024 * 1024),
                to_mb = now / (1024 * 1024),
                "footprint grew"
            );
            slot.footprint = now;
            if let Some(measured) = slot.measured.as_mut() {
                measured.footprint_bytes = now;
                self.ledger
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(&model, *measured);
            }
            MEMORY_USED.set(Self::used(&slots) as i64);
        }
    }

    /// Unloads models idle past their TTL; runs until `shutdown`, then stops every worker.
    pub async fn reaper(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            self.remeasure();
            let expired: Vec<String> = self
                .lock()
                .iter()
                .filter(|(_, s)| {
                    matches!(s.status, Status::Loaded(_))
                        && s.active == 0
                        && s.queued == 0
                        && !s.pinned
                        && s.last_used.is_some_and(|t| {
                            t.elapsed() > Duration::from_secs(s.manifest.idle_ttl_secs)
                        })
                })
                .map(|(id, _)| id.clone())
                .collect();
            for model in expired {
                tracing::info!(model = %model, "idle past its TTL; unloading");
                let _ = self.unload(&model, "idle").await;
            }
        }
        let loaded: Vec<String> = self.lock().keys().cloned().collect();
        for model in loaded {
            let _ = self.unload(&model, "shutdown").await;
        }
    }

    pub fn status(&self) -> Vec<SlotStatus> {
        self.lock()
            .values()
            .map(|s| SlotStatus {
                id: s.manifest.id.clone(),
                kind: s.manifest.kind,
                state: match s.status {
                    Status::Unloaded => "unloaded",
                    Status::Reserved => "reserved",
                    Status::Loading => "loading",
                    Status::Loaded(_) => "loaded",
                    Status::Unloading => "unloading",
                },
                pid: match &s.status {
                    Status::Loaded(w) => Some(w.pid),
                    _ => None,
                },
                footprint_bytes: s.footprint,
                measured: s.measured.is_some(),
                footprint_source: s.measured.and_then(|m| m.source),
                active: s.active,
                queued: s.queued,
                pinned: s.pinned,
                idle_secs: s.last_used.map(|t| t.elapsed().as_secs()),
                last_load_ms: s.measured.map(|m| m.load_ms),
                last_error: s.last_error.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod load_window_tests {
    use super::LoadWindows;

    #[test]
    fn a_load_is_alone_unless_another_starts_or_ends_during_it() {
        let w = LoadWindows::default();
        let a = w.begin();
        assert!(w.end(a), "a load on its own");
        let a = w.begin();
        let b = w.begin();
        assert!(b.is_none(), "another was in flight when it began");
        assert!(!w.end(a), "another began during it");
        assert!(!w.end(b));
        let a = w.begin();
        let b = w.begin();
        assert!(!w.end(b));
        assert!(!w.end(a), "another ended during it");
        let c = w.begin();
        assert!(w.end(c), "alone again once the others are done");
    }
}

#[cfg(test)]
mod policy_tests {
    use super::{Candidate, choose_victims};

    const GB: u64 = 1 << 30;

    fn c(gb: u64, reload_ms: f64, last_used: u64) -> Candidate {
        Candidate {
            footprint: gb * GB,
            reload_ms,
            last_used,
        }
    }

    #[test]
    fn least_recently_used_first_then_cheapest_to_reload() {
        let candidates = [
            c(2, 8000.0, 1),
            c(6, 2400.0, 5),
            c(1, 500.0, 2),
            c(1, 500.0, 3),
        ];
        assert_eq!(
            choose_victims(&candidates, 10 * GB, 0, 10 * GB),
            Some(vec![])
        );
        assert_eq!(
            choose_victims(&candidates, 10 * GB, GB, 10 * GB),
            Some(vec![0])
        );
        assert_eq!(
            choose_victims(&candidates, 10 * GB, 4 * GB, 10 * GB),
            Some(vec![0, 2, 3])
        );
        // Never used since loading (equal recency): the cheaper per byte goes first.
        let fresh = [c(2, 8000.0, 0), c(2, 1000.0, 0)];
        assert_eq!(choose_victims(&fresh, 4 * GB, GB, 4 * GB), Some(vec![1]));
        // Not enough idle memory: wait.
        assert_eq!(
            choose_victims(&candidates[..1], 10 * GB, 9 * GB, 10 * GB),
            None
        );
    }
}

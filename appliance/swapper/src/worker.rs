//! One worker process per loaded model, spoken to in JSON lines over its stdin and stdout.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use daarion_worker_io::{Event, Ready, Request, codes};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::manifest::{EDGE_TTS, Kind, Manifest};

const LOAD_TIMEOUT: Duration = Duration::from_secs(300);

type Pending = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Event>>>>;

pub struct Worker {
    pub pid: u32,
    /// What the worker reported once loaded (context size, embedding width, model bytes).
    pub ready: Ready,
    /// Resident memory once loaded: the footprint the ledger records on CPU.
    pub rss_bytes: u64,
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    child: tokio::sync::Mutex<Child>,
    pending: Pending,
    next_id: AtomicU64,
    alive: Arc<AtomicBool>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Worker(pid {})", self.pid)
    }
}

/// A memory figure of `/proc/PID/status` (`VmRSS`, `VmHWM`…) in bytes; 0 when unreadable.
fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn rss_bytes(pid: u32) -> u64 {
    proc_status_bytes(pid, "VmRSS")
}

/// The most the process has held resident since it started (the kernel's high-water mark), so
/// that a peak between two looks is not missed.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    proc_status_bytes(pid, "VmHWM")
}

/// An event line and the request it answers. A line that names a request but is no event
/// this swapper knows becomes that request's error, so the request ends instead of waiting
/// forever; a line naming no request is nobody's and is dropped.
fn read_event(line: &str) -> Option<(u64, Event)> {
    match serde_json::from_str::<Event>(line) {
        Ok(event) => Some((event.id()?, event)),
        Err(e) => {
            let id = daarion_worker_io::id_of(line)?;
            Some((
                id,
                Event::error(id, codes::PROTOCOL, format!("unreadable worker event: {e}")),
            ))
        }
    }
}

impl Worker {
    /// Starts the worker and waits until it has loaded the model.
    pub async fn spawn(
        exe: &Path,
        manifest: &Manifest,
        models_dir: &Path,
        threads: u32,
        gpu_layers: u32,
    ) -> Result<Worker, String> {
        let mode = match manifest.kind {
            Kind::Chat | Kind::Vision => "chat",
            Kind::Embedding => "embed",
            Kind::Stt => "stt",
            Kind::Tts => "tts",
            Kind::Image => "image",
        };
        let mut command = Command::new(exe);
        // The model's own file first as `--model`; every other file by its role
        // (`--mmproj`, `--vae`, `--clip-l`…). An online voice's model is its endpoint.
        for file in manifest.files(models_dir) {
            let flag = match file.role.as_str() {
                "model" => "--model".to_owned(),
                role => format!("--{}", role.replace('_', "-")),
            };
            command.arg(flag).arg(file.path);
        }
        if manifest.online() {
            command
                .args(["--engine", EDGE_TTS])
                .args(["--model", manifest.edge_endpoint()]);
        }
        command
            .args(["--mode", mode])
            .args(["--ctx", &manifest.context.to_string()])
            .args(["--gpu-layers", &gpu_layers.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if threads > 0 {
            command.args(["--threads", &threads.to_string()]);
        }
        if let Some(voice) = &manifest.voice {
            command.args(["--voice", voice]);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let pid = child.id().unwrap_or(0);
        let stdout = child.stdout.take().ok_or("no worker stdout")?;
        let stderr = child.stderr.take().ok_or("no worker stderr")?;
        let model_id = manifest.id.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "daarion::worker", model = %model_id, "{line}");
            }
        });
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(LOAD_TIMEOUT, lines.next_line())
            .await
            .map_err(|_| format!("the model did not load within {LOAD_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        let first: Event = match first {
            Some(line) => {
                serde_json::from_str(&line).map_err(|e| format!("bad worker line: {e}"))?
            }
            None => {
                let status = child.wait().await.map_err(|e| e.to_string())?;
                return Err(format!("the worker exited while loading ({status})"));
            }
        };
        let ready = match first {
            Event::Ready(ready) => *ready,
            other => {
                let _ = child.kill().await;
                return Err(match other {
                    Event::Failed { message } | Event::Error { message, .. } => message,
                    _ => "the worker failed to load the model".to_owned(),
                });
            }
        };
        let pending: Pending = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        {
            let (pending, alive) = (pending.clone(), alive.clone());
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    let Some((id, event)) = read_event(&line) else {
                        continue;
                    };
                    let last = event.is_last();
                    let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(tx) = pending.get(&id) {
                        let _ = tx.send(event);
                    }
                    if last {
                        pending.remove(&id);
                    }
                }
                // The process is gone: every request in flight gets a clean error.
                alive.store(false, Ordering::SeqCst);
                let mut pending = pending.lock().unwrap_or_else(|e| e.into_inner());
                for (id, tx) in pending.drain() {
                    let _ = tx.send(Event::error(
                        id,
                        codes::WORKER_EXITED,
                        "the model worker stopped while answering; the next request reloads it",
                    ));
                }
            });
        }
        Ok(Worker {
            pid,
            rss_bytes: rss_bytes(pid),
            ready,
            stdin: tokio::sync::Mutex::new(child.stdin.take()),
            child: tokio::sync::Mutex::new(child),
            pending,
            next_id: AtomicU64::new(1),
            alive,
        })
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Sends one request; its events arrive on the receiver, the last one is not a `token`.
    pub async fn request(
        &self,
        mut body: Request,
    ) -> Result<(u64, mpsc::UnboundedReceiver<Event>), String> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        body.set_id(id);
        let (tx, rx) = mpsc::unbounded_channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        if let Err(e) = self.send(&body).await {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return Err(e);
        }
        Ok((id, rx))
    }

    /// Stops a generation between two tokens (the client went away).
    pub async fn cancel(&self, id: u64) {
        let _ = self.send(&Request::Cancel { id }).await;
    }

    async fn send(&self, body: &Request) -> Result<(), String> {
        let line = serde_json::to_string(body)
            .map_err(|e| format!("the request cannot be written: {e}"))?
            + "\n";
        let mut stdin = self.stdin.lock().await;
        let pipe = stdin.as_mut().ok_or("the worker is stopping")?;
        pipe.write_all(line.as_bytes())
            .await
            .map_err(|e| format!("the worker is gone: {e}"))?;
        pipe.flush()
            .await
            .map_err(|e| format!("the worker is gone: {e}"))
    }

    /// Closes stdin (the worker exits by itself), then kills it if it lingers.
    pub async fn stop(&self) {
        self.stdin.lock().await.take();
        let mut child = self.child.lock().await;
        if tokio::time::timeout(Duration::from_secs(5), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

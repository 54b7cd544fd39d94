//! Downloads started from the admin API (`POST /v1/swapper/models/{id}/pull`), run in the
//! background with their progress kept for `GET /v1/swapper/status`: the admin UI shows it. The
//! download itself is `download::download` (resumable, checksum-verified), the same as the CLI's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::manifest::Manifest;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PullStatus {
    /// `running`, `done` or `failed`.
    pub state: &'static str,
    pub done_bytes: u64,
    pub total_bytes: Option<u64>,
    pub error: Option<String>,
    pub sha256: Option<String>,
}

#[derive(Clone, Default)]
pub struct Pulls(Arc<Mutex<BTreeMap<String, PullStatus>>>);

impl Pulls {
    fn set(&self, id: &str, status: PullStatus) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), status);
    }

    pub fn snapshot(&self) -> BTreeMap<String, PullStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts downloading `manifest`'s file unless a download of it is already running; returns
    /// whether one was started.
    pub fn start(&self, manifest: Manifest, models_dir: PathBuf) -> bool {
        {
            let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
            if all.get(&manifest.id).is_some_and(|p| p.state == "running") {
                return false;
            }
            all.insert(
                manifest.id.clone(),
                PullStatus {
                    state: "running",
                    done_bytes: 0,
                    total_bytes: manifest.size,
                    error: None,
                    sha256: None,
                },
            );
        }
        let pulls = self.clone();
        tokio::spawn(async move {
            let id = manifest.id.clone();
            let progress = pulls.clone();
            let result = crate::download::download(&manifest, &models_dir, |p| {
                progress.set(
                    &id,
                    PullStatus {
                        state: "running",
                        done_bytes: p.done,
                        total_bytes: p.total,
                        error: None,
                        sha256: None,
                    },
                );
            })
            .await;
            let last = pulls.snapshot().get(&id).cloned();
            let (done, total) = last.map_or((0, None), |l| (l.done_bytes, l.total_bytes));
            match result {
                Ok(pulled) => {
                    // Every file the model needs; the model's own comes first.
                    let bytes = pulled.iter().map(|p| p.bytes).sum();
                    let verified = pulled.iter().all(|p| p.verified);
                    tracing::info!(model = %id, files = pulled.len(), bytes, verified, "model pulled");
                    pulls.set(
                        &id,
                        PullStatus {
                            state: "done",
                            done_bytes: bytes,
                            total_bytes: Some(bytes),
                            error: None,
                            sha256: pulled.into_iter().next().map(|p| p.sha256),
                        },
                    );
                }
                Err(e) => {
                    tracing::warn!(model = %id, error = %e, "model pull failed");
                    pulls.set(
                        &id,
                        PullStatus {
                            state: "failed",
                            done_bytes: done,
                            total_bytes: total,
                            error: Some(e.to_string()),
                            sha256: None,
                        },
                    );
                }
            }
        });
        true
    }
}

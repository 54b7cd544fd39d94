//! Measured footprints and load times, persisted so that the next start plans with what was
//! measured instead of the manifest's estimate.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measured {
    pub footprint_bytes: u64,
    pub load_ms: u64,
    /// `None` in ledgers written before the source was recorded.
    #[serde(default)]
    pub source: Option<crate::budget::FootprintSource>,
}

#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    entries: BTreeMap<String, Measured>,
}

impl Ledger {
    /// Reads `path`; a missing or unreadable file starts empty (estimates are used).
    pub fn open(path: PathBuf) -> Ledger {
        let entries = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        Ledger { path, entries }
    }

    pub fn get(&self, model: &str) -> Option<Measured> {
        self.entries.get(model).copied()
    }

    /// Records a measurement and writes the file (atomically: temp file, then rename).
    pub fn record(&mut self, model: &str, measured: Measured) {
        self.entries.insert(model.to_owned(), measured);
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = self.path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(&self.entries)?)?;
            std::fs::rename(&tmp, &self.path)
        };
        if let Err(e) = write() {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot persist the model ledger");
        }
    }
}

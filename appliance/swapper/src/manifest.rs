//! Model manifests: one TOML file per model in `models.manifests_dir`.
//!
//! ```toml
//! id = "smollm2"
//! kind = "chat"            # chat | embedding
//! backend = "llama.cpp"
//! file = "smollm2-135m-instruct-q4_1.gguf"   # relative to general.models_dir, or absolute
//! sha256 = "…"             # optional; `daarion models verify` checks it
//! context = 2048
//! gpu_layers = 0
//! estimate_mb = 300        # until a load measures the real footprint
//! pin = false
//! priority = 0
//! idle_ttl_secs = 600
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Chat,
    Embedding,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub kind: Kind,
    #[serde(default = "llama_cpp")]
    pub backend: String,
    pub file: PathBuf,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default = "context")]
    pub context: u32,
    #[serde(default)]
    pub gpu_layers: u32,
    pub estimate_mb: u64,
    #[serde(default)]
    pub pin: bool,
    #[serde(default)]
    pub priority: i32,
    #[serde(default = "ttl")]
    pub idle_ttl_secs: u64,
}

fn llama_cpp() -> String {
    "llama.cpp".into()
}
fn context() -> u32 {
    2048
}
fn ttl() -> u64 {
    600
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Invalid(PathBuf, String),
}

impl Manifest {
    /// The model file, resolved against the models directory.
    pub fn path(&self, models_dir: &Path) -> PathBuf {
        if self.file.is_absolute() {
            self.file.clone()
        } else {
            models_dir.join(&self.file)
        }
    }
}

/// Every `*.toml` in `dir`, sorted by id; a missing directory means no models.
pub fn load_all(dir: &Path) -> Result<Vec<Manifest>, ManifestError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ManifestError::Read(dir.to_owned(), e)),
    };
    let mut manifests: Vec<Manifest> = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| ManifestError::Read(path.clone(), e))?;
        let manifest: Manifest = toml::from_str(&text)
            .map_err(|e| ManifestError::Invalid(path.clone(), e.to_string()))?;
        let valid_id = !manifest.id.is_empty()
            && manifest.id.len() <= 64
            && manifest
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !valid_id {
            return Err(ManifestError::Invalid(
                path,
                "id: letters, digits, '.', '_' and '-'".into(),
            ));
        }
        if manifest.backend != "llama.cpp" {
            return Err(ManifestError::Invalid(
                path,
                format!(
                    "backend `{}` is not in this build (llama.cpp)",
                    manifest.backend
                ),
            ));
        }
        if manifests.iter().any(|m| m.id == manifest.id) {
            return Err(ManifestError::Invalid(
                path,
                format!("duplicate id `{}`", manifest.id),
            ));
        }
        manifests.push(manifest);
    }
    manifests.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(manifests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_validates_and_resolves() {
        let dir = std::env::temp_dir().join(format!("daarion-manifests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.toml"),
            "id = \"smollm2\"\nkind = \"chat\"\nfile = \"m.gguf\"\nestimate_mb = 300\n",
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let all = load_all(&dir).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].context, 2048);
        assert_eq!(
            all[0].path(Path::new("/models")),
            PathBuf::from("/models/m.gguf")
        );
        std::fs::write(
            dir.join("b.toml"),
            "id = \"x\"\nkind = \"vision\"\nfile = \"v\"\nestimate_mb = 1\n",
        )
        .unwrap();
        let err = load_all(&dir).unwrap_err().to_string();
        assert!(err.contains("b.toml"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            load_all(Path::new("/nonexistent/models"))
                .unwrap()
                .is_empty()
        );
    }
}

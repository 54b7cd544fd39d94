//! Model manifests: one TOML file per model in `models.manifests_dir`.
//!
//! ```toml
//! id = "smollm2"
//! kind = "chat"            # chat | vision | embedding | stt | tts
//! backend = "llama.cpp"     # the default for chat and embedding; stt runs on "whisper.cpp",
//!                           # tts on "espeak-ng" (`file` is then the engine, `voice` its voice)
//! file = "smollm2-135m-instruct-q4_1.gguf"   # relative to general.models_dir, or absolute
//! sha256 = "…"             # optional; `daarion models verify` checks it
//! context = 2048
//! gpu_layers = 0
//! estimate_mb = 300        # until a load measures the real footprint
//! pin = false
//! priority = 0
//! idle_ttl_secs = 600
//! url = "https://…"         # optional: where `daarion models pull` fetches the file
//! mmproj = "qwen3-vl-mmproj.gguf"  # vision only, and required there: the image projector
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Chat,
    /// A chat model that also reads images (llama.cpp with its mmproj projector).
    Vision,
    Embedding,
    /// Speech to text.
    Stt,
    /// Text to speech.
    Tts,
}

impl Kind {
    /// The backend that runs this kind of model.
    pub fn backend(self) -> &'static str {
        match self {
            Kind::Chat | Kind::Vision | Kind::Embedding => LLAMA_CPP,
            Kind::Stt => WHISPER_CPP,
            Kind::Tts => ESPEAK_NG,
        }
    }
}

pub const LLAMA_CPP: &str = "llama.cpp";
pub const WHISPER_CPP: &str = "whisper.cpp";
pub const ESPEAK_NG: &str = "espeak-ng";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub kind: Kind,
    /// Defaults to the kind's backend; naming another is an error.
    #[serde(default)]
    pub backend: Option<String>,
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
    /// For text to speech: the engine's voice (`en-us`, `de`…).
    #[serde(default)]
    pub voice: Option<String>,
    /// Where `daarion models pull` downloads the file from (http or https).
    #[serde(default)]
    pub url: Option<String>,
    /// The file's size in bytes, for progress when the server does not say.
    #[serde(default)]
    pub size: Option<u64>,
    /// A vision model's image projector (mmproj GGUF), like `file`.
    #[serde(default)]
    pub mmproj: Option<PathBuf>,
    /// Where `daarion models pull` downloads the projector from, and its checksum.
    #[serde(default)]
    pub mmproj_url: Option<String>,
    #[serde(default)]
    pub mmproj_sha256: Option<String>,
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
        resolve(&self.file, models_dir)
    }

    /// A vision model's projector, resolved against the models directory.
    pub fn mmproj_path(&self, models_dir: &Path) -> Option<PathBuf> {
        self.mmproj.as_deref().map(|p| resolve(p, models_dir))
    }

    /// Whether this model reads images in chat.
    pub fn sees(&self) -> bool {
        self.kind == Kind::Vision
    }
}

fn resolve(file: &Path, models_dir: &Path) -> PathBuf {
    if file.is_absolute() {
        file.to_owned()
    } else {
        models_dir.join(file)
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
        if let Some(backend) = &manifest.backend
            && backend != manifest.kind.backend()
        {
            return Err(ManifestError::Invalid(
                path,
                format!(
                    "backend `{backend}` cannot run this kind of model (use {})",
                    manifest.kind.backend()
                ),
            ));
        }
        if manifest.mmproj.is_none()
            && (manifest.mmproj_url.is_some() || manifest.mmproj_sha256.is_some())
        {
            return Err(ManifestError::Invalid(
                path,
                "mmproj_url and mmproj_sha256 describe an `mmproj` file; name it".into(),
            ));
        }
        if (manifest.kind == Kind::Vision) != manifest.mmproj.is_some() {
            return Err(ManifestError::Invalid(
                path,
                "a vision model names its image projector (`mmproj`), and only a vision model does"
                    .into(),
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
        assert!(err.contains("b.toml") && err.contains("mmproj"), "{err}");
        std::fs::write(
            dir.join("b.toml"),
            "id = \"x\"\nkind = \"chat\"\nfile = \"v\"\nmmproj = \"p\"\nestimate_mb = 1\n",
        )
        .unwrap();
        let err = load_all(&dir).unwrap_err().to_string();
        assert!(err.contains("only a vision model"), "{err}");
        std::fs::write(
            dir.join("b.toml"),
            "id = \"x\"\nkind = \"vision\"\nfile = \"v\"\nmmproj = \"p\"\nestimate_mb = 1\n",
        )
        .unwrap();
        let both = load_all(&dir).unwrap();
        assert!(both[1].sees() && !both[0].sees());
        assert_eq!(
            both[1].mmproj_path(Path::new("/models")),
            Some(PathBuf::from("/models/p"))
        );
        std::fs::write(
            dir.join("b.toml"),
            "id = \"x\"\nkind = \"vision\"\nfile = \"v\"\nmmproj = \"p\"\nmmproj_url = \"http://h/p\"\nestimate_mb = 1\n",
        )
        .unwrap();
        assert_eq!(
            load_all(&dir).unwrap()[1].mmproj_url.as_deref(),
            Some("http://h/p")
        );
        std::fs::write(
            dir.join("b.toml"),
            "id = \"x\"\nkind = \"chat\"\nfile = \"v\"\nmmproj_url = \"http://h/p\"\nestimate_mb = 1\n",
        )
        .unwrap();
        let err = load_all(&dir).unwrap_err().to_string();
        assert!(err.contains("name it"), "{err}");
        std::fs::write(
            dir.join("b.toml"),
            "id = \"x\"\nkind = \"image\"\nfile = \"v\"\nestimate_mb = 1\n",
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

    #[test]
    fn the_shipped_catalogue_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let shipped = load_all(&dir).unwrap();
        let ids: Vec<&str> = shipped.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["espeak-en", "minilm", "smollm2", "whisper-tiny-en"]
        );
        // Every model file we ship a manifest for has its checksum; a system engine does not.
        assert!(
            shipped
                .iter()
                .filter(|m| !m.file.is_absolute())
                .all(|m| m.sha256.as_deref().is_some_and(|s| s.len() == 64))
        );
    }
}

/// What `daarion models verify` found for one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Missing,
    /// Present; no checksum to compare with.
    Unverified {
        bytes: u64,
    },
    Verified {
        bytes: u64,
    },
    Mismatch {
        expected: String,
        actual: String,
    },
}

/// Checks a model's file against its manifest, reading it once to hash it when asked.
/// The hex SHA-256 of a file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

pub fn check_file(
    manifest: &Manifest,
    models_dir: &Path,
    hash: bool,
) -> std::io::Result<FileState> {
    check_path(&manifest.path(models_dir), manifest.sha256.as_ref(), hash)
}

/// A vision model's projector, checked like its model file; `None` for other models.
pub fn check_mmproj(
    manifest: &Manifest,
    models_dir: &Path,
    hash: bool,
) -> Option<std::io::Result<FileState>> {
    let path = manifest.mmproj_path(models_dir)?;
    Some(check_path(&path, manifest.mmproj_sha256.as_ref(), hash))
}

fn check_path(path: &Path, expected: Option<&String>, hash: bool) -> std::io::Result<FileState> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileState::Missing),
        Err(e) => return Err(e),
    };
    let (Some(expected), true) = (expected, hash) else {
        return Ok(FileState::Unverified { bytes: meta.len() });
    };
    let actual = sha256_file(path)?;
    Ok(if actual.eq_ignore_ascii_case(expected) {
        FileState::Verified { bytes: meta.len() }
    } else {
        FileState::Mismatch {
            expected: expected.clone(),
            actual,
        }
    })
}

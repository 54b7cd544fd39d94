//! Model manifests: one TOML file per model in `models.manifests_dir`.
//!
//! ```toml
//! id = "smollm2"
//! kind = "chat"            # chat | vision | embedding | stt | tts | image
//! backend = "llama.cpp"     # the default for chat and embedding; stt runs on "whisper.cpp",
//!                           # tts on "espeak-ng" (`file` is then the engine, `voice` its voice)
//!                           # or "edge-tts" (online voices: no file, `voice` such as
//!                           # "en-US-AriaNeural", optional `endpoint`), image on
//!                           # "stable-diffusion.cpp"
//! file = "smollm2-135m-instruct-q4_1.gguf"   # relative to general.models_dir, or absolute
//! sha256 = "…"             # optional; `daarion models verify` checks it
//! context = 2048
//! gpu_layers = 99           # absent: all layers on a GPU box, none elsewhere
//! estimate_mb = 300        # until a load measures the real footprint
//! pin = false
//! priority = 0
//! idle_ttl_secs = 600
//! url = "https://…"         # optional: where `daarion models pull` fetches the file
//! mmproj = "qwen3-vl-mmproj.gguf"  # vision only, and required there: the image projector
//!
//! # image only: a model shipped in parts (FLUX, SD3) names them; `file` is then the
//! # diffusion model alone. Each part is a file like `file`, with its own url and sha256.
//! [components]
//! vae = { file = "ae.safetensors", url = "https://…", sha256 = "…" }
//! clip_l = { file = "clip_l.safetensors" }
//! t5xxl = { file = "t5xxl_q8_0.gguf" }
//! # image only: what a request that does not say gets
//! [image]
//! steps = 4
//! cfg_scale = 1.0
//! width = 1024
//! height = 1024
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
    /// Image generation.
    Image,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Chat,
        Kind::Vision,
        Kind::Embedding,
        Kind::Stt,
        Kind::Tts,
        Kind::Image,
    ];

    /// The name manifests and `/v1/models` use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Chat => "chat",
            Kind::Vision => "vision",
            Kind::Embedding => "embedding",
            Kind::Stt => "stt",
            Kind::Tts => "tts",
            Kind::Image => "image",
        }
    }

    /// The backend that runs this kind of model unless the manifest names another.
    pub fn backend(self) -> &'static str {
        self.backends()[0]
    }

    /// Every backend that runs this kind of model; the first is the default.
    pub fn backends(self) -> &'static [&'static str] {
        match self {
            Kind::Chat | Kind::Vision | Kind::Embedding => &[LLAMA_CPP],
            Kind::Stt => &[WHISPER_CPP],
            Kind::Tts => &[ESPEAK_NG, EDGE_TTS],
            Kind::Image => &[STABLE_DIFFUSION_CPP],
        }
    }
}

/// The largest picture side an image model is asked for.
pub const MAX_IMAGE_SIDE: u32 = 2048;

/// A picture side stable-diffusion.cpp takes: a multiple of 64 from 64 to [`MAX_IMAGE_SIDE`].
pub fn image_side_ok(side: u32) -> bool {
    (64..=MAX_IMAGE_SIDE).contains(&side) && side.is_multiple_of(64)
}

pub const LLAMA_CPP: &str = "llama.cpp";
pub const WHISPER_CPP: &str = "whisper.cpp";
pub const ESPEAK_NG: &str = "espeak-ng";
/// Microsoft Edge's online neural voices ("Read aloud"), spoken over a WebSocket.
pub const EDGE_TTS: &str = "edge-tts";
pub const STABLE_DIFFUSION_CPP: &str = "stable-diffusion.cpp";
/// Where edge-tts voices are spoken unless the manifest names another `endpoint`.
pub const EDGE_TTS_ENDPOINT: &str =
    "wss://speech.platform.bing.com/consumer/speech/synthesize/readaloud/edge/v1";
/// The parts an image model may name in `[components]`, as stable-diffusion.cpp takes them.
pub const COMPONENTS: [&str; 4] = ["vae", "clip_l", "clip_g", "t5xxl"];

/// A file an image model needs besides `file`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub file: PathBuf,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
}

/// What an image request gets when it does not say: the model's own best settings (FLUX
/// schnell wants 4 steps without guidance, SD 1.5 some 20 steps at 7).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDefaults {
    #[serde(default = "steps")]
    pub steps: u32,
    #[serde(default = "cfg_scale")]
    pub cfg_scale: f32,
    /// For models trained with a guidance input (FLUX dev).
    #[serde(default = "guidance")]
    pub guidance: f32,
    #[serde(default = "side")]
    pub width: u32,
    #[serde(default = "side")]
    pub height: u32,
}

impl Default for ImageDefaults {
    fn default() -> Self {
        ImageDefaults {
            steps: steps(),
            cfg_scale: cfg_scale(),
            guidance: guidance(),
            width: side(),
            height: side(),
        }
    }
}

fn steps() -> u32 {
    20
}
fn cfg_scale() -> f32 {
    7.0
}
fn guidance() -> f32 {
    3.5
}
fn side() -> u32 {
    512
}

/// One file a model needs, wherever the manifest names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    /// `model`, `mmproj`, or a component's name.
    pub role: String,
    pub path: PathBuf,
    pub url: Option<String>,
    pub sha256: Option<String>,
    pub size: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub kind: Kind,
    /// Defaults to the kind's backend; naming another is an error.
    #[serde(default)]
    pub backend: Option<String>,
    /// The model's file; an online voice (edge-tts) has none.
    #[serde(default)]
    pub file: PathBuf,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default = "context")]
    pub context: u32,
    /// Layers offloaded to the GPU. Absent: all of them on a GPU box (the swapper budgets
    /// VRAM), none elsewhere; `0` keeps a model on the CPU even on a GPU box.
    #[serde(default)]
    pub gpu_layers: Option<u32>,
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
    /// An image model's separate parts, by name (see [`COMPONENTS`]).
    #[serde(default)]
    pub components: std::collections::BTreeMap<String, Component>,
    /// An image model's request defaults.
    #[serde(default)]
    pub image: Option<ImageDefaults>,
    /// edge-tts only: the service's WebSocket URL (defaults to [`EDGE_TTS_ENDPOINT`]).
    #[serde(default)]
    pub endpoint: Option<String>,
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

/// llama.cpp's "every layer": more than any model has.
pub const ALL_LAYERS: u32 = 999;

impl Manifest {
    /// The layers to offload, `gpu` saying whether the swapper runs models on a GPU.
    pub fn gpu_layers(&self, gpu: bool) -> u32 {
        self.gpu_layers.unwrap_or(if gpu { ALL_LAYERS } else { 0 })
    }

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

    /// The backend that runs it: the one named, or the kind's default.
    pub fn backend(&self) -> &str {
        self.backend.as_deref().unwrap_or(self.kind.backend())
    }

    /// An online voice: nothing on disk, spoken by a remote service.
    pub fn online(&self) -> bool {
        self.backend() == EDGE_TTS
    }

    /// An online voice's service: the manifest's `endpoint`, or Microsoft's.
    pub fn edge_endpoint(&self) -> &str {
        self.endpoint.as_deref().unwrap_or(EDGE_TTS_ENDPOINT)
    }

    /// An image model's request defaults.
    pub fn image_defaults(&self) -> ImageDefaults {
        self.image.unwrap_or_default()
    }

    /// Every file the model needs on disk: its own, a vision model's projector, an image
    /// model's parts. Empty for an online voice.
    pub fn files(&self, models_dir: &Path) -> Vec<ModelFile> {
        if self.online() {
            return Vec::new();
        }
        let mut files = vec![ModelFile {
            role: "model".into(),
            path: self.path(models_dir),
            url: self.url.clone(),
            sha256: self.sha256.clone(),
            size: self.size,
        }];
        if let Some(path) = self.mmproj_path(models_dir) {
            files.push(ModelFile {
                role: "mmproj".into(),
                path,
                url: self.mmproj_url.clone(),
                sha256: self.mmproj_sha256.clone(),
                size: None,
            });
        }
        files.extend(self.components.iter().map(|(name, c)| ModelFile {
            role: name.clone(),
            path: resolve(&c.file, models_dir),
            url: c.url.clone(),
            sha256: c.sha256.clone(),
            size: None,
        }));
        files
    }

    /// What makes sense only for some kinds or backends, checked once at load.
    fn check(&self) -> Result<(), String> {
        if !self.kind.backends().contains(&self.backend()) {
            return Err(format!(
                "backend `{}` cannot run this kind of model (use {})",
                self.backend(),
                self.kind.backends().join(" or ")
            ));
        }
        if self.online() {
            if !self.file.as_os_str().is_empty() || self.url.is_some() {
                return Err("an edge-tts voice is online: it has no `file` or `url`".into());
            }
            if self.voice.is_none() {
                return Err("an edge-tts model names its `voice` (e.g. en-US-AriaNeural)".into());
            }
            if let Some(endpoint) = &self.endpoint
                && !(endpoint.starts_with("wss://") || endpoint.starts_with("ws://"))
            {
                return Err(format!("endpoint `{endpoint}`: a ws:// or wss:// URL"));
            }
        } else {
            if self.file.as_os_str().is_empty() {
                return Err("`file` is required".into());
            }
            if self.endpoint.is_some() {
                return Err("`endpoint` is for edge-tts voices only".into());
            }
        }
        if self.kind != Kind::Image && (!self.components.is_empty() || self.image.is_some()) {
            return Err("`components` and `[image]` are for image models only".into());
        }
        if let Some(name) = self
            .components
            .keys()
            .find(|k| !COMPONENTS.contains(&k.as_str()))
        {
            return Err(format!(
                "component `{name}`: one of {}",
                COMPONENTS.join(", ")
            ));
        }
        if let Some(image) = &self.image
            && !(image_side_ok(image.width) && image_side_ok(image.height))
        {
            return Err(format!(
                "[image] width and height: multiples of 64 from 64 to {MAX_IMAGE_SIDE}"
            ));
        }
        Ok(())
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
        if let Err(e) = manifest.check() {
            return Err(ManifestError::Invalid(path, e));
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
    fn a_model_goes_wholly_on_the_gpu_unless_its_manifest_says_otherwise() {
        let manifest = |extra: &str| -> Manifest {
            toml::from_str(&format!(
                "id = \"m\"\nkind = \"chat\"\nfile = \"m.gguf\"\nestimate_mb = 1\n{extra}"
            ))
            .unwrap()
        };
        assert_eq!(manifest("").gpu_layers(true), ALL_LAYERS);
        assert_eq!(manifest("").gpu_layers(false), 0, "no GPU: the CPU");
        assert_eq!(
            manifest("gpu_layers = 0").gpu_layers(true),
            0,
            "kept on the CPU"
        );
        assert_eq!(manifest("gpu_layers = 12").gpu_layers(true), 12, "split");
        assert_eq!(manifest("gpu_layers = 12").gpu_layers(false), 12);
    }

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
            "id = \"x\"\nkind = \"painting\"\nfile = \"v\"\nestimate_mb = 1\n",
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

    fn load_one(text: &str) -> Result<Manifest, String> {
        let dir = std::env::temp_dir().join(format!(
            "daarion-manifest-one-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("m.toml"), text).unwrap();
        let result = load_all(&dir)
            .map(|mut all| all.remove(0))
            .map_err(|e| e.to_string());
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn image_models_name_their_parts_and_defaults() {
        let flux = load_one(
            "id = \"flux\"\nkind = \"image\"\nfile = \"flux1-schnell-q4_0.gguf\"\nestimate_mb = 9000\n\
             [components]\nvae = { file = \"ae.safetensors\", url = \"https://h/ae\", sha256 = \"ab\" }\n\
             t5xxl = { file = \"/abs/t5.gguf\" }\n[image]\nsteps = 4\ncfg_scale = 1.0\nwidth = 1024\n",
        )
        .unwrap();
        assert_eq!(flux.backend(), STABLE_DIFFUSION_CPP);
        let defaults = flux.image_defaults();
        assert_eq!(
            (defaults.steps, defaults.width, defaults.height),
            (4, 1024, 512)
        );
        let files = flux.files(Path::new("/models"));
        let roles: Vec<&str> = files.iter().map(|f| f.role.as_str()).collect();
        assert_eq!(roles, ["model", "t5xxl", "vae"]);
        assert_eq!(files[1].path, PathBuf::from("/abs/t5.gguf"));
        assert_eq!(files[2].path, PathBuf::from("/models/ae.safetensors"));
        assert_eq!(files[2].url.as_deref(), Some("https://h/ae"));

        let bad = [
            (
                "[components]\nunet = { file = \"u\" }\n",
                "component `unet`",
            ),
            ("[image]\nwidth = 1000\n", "multiples of 64"),
            (
                "[components]\nvae = { file = \"v\", colour = 1 }\n",
                "colour",
            ),
        ];
        for (extra, reason) in bad {
            let e = load_one(&format!(
                "id = \"i\"\nkind = \"image\"\nfile = \"m\"\nestimate_mb = 1\n{extra}"
            ))
            .unwrap_err();
            assert!(e.contains(reason), "{e}");
        }
        let e = load_one(
            "id = \"c\"\nkind = \"chat\"\nfile = \"m\"\nestimate_mb = 1\n[image]\nsteps = 2\n",
        )
        .unwrap_err();
        assert!(e.contains("image models only"), "{e}");
    }

    #[test]
    fn online_voices_have_no_file() {
        let aria = load_one(
            "id = \"aria\"\nkind = \"tts\"\nbackend = \"edge-tts\"\nvoice = \"en-US-AriaNeural\"\nestimate_mb = 5\n",
        )
        .unwrap();
        assert!(aria.online());
        assert!(aria.files(Path::new("/models")).is_empty());
        let bad = [
            ("voice = \"en-US-AriaNeural\"\nfile = \"x\"\n", "no `file`"),
            ("", "names its `voice`"),
            ("voice = \"v\"\nendpoint = \"https://h\"\n", "ws://"),
        ];
        for (extra, reason) in bad {
            let e = load_one(&format!(
                "id = \"a\"\nkind = \"tts\"\nbackend = \"edge-tts\"\nestimate_mb = 1\n{extra}"
            ))
            .unwrap_err();
            assert!(e.contains(reason), "{e}");
        }
        let e = load_one(
            "id = \"c\"\nkind = \"chat\"\nbackend = \"edge-tts\"\nfile = \"m\"\nestimate_mb = 1\n",
        )
        .unwrap_err();
        assert!(e.contains("cannot run"), "{e}");
        let e = load_one("id = \"c\"\nkind = \"chat\"\nestimate_mb = 1\n").unwrap_err();
        assert!(e.contains("`file` is required"), "{e}");
    }

    #[test]
    fn kinds_are_named_as_serialised() {
        for kind in Kind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
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

/// Checks one of a model's files, reading it once to hash it when asked.
pub fn check_file(file: &ModelFile, hash: bool) -> std::io::Result<FileState> {
    check_path(&file.path, file.sha256.as_ref(), hash)
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

//! For tests (of this and other crates) that run the real workers on the real test models:
//! where the models and the built worker binaries are, and manifests for them.

use std::path::{Path, PathBuf};

/// The cache `../shared/test-models/prepare.sh` fills (`DAARION_TEST_MODELS`).
pub fn test_models() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("DAARION_TEST_MODELS")
            .unwrap_or_else(|_| "/var/cache/daarion/test-models".into()),
    );
    assert!(
        dir.join("smollm2-135m-instruct-q4_1.gguf").is_file(),
        "test models missing in {}: run ../shared/test-models/prepare.sh",
        dir.display()
    );
    dir
}

/// A fixture `tests/setup.sh` makes (`DAARION_TEST_FIXTURES`), such as the tiny random vision
/// projector `tiny-random-mmproj.gguf`.
pub fn fixture(name: &str) -> PathBuf {
    let path = PathBuf::from(
        std::env::var("DAARION_TEST_FIXTURES")
            .unwrap_or_else(|_| "/var/cache/daarion/fixtures".into()),
    )
    .join(name);
    assert!(
        path.is_file(),
        "{} missing: run tests/setup.sh",
        path.display()
    );
    path
}

/// A binary of the workspace built beside the running test (`cargo build --workspace --bins`).
pub fn built_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps")
        .join(name);
    assert!(
        path.is_file(),
        "{} missing: cargo build --workspace --bins",
        path.display()
    );
    path
}

/// Writes `dir/<id>.toml` for a test model (`context` 0 leaves it out).
pub fn write_manifest(dir: &Path, id: &str, kind: &str, file: &str, context: u32) {
    let context = if context > 0 {
        format!("context = {context}\n")
    } else {
        String::new()
    };
    std::fs::create_dir_all(dir).expect("the manifests directory can be made");
    std::fs::write(
        dir.join(format!("{id}.toml")),
        format!(
            "id = \"{id}\"\nkind = \"{kind}\"\nfile = \"{file}\"\n{context}estimate_mb = 300\nidle_ttl_secs = 3600\n"
        ),
    )
    .expect("the manifest can be written");
}

/// A swapper configuration (from `base`) serving the test models of `manifests` (`id, kind,
/// file, context`) with the llama.cpp worker built beside the test.
pub fn config(
    base: &daarion_config::Config,
    dir: &Path,
    manifests: &[(&str, &str, &str, u32)],
) -> daarion_config::Config {
    manifests
        .iter()
        .fold(
            ConfigBuilder::new(base, dir),
            |b, &(id, kind, file, context)| b.model(id, kind, file, context),
        )
        .build()
}

/// A swapper configuration for a test, kept under `dir`: manifests in `dir/manifests`, data in
/// `dir/data`, models from [`test_models`], the llama.cpp worker built beside the test, a
/// 2 GiB budget, and `models.threads` as shipped (0, "all cores", so the workers' own default
/// is what runs).
#[derive(Debug)]
pub struct ConfigBuilder {
    config: daarion_config::Config,
    manifests: PathBuf,
}

impl ConfigBuilder {
    pub fn new(base: &daarion_config::Config, dir: &Path) -> ConfigBuilder {
        let mut config = base.clone();
        let manifests = dir.join("manifests");
        config.general.data_dir = dir.join("data");
        config.general.models_dir = test_models();
        config.models.manifests_dir = manifests.clone();
        config.models.budget_mb = 2048;
        config.models.llama_worker = built_binary("daarion-llama-worker");
        ConfigBuilder { config, manifests }
    }

    /// A model run by llama.cpp or whisper.cpp from a test model file ([`write_manifest`]).
    pub fn model(self, id: &str, kind: &str, file: &str, context: u32) -> ConfigBuilder {
        write_manifest(&self.manifests, id, kind, file, context);
        self
    }

    /// A manifest as written, for what [`ConfigBuilder::model`] cannot say (a projector, image
    /// parts, a voice); stored as `<name>.toml`.
    pub fn manifest(self, name: &str, toml: &str) -> ConfigBuilder {
        std::fs::create_dir_all(&self.manifests).expect("the manifests directory can be made");
        std::fs::write(self.manifests.join(format!("{name}.toml")), toml)
            .expect("the manifest can be written");
        self
    }

    pub fn budget_mb(mut self, budget_mb: u64) -> ConfigBuilder {
        self.config.models.budget_mb = budget_mb;
        self
    }

    /// The whisper.cpp, text-to-speech and stable-diffusion.cpp workers too (all must be
    /// built: `cargo build -p daarion-whisper-worker -p daarion-tts-worker -p daarion-sd-worker`).
    pub fn every_worker(mut self) -> ConfigBuilder {
        self.config.models.whisper_worker = built_binary("daarion-whisper-worker");
        self.config.models.tts_worker = built_binary("daarion-tts-worker");
        self.config.models.sd_worker = built_binary("daarion-sd-worker");
        self
    }

    pub fn build(self) -> daarion_config::Config {
        self.config
    }
}

/// A 24-bit BMP of a colour gradient: an image llama.cpp's decoder reads, made without an
/// encoder (tests of the vision path).
pub fn bmp(width: u32, height: u32) -> Vec<u8> {
    let row = (width * 3).div_ceil(4) * 4;
    let size = 54 + row * height;
    let mut out = Vec::with_capacity(size as usize);
    out.extend(b"BM");
    out.extend(size.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(54u32.to_le_bytes());
    out.extend(40u32.to_le_bytes());
    out.extend(width.to_le_bytes());
    out.extend(height.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(24u16.to_le_bytes());
    out.extend([0u8; 24]);
    for y in 0..height {
        for x in 0..width {
            out.extend([(y * 255 / height) as u8, 40, (x * 255 / width) as u8]);
        }
        out.extend(std::iter::repeat_n(0u8, (row - width * 3) as usize));
    }
    out
}

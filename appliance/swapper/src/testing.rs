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
/// file, context`) with the workers built beside the test.
pub fn config(
    base: &daarion_config::Config,
    dir: &Path,
    manifests: &[(&str, &str, &str, u32)],
) -> daarion_config::Config {
    let mut config = base.clone();
    for (id, kind, file, context) in manifests {
        write_manifest(&dir.join("manifests"), id, kind, file, *context);
    }
    config.general.data_dir = dir.join("data");
    config.general.models_dir = test_models();
    config.models.manifests_dir = dir.join("manifests");
    config.models.budget_mb = 2048;
    config.models.llama_worker = built_binary("daarion-llama-worker");
    config.models.threads = 2;
    config
}

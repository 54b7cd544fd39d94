//! The real swapper for the image and recording tests: whisper tiny.en as the speech-to-text
//! model, and (where `tests/setup.sh` made its projector) SmolLM2 with a random-weight
//! projector as the vision model. That one describes noise, but in words, which is what the
//! description path needs to prove it is wired end to end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The manifest ids the parser is configured with.
pub const STT: &str = "whisper-tiny-en";
pub const VISION: &str = "eyes";
/// The projector `tests/setup.sh` makes (DAARION_TEST_FIXTURES).
const PROJECTOR: &str = "tiny-random-mmproj-smollm2.gguf";

pub struct Swapper {
    pub addr: std::net::SocketAddr,
    /// The vision model's id, when its projector was there to serve it.
    pub vision: Option<&'static str>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), daarion_swapper::StartError>>,
    dir: PathBuf,
}

impl Swapper {
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether `path` is there; a missing one fails the test under CI=true, else it skips.
pub fn present(path: &Path, how: &str) -> bool {
    if path.is_file() {
        return true;
    }
    assert!(!ci(), "{} missing: {how}", path.display());
    eprintln!("skipping: {} missing ({how})", path.display());
    false
}

fn models() -> PathBuf {
    PathBuf::from(
        std::env::var("DAARION_TEST_MODELS")
            .unwrap_or_else(|_| "/var/cache/daarion/test-models".into()),
    )
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(
        std::env::var("DAARION_TEST_FIXTURES")
            .unwrap_or_else(|_| "/var/cache/daarion/fixtures".into()),
    )
    .join(name)
}

/// A worker binary built beside this test (target/<profile>/).
fn worker(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join(name)
}

/// The swapper on the test models, or `None` (the test skips) when a model or a worker is
/// missing outside CI. `vision` asks for the vision model too; it is served only where its
/// projector exists (see [`Swapper::vision`]).
pub async fn start(base: &daarion_config::Config, vision: bool) -> Option<Swapper> {
    let prepare = "run ../shared/test-models/prepare.sh";
    let build = "cargo build -p daarion-llama-worker -p daarion-whisper-worker";
    let ok = present(&models().join("ggml-tiny.en.bin"), prepare)
        && present(&models().join("smollm2-135m-instruct-q4_1.gguf"), prepare)
        && present(&worker("daarion-whisper-worker"), build)
        && present(&worker("daarion-llama-worker"), build);
    if !ok {
        return None;
    }
    let dir = std::env::temp_dir().join(format!(
        "daarion-parser-swapper-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut builder = daarion_swapper::testing::ConfigBuilder::new(base, &dir).manifest(
        "whisper",
        &format!(
            "id = \"{STT}\"\nkind = \"stt\"\nfile = \"ggml-tiny.en.bin\"\nestimate_mb = 150\nidle_ttl_secs = 3600\n"
        ),
    );
    let projector = fixture(PROJECTOR);
    let served_vision = vision && present(&projector, "run tests/setup.sh");
    if served_vision {
        builder = builder.manifest(
            "eyes",
            &format!(
                "id = \"{VISION}\"\nkind = \"vision\"\nfile = \"smollm2-135m-instruct-q4_1.gguf\"\nmmproj = \"{}\"\ncontext = 2048\nestimate_mb = 300\nidle_ttl_secs = 3600\n",
                projector.display()
            ),
        );
    }
    let mut config = builder.build();
    config.models.whisper_worker = worker("daarion-whisper-worker");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(daarion_swapper::run(config, listener, stop.clone()));
    let http = reqwest::Client::new();
    for _ in 0..800 {
        if let Ok(r) = http.get(format!("http://{addr}/ready")).send().await
            && r.status().is_success()
        {
            return Some(Swapper {
                addr,
                vision: served_vision.then_some(VISION),
                stop,
                task,
                dir,
            });
        }
        assert!(
            !task.is_finished(),
            "the swapper did not start: {:?}",
            task.await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the swapper never became ready");
}

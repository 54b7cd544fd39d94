//! Swapper figures on this machine: generation speed through the swapper next to llama.cpp
//! in-process (same model, prompt, greedy sampling, threads), time to first token, model load
//! times cold and warm, and the cost of a swap. Run:
//! `cargo build --release -p daarion-llama-worker -p daarion-whisper-worker -p daarion-tts-worker
//! -p daarion-sd-worker && cargo bench -p daarion-swapper --bench swapper` (the swapper starts
//! the release workers; the test stack it shares names every backend's).

#[path = "../tests/helpers/mod.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use daarion_llama_worker::engine::Engine;
use daarion_llama_worker::protocol::{Args, Chat};
use daarion_worker_io::Event;
use futures::StreamExt;
use helpers::{Swapper, test_models, workspace};
use serde_json::{Value, json};

const PROMPT: &str =
    "Write a short story about a lighthouse keeper who finds a message in a bottle.";
const TOKENS: u32 = 128;
const RUNS: usize = 5;

/// Drops a file's pages from the page cache (`POSIX_FADV_DONTNEED`: clean pages no process
/// maps), so that its next read comes from the disk: a cold load without root's drop_caches.
fn evict_from_page_cache(path: &std::path::Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    nix::fcntl::posix_fadvise(
        file.as_raw_fd(),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// (time to first token, tokens per second after it, tokens)
fn in_process(engine: &mut Engine) -> (Duration, f64, u64) {
    let chat: Chat = serde_json::from_value(json!({
        "id": 1, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": TOKENS, "temperature": 0.0
    }))
    .unwrap();
    let started = Instant::now();
    let mut first: Option<Instant> = None;
    let mut last = started;
    let mut tokens = 0u64;
    engine.chat(&chat, &AtomicU64::new(0), &mut |event: Event| {
        if let Event::Token { .. } = event {
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
            tokens += 1;
        }
    });
    let first = first.expect("tokens");
    let rate = (tokens - 1) as f64 / (last - first).as_secs_f64();
    (first - started, rate, tokens)
}

async fn through_swapper(swapper: &Swapper) -> (Duration, f64, u64) {
    let started = Instant::now();
    let response = swapper
        .post("/v1/chat/completions")
        .json(
            &json!({"model": "smollm2", "messages": [{"role": "user", "content": PROMPT}],
                      "max_tokens": TOKENS, "temperature": 0.0, "stream": true}),
        )
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let mut first: Option<Instant> = None;
    let mut last = started;
    let mut tokens = 0u64;
    let mut buffer = String::new();
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let data = frame.trim().trim_start_matches("data:").trim();
            if let Ok(v) = serde_json::from_str::<Value>(data)
                && v["choices"][0]["delta"]["content"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty())
            {
                first.get_or_insert_with(Instant::now);
                last = Instant::now();
                tokens += 1;
            }
        }
    }
    let first = first.expect("tokens");
    let rate = (tokens - 1) as f64 / (last - first).as_secs_f64();
    (first - started, rate, tokens)
}

#[tokio::main]
async fn main() {
    let models = test_models();
    let dir = workspace();
    let swapper = Swapper::start(&dir, 8192).await;

    // Loads first, before anything in this process maps a model file: cold (the file dropped
    // from the page cache once the worker is gone), then warm (the file just read).
    let reload = |model: &'static str, evict: Option<std::path::PathBuf>| {
        let swapper = &swapper;
        async move {
            swapper
                .json(&format!("/v1/swapper/models/{model}/unload"), json!({}))
                .await;
            if let Some(file) = evict {
                evict_from_page_cache(&file);
            }
            let t = Instant::now();
            let (status, _) = swapper
                .json(&format!("/v1/swapper/models/{model}/load"), json!({}))
                .await;
            assert_eq!(status, 200);
            t.elapsed()
        }
    };
    let mut loads = Vec::new();
    for (model, file) in [
        ("smollm2", "smollm2-135m-instruct-q4_1.gguf"),
        ("tiny", "tiny-random-llama.gguf"),
        ("minilm", "all-minilm-l6-v2-f16.gguf"),
    ] {
        let cold = reload(model, Some(models.join(file))).await;
        let warm = reload(model, None).await;
        loads.push((model, cold, warm));
    }

    // Generation: the swapper next to llama.cpp in this process with the arguments the swapper
    // gives its worker (the test stack runs the shipped `threads = 0`, so both sides use the
    // worker's own default), in alternation so that neither side gets the machine's quieter
    // moments. The engine keeps its model mapped for the life of the process (one model per
    // worker process, by design), hence after the cold loads.
    let args = Args::parse(
        [
            "--model",
            &models
                .join("smollm2-135m-instruct-q4_1.gguf")
                .display()
                .to_string(),
            "--mode",
            "chat",
            "--ctx",
            "1024",
            "--gpu-layers",
            "0",
        ]
        .into_iter()
        .map(String::from),
    )
    .unwrap();
    let threads = args.threads;
    let mut engine = Engine::load(&args).unwrap();
    in_process(&mut engine); // warm-up
    through_swapper(&swapper).await;
    let mut reference = Vec::new();
    let mut served = Vec::new();
    for _ in 0..RUNS {
        reference.push(in_process(&mut engine));
        served.push(through_swapper(&swapper).await);
    }
    swapper.stop().await;

    // A swap: a budget that holds one model, alternating requests.
    let tight = Swapper::start(&dir, 200).await;
    tight.ask("tiny", "hi", 4).await;
    let mut warm = Vec::new();
    let mut swapped = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        assert_eq!(tight.ask("tiny", "hi", 4).await.0, 200);
        warm.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        assert_eq!(tight.ask("smollm2", "hi", 4).await.0, 200);
        swapped.push(t.elapsed().as_secs_f64() * 1e3);
        tight.ask("tiny", "hi", 4).await;
    }
    tight.stop().await;
    let _ = std::fs::remove_dir_all(&dir);

    let rate_ref = median(reference.iter().map(|r| r.1).collect());
    let rate_swp = median(served.iter().map(|r| r.1).collect());
    println!(
        "swapper benchmark: SmolLM2-135M Q4_1, {TOKENS} tokens greedy, {threads} threads, CPU, median of {RUNS}"
    );
    println!("{:<46} {:>12} {:>12}", "measure", "value", "reference");
    println!(
        "{:<46} {:>12.1} {:>12.1}   ratio {:.3}",
        "tokens/s (swapper vs llama.cpp in-process)",
        rate_swp,
        rate_ref,
        rate_swp / rate_ref
    );
    println!(
        "{:<46} {:>12.1} {:>12.1}",
        "time to first token, ms",
        median(served.iter().map(|r| r.0.as_secs_f64() * 1e3).collect()),
        median(reference.iter().map(|r| r.0.as_secs_f64() * 1e3).collect())
    );
    for (model, cold, warm) in loads {
        println!(
            "{:<46} {:>12.1} {:>12.1}",
            format!("load {model}: cold vs page cache warm, ms"),
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3
        );
    }
    println!(
        "{:<46} {:>12.1} {:>12.1}",
        "request needing a swap vs warm (4 tokens), ms",
        median(swapped),
        median(warm)
    );
}

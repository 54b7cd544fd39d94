//! Swapper figures on this machine: generation speed through the swapper next to llama.cpp
//! in-process (same model, prompt, greedy sampling, threads), time to first token, model load
//! times, and the cost of a swap. Run: `cargo build --release -p daarion-llama-worker && cargo
//! bench -p daarion-swapper --bench swapper` (the swapper starts the release worker).

#[path = "../tests/helpers/mod.rs"]
#[allow(dead_code)]
mod helpers;

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use daarion_llama_worker::engine::Engine;
use daarion_llama_worker::protocol::{Args, Chat};
use futures::StreamExt;
use helpers::{Swapper, test_models, workspace};
use serde_json::{Value, json};

const PROMPT: &str =
    "Write a short story about a lighthouse keeper who finds a message in a bottle.";
const TOKENS: u32 = 128;
const RUNS: usize = 3;

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
    engine.chat(&chat, &AtomicU64::new(0), &mut |event: Value| {
        if event["event"] == "token" {
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
    // Reference: llama.cpp in this process.
    let mut engine = Engine::load(&Args {
        model: models
            .join("smollm2-135m-instruct-q4_1.gguf")
            .display()
            .to_string(),
        mode: "chat".into(),
        ctx: 1024,
        threads: 2,
        gpu_layers: 0,
        mmproj: None,
    })
    .unwrap();
    in_process(&mut engine); // warm-up
    let reference: Vec<_> = (0..RUNS).map(|_| in_process(&mut engine)).collect();
    drop(engine);

    let dir = workspace();
    let swapper = Swapper::start(&dir, 8192).await;
    through_swapper(&swapper).await; // loads the model
    let mut served = Vec::new();
    for _ in 0..RUNS {
        served.push(through_swapper(&swapper).await);
    }

    // Loads: first load, then reload with the file in the page cache.
    let mut loads = Vec::new();
    for model in ["smollm2", "tiny", "minilm"] {
        swapper
            .json(&format!("/v1/swapper/models/{model}/unload"), json!({}))
            .await;
        let t = Instant::now();
        let (status, _) = swapper
            .json(&format!("/v1/swapper/models/{model}/load"), json!({}))
            .await;
        assert_eq!(status, 200);
        loads.push((model, t.elapsed()));
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
        "swapper benchmark: SmolLM2-135M Q4_1, {TOKENS} tokens greedy, 2 threads, CPU, median of {RUNS}"
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
    for (model, took) in loads {
        println!(
            "{:<46} {:>12.1}",
            format!("load {model} (page cache warm), ms"),
            took.as_secs_f64() * 1e3
        );
    }
    println!(
        "{:<46} {:>12.1} {:>12.1}",
        "request needing a swap vs warm (4 tokens), ms",
        median(swapped),
        median(warm)
    );
}

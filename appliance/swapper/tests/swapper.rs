//! The swapper with the real llama.cpp and whisper.cpp workers and real models: SmolLM2, a tiny
//! random llama (also with a tiny random vision projector), MiniLM embeddings, whisper tiny.en.

mod helpers;

use std::time::Duration;

use daarion_swapper::testing::{bmp, fixture};
use daarion_swapper_client::{
    ChatMessage, ChatRequest, ClientError, ImageRequest, Part, SpeechFormat, SpeechRequest,
    SwapperClient,
};
use futures::StreamExt;
use helpers::{Swapper, drain, until, workspace};
use serde_json::{Value, json};
use tokio::net::TcpListener;

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

#[tokio::test]
async fn smollm_answers_paris_streamed_and_not_and_minilm_embeds() {
    let dir = workspace();
    let swapper = Swapper::start(&dir, 4096).await;
    let client = swapper.client();
    let mut question = ChatRequest::new(
        "smollm2",
        vec![ChatMessage::user("What is the capital of France?")],
    );
    question.max_tokens = Some(32);
    let answer = client.chat(&question).await.unwrap();
    let text = answer.text().unwrap();
    assert!(text.contains("Paris"), "{text}");
    assert_eq!(answer.object, "chat.completion");
    assert!(answer.usage.prompt_tokens > 5);
    assert_eq!(answer.choices[0].finish_reason, "stop");

    let response = swapper
        .stream("smollm2", "What is the capital of France?", 32)
        .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (streamed, frames) = drain(response).await;
    assert!(streamed.contains("Paris"), "{streamed}");
    assert_eq!(frames[0]["object"], "chat.completion.chunk");
    assert!(frames.len() > 3, "token by token: {}", frames.len());
    let usage = frames.last().unwrap();
    assert!(
        usage["usage"]["completion_tokens"].as_u64().unwrap() >= 1,
        "{usage}"
    );

    let texts = [
        "The cat sits on the mat",
        "A cat is sitting on a mat",
        "Quarterly tax filing deadlines",
    ]
    .map(String::from);
    let data = client.embed("minilm", &texts).await.unwrap();
    assert_eq!(data.len(), 3, "one vector per text");
    assert_eq!(data[0].len(), 384);
    let paraphrase = cosine(&data[0], &data[1]);
    let unrelated = cosine(&data[0], &data[2]);
    println!("figure: MiniLM cosine paraphrase {paraphrase:.3}, unrelated {unrelated:.3}");
    assert!(paraphrase > 0.6, "{paraphrase}");
    assert!(unrelated < 0.2, "{unrelated}");

    let models = client.models().await.unwrap();
    let ids: Vec<&str> = models.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, vec!["espeak", "minilm", "smollm2", "tiny", "whisper"]);
    assert_eq!(models.data[1].kind, "embedding");
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_input_gets_openai_errors_and_the_swapper_stays_healthy() {
    let dir = workspace();
    let swapper = Swapper::start(&dir, 4096).await;
    let long = "word ".repeat(3000);
    for (body, status, code) in [
        (
            json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}),
            404,
            "model_not_found",
        ),
        (
            json!({"model": "minilm", "messages": [{"role": "user", "content": "hi"}]}),
            400,
            "wrong_model_kind",
        ),
        (
            json!({"model": "smollm2", "messages": []}),
            400,
            "invalid_request",
        ),
        (
            json!({"model": "smollm2", "messages": [{"role": "user", "content": long}]}),
            400,
            "context_length_exceeded",
        ),
        (
            json!({"model": "smollm2", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            400,
            "invalid_request",
        ),
    ] {
        let (got, answer) = swapper.json("/v1/chat/completions", body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(
            answer["error"]["type"].is_string(),
            "OpenAI error shape: {answer}"
        );
    }
    let (got, answer) = swapper
        .json("/v1/embeddings", json!({"model": "minilm", "input": []}))
        .await;
    assert_eq!(got, 400, "{answer}");
    for (body, says) in [
        (json!({"model": "minilm", "input": 5}), "non-empty list"),
        (
            json!({"model": "minilm", "input": ["a", 1]}),
            "a list of strings",
        ),
    ] {
        let (got, answer) = swapper.json("/v1/embeddings", body.clone()).await;
        assert_eq!(got, 400, "{body} → {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    // Through the client every caller uses: a refusal, with the swapper's code, told apart
    // from the swapper being unavailable.
    let client = swapper.client();
    let refused = client
        .chat(&ChatRequest::new("nope", vec![ChatMessage::user("hi")]))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(404), "{refused}");
    assert_eq!(refused.code(), Some("model_not_found"));
    assert!(!refused.is_unavailable());
    let refused = client.embed("minilm", &[]).await.unwrap_err();
    assert_eq!(refused.status(), Some(400), "{refused}");
    assert_eq!(refused.code(), Some("invalid_request"));
    let down = SwapperClient::new("http://127.0.0.1:9", None)
        .embed("minilm", &["a".into()])
        .await
        .unwrap_err();
    assert!(down.is_unavailable(), "{down}");
    let malformed = swapper
        .post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let anonymous = reqwest::Client::new()
        .get(format!("{}/v1/models", swapper.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    // Still answering after all that.
    let (status, answer) = swapper
        .ask("smollm2", "What is the capital of France?", 16)
        .await;
    assert_eq!(status, 200, "{answer}");
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_budget_for_one_model_swaps_never_evicts_a_busy_one_and_persists_footprints() {
    let dir = workspace();
    // Measure both models with room for everything.
    let roomy = Swapper::start(&dir, 8192).await;
    for model in ["smollm2", "tiny"] {
        let (status, body) = roomy
            .json(&format!("/v1/swapper/models/{model}/load"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let big = roomy.model("smollm2").await["footprint_bytes"]
        .as_u64()
        .unwrap();
    let small = roomy.model("tiny").await["footprint_bytes"]
        .as_u64()
        .unwrap();
    println!(
        "figure: measured footprints smollm2 {} MiB, tiny {} MiB",
        big >> 20,
        small >> 20
    );
    roomy.stop().await;

    // A budget that holds either, not both.
    let budget_mb = (big.max(small) + big.min(small) / 2) >> 20;
    let tight = Swapper::start(&dir, budget_mb).await;
    let persisted = tight.model("smollm2").await;
    assert_eq!(persisted["measured"], true, "footprints survive a restart");
    assert_eq!(persisted["footprint_bytes"].as_u64().unwrap(), big);

    for model in ["smollm2", "tiny", "smollm2"] {
        let (status, body) = tight.ask(model, "Say hello", 4).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            tight.loaded().await,
            vec![model.to_owned()],
            "only {model} loaded"
        );
    }

    // smollm2 is busy with a long answer (a fixed 250 tokens): a request for tiny must wait for
    // it instead of evicting it.
    let streaming = tight
        .post("/v1/chat/completions")
        .json(
            &json!({"model": "smollm2", "messages": [{"role": "user", "content": "Tell a story."}],
                      "max_tokens": 250, "ignore_eos": true, "stream": true}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(streaming.status(), 200);
    let swapper = std::sync::Arc::new(tight);
    let waiting = {
        let swapper = swapper.clone();
        tokio::spawn(async move { swapper.ask("tiny", "hi", 4).await })
    };
    let mut overlapped = false;
    for _ in 0..100 {
        let busy = swapper.model("smollm2").await;
        if busy["active"] == 1 {
            assert_eq!(busy["state"], "loaded", "a busy model is never evicted");
            if swapper.model("tiny").await["queued"] == 1 {
                overlapped = true;
                assert!(!waiting.is_finished(), "tiny waits its turn");
            }
        }
        if waiting.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(overlapped, "tiny was seen waiting while smollm2 answered");
    let (rest, _) = drain(streaming).await;
    assert!(!rest.is_empty(), "the busy model finished its answer");
    let (status, body) = waiting.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(swapper.loaded().await, vec!["tiny".to_owned()]);
    // The swaps are visible in the metrics: cold loads, the time a victim took to give its
    // memory back, and generation speed.
    let metrics = reqwest::get(format!("{}/metrics", swapper.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        r#"daarion_swapper_load_seconds_count{model="smollm2",start="cold"}"#,
        r#"daarion_swapper_release_seconds_count{model="smollm2"}"#,
        r#"daarion_swapper_tokens_per_second_count{model="smollm2"}"#,
    ] {
        assert!(metrics.contains(series), "{series} missing");
    }
    let swapper = std::sync::Arc::into_inner(swapper).unwrap();
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_worker_killed_mid_answer_fails_that_request_cleanly_and_the_next_reloads() {
    let dir = workspace();
    let swapper = Swapper::start(&dir, 4096).await;
    let response = swapper
        .stream("smollm2", "Write a long story about a dragon.", 400)
        .await;
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    let pid = swapper.model("smollm2").await["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let mut rest = String::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => rest.push_str(&String::from_utf8_lossy(&c)),
            Err(_) => break,
        }
    }
    assert!(
        rest.contains("\"error\""),
        "the stream ends with an error: {rest}"
    );
    assert!(rest.contains("worker_exited"), "{rest}");

    let (status, answer) = swapper
        .ask("smollm2", "What is the capital of France?", 16)
        .await;
    assert_eq!(status, 200, "{answer}");
    let reloaded = swapper.model("smollm2").await;
    assert_ne!(reloaded["pid"].as_i64().unwrap() as i32, pid);
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_shipped_catalogue_matches_the_real_model_files() {
    use daarion_swapper::manifest::{FileState, check_file, load_all};
    let catalogue = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let models = helpers::test_models();
    for manifest in load_all(&catalogue).unwrap() {
        let state = check_file(&manifest.files(&models)[0], true).unwrap();
        // An engine installed by the system (espeak-ng) has no checksum of ours to match.
        let engine = manifest.file.is_absolute() && manifest.sha256.is_none();
        assert!(
            matches!(state, FileState::Verified { .. })
                || (engine && !matches!(state, FileState::Missing)),
            "{}: {state:?}",
            manifest.id
        );
    }
}

/// Random interleavings of chat and embedding requests for three models, operator unloads and
/// worker crashes, against a budget that cannot hold all three: no deadlock, no busy model ever
/// unloading, no moment where loaded models exceed the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_interleavings_never_deadlock_evict_a_busy_model_or_overrun_the_budget() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = workspace();
    let swapper = Arc::new(Swapper::start(&dir, 450).await);
    let budget = swapper.status().await["budget_bytes"].as_u64().unwrap();

    // Watch the ledger while everything runs.
    let running = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (swapper, running) = (swapper.clone(), running.clone());
        tokio::spawn(async move {
            let mut samples = 0;
            while running.load(Ordering::SeqCst) {
                let status = swapper.status().await;
                let models = status["models"].as_array().unwrap();
                let held: u64 = models
                    .iter()
                    // Reserved memory is booked, not used: its worker starts after the victims stop.
                    .filter(|m| !["unloaded", "reserved"].contains(&m["state"].as_str().unwrap()))
                    .map(|m| m["footprint_bytes"].as_u64().unwrap())
                    .sum();
                assert!(
                    held <= budget,
                    "budget overrun: {held} > {budget}: {status}"
                );
                for m in models {
                    if m["state"] == "unloading" {
                        assert_eq!(m["active"], 0, "a busy model was being evicted: {m}");
                    }
                }
                samples += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            samples
        })
    };

    // A fixed pseudo-random schedule, so a failure can be replayed.
    let mut seed: u64 = 0x5eed_1234;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut tasks = Vec::new();
    for step in 0..60 {
        let swapper = swapper.clone();
        let action = next() % 10;
        let delay = Duration::from_millis((next() % 40) as u64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay * (step % 6) as u32).await;
            match action {
                0..=3 => swapper.ask("tiny", "hello", 6).await.0,
                4..=6 => swapper.ask("smollm2", "Say hi", 6).await.0,
                7 | 8 => {
                    swapper
                        .json(
                            "/v1/embeddings",
                            json!({"model": "minilm", "input": "a cat on a mat"}),
                        )
                        .await
                        .0
                }
                _ => {
                    // Either kill a worker or ask for an unload.
                    let status = swapper.status().await;
                    let loaded: Vec<&Value> = status["models"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|m| m["state"] == "loaded" && m["pid"].is_number())
                        .collect();
                    match loaded.first() {
                        Some(m) if step % 2 == 0 => {
                            let pid = m["pid"].as_i64().unwrap() as i32;
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                            0
                        }
                        Some(m) => {
                            let id = m["id"].as_str().unwrap().to_owned();
                            swapper
                                .json(&format!("/v1/swapper/models/{id}/unload"), json!({}))
                                .await
                                .0
                        }
                        None => 0,
                    }
                }
            }
        }));
    }
    let outcome = tokio::time::timeout(Duration::from_secs(240), async {
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap());
        }
        statuses
    })
    .await
    .expect("no deadlock: every request finished");
    running.store(false, Ordering::SeqCst);
    let samples = watcher.await.unwrap();
    let ok = outcome.iter().filter(|s| **s == 200).count();
    let unexpected: Vec<&u16> = outcome
        .iter()
        .filter(|s| ![0, 200, 409, 429, 502].contains(*s))
        .collect();
    println!(
        "figure: stress: {ok} of {} requests answered 200, {samples} ledger samples",
        outcome.len()
    );
    assert!(unexpected.is_empty(), "{outcome:?}");
    assert!(ok >= outcome.len() / 2, "{outcome:?}");
    // Everything still works afterwards.
    for model in ["tiny", "smollm2"] {
        assert_eq!(swapper.ask(model, "hello", 4).await.0, 200);
    }
    let swapper = Arc::into_inner(swapper).unwrap();
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn transcribe(
    swapper: &Swapper,
    path: &str,
    file: Vec<u8>,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(file).file_name("speech"),
    );
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    let r = swapper.post(path).multipart(form).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Word error rate: word-level edit distance over the reference's length, ignoring case and
/// punctuation.
fn wer(reference: &str, hypothesis: &str) -> f64 {
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .filter(|w| !w.is_empty())
            .collect()
    };
    let (r, h) = (words(reference), words(hypothesis));
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut prev = row[0];
        row[0] = i;
        for j in 1..=h.len() {
            let cost = usize::from(r[i - 1] != h[j - 1]);
            let next = (row[j] + 1).min(row[j - 1] + 1).min(prev + cost);
            prev = row[j];
            row[j] = next;
        }
    }
    row[h.len()] as f64 / r.len() as f64
}

const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

#[tokio::test]
async fn whisper_transcribes_wav_and_telegram_ogg_opus_with_timestamps() {
    let dir = workspace();
    let swapper = Swapper::start(&dir, 4096).await;
    let wav = std::fs::read(helpers::test_models().join("jfk.wav")).unwrap();
    let (status, body) = transcribe(
        &swapper,
        "/v1/audio/transcriptions",
        wav.clone(),
        &[("model", "whisper")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let text: Value = serde_json::from_str(&body).unwrap();
    let text = text["text"].as_str().unwrap();
    let rate = wer(JFK, text);
    println!(
        "figure: whisper tiny.en WER on jfk.wav: {:.1} %",
        rate * 100.0
    );
    assert!(rate < 0.10, "WER {rate}: {text}");

    // The same speech as a Telegram voice message: OGG/Opus at 48 kHz.
    let pcm = daarion_audio::decode(&wav).unwrap();
    let ogg = daarion_audio::encode_ogg_opus(&pcm).unwrap();
    // verbose_json, through the client the gateway uses.
    let verbose = swapper
        .client()
        .transcribe("whisper", ogg, "voice.oga", Some("en"))
        .await
        .unwrap();
    let rate = wer(JFK, &verbose.text);
    println!(
        "figure: whisper tiny.en WER on jfk.wav as OGG/Opus: {:.1} %",
        rate * 100.0
    );
    assert!(rate < 0.10, "WER {rate}: {verbose:?}");
    assert_eq!(verbose.task, "transcribe");
    assert_eq!(verbose.language, "en");
    assert!((verbose.duration - 11.0).abs() < 0.2, "{verbose:?}");
    let segments = &verbose.segments;
    assert!(!segments.is_empty());
    assert!(segments.windows(2).all(|w| w[0].end <= w[1].start + 0.01));
    assert!(segments.iter().enumerate().all(|(i, s)| s.id == i));
    assert_eq!(swapper.model("whisper").await["state"], "loaded");
    assert_eq!(swapper.status().await["budget_source"], "configured");

    let (status, body) = transcribe(
        &swapper,
        "/v1/audio/transcriptions",
        wav,
        &[("model", "whisper"), ("response_format", "text")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.to_lowercase().contains("fellow americans"), "{body}");

    // Bad input: not audio, wrong kind of model, missing fields, bad options.
    let (status, body) = transcribe(
        &swapper,
        "/v1/audio/transcriptions",
        b"definitely not audio, just text".to_vec(),
        &[("model", "whisper")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unsupported or damaged audio"), "{body}");
    // What a caller of the client sees: a refusal it can tell the user about.
    match swapper
        .client()
        .transcribe("whisper", b"just text".to_vec(), "voice.oga", None)
        .await
    {
        Err(ClientError::Refused { status, body, .. }) => {
            assert_eq!(status, 400);
            assert!(
                body.message.contains("unsupported or damaged audio"),
                "{body:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let (status, body) = transcribe(
        &swapper,
        "/v1/audio/transcriptions",
        vec![1, 2, 3],
        &[("model", "smollm2")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("wrong_model_kind"), "{body}");
    let (status, body) = transcribe(&swapper, "/v1/audio/transcriptions", vec![1, 2, 3], &[]).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = transcribe(
        &swapper,
        "/v1/audio/transcriptions",
        vec![1, 2, 3],
        &[("model", "whisper"), ("response_format", "srt")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = transcribe(
        &swapper,
        "/v1/audio/transcriptions",
        vec![1, 2, 3],
        &[("model", "nope")],
    )
    .await;
    assert_eq!(status, 404);
    // A body that is not a form, and a recording longer than the limit.
    let r = swapper
        .post("/v1/audio/transcriptions")
        .json(&json!({"model": "whisper", "file": "jfk.wav"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
    let ten_minutes = daarion_audio::Pcm {
        samples: vec![0.0; 48_000 * 600],
        rate: 48_000,
    };
    let long = daarion_audio::encode_ogg_opus(&ten_minutes).unwrap();
    let (status, body) = transcribe(
        &swapper,
        "/v1/audio/transcriptions",
        long,
        &[("model", "whisper")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("minutes long"), "{body}");
    // Still serving after the garbage.
    let (status, _) = swapper.ask("smollm2", "Hi", 4).await;
    assert_eq!(status, 200);
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Speech (an OGG/Opus voice file) transcribed by whisper: the word error rate against what
/// was said, and what whisper answered.
async fn read_back(swapper: &Swapper, ogg: Vec<u8>, said: &str) -> (f64, Value) {
    assert!(ogg.starts_with(b"OggS"), "a Telegram voice file");
    let (status, body) = transcribe(
        swapper,
        "/v1/audio/transcriptions",
        ogg,
        &[("model", "whisper")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let heard: Value = serde_json::from_str(&body).unwrap();
    (wer(said, heard["text"].as_str().unwrap()), heard)
}

#[tokio::test]
async fn speech_from_espeak_reads_back_through_whisper() {
    let dir = workspace();
    let swapper = Swapper::start(&dir, 4096).await;
    // espeak-ng's formant voice is hard on whisper tiny.en with rare words (place names come
    // back garbled); everyday sentences read back exactly.
    let said = "Please call me back tomorrow morning.";
    let r = swapper
        .post("/v1/audio/speech")
        .json(&json!({"model": "espeak", "input": said, "response_format": "opus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/ogg");
    let (rate, heard) = read_back(&swapper, r.bytes().await.unwrap().to_vec(), said).await;
    println!(
        "figure: espeak-ng → whisper tiny.en read-back WER: {:.1} % ({})",
        rate * 100.0,
        heard["text"]
    );
    assert!(rate <= 0.2, "whisper heard {heard} for {said:?}");

    let mut hello = SpeechRequest::new("espeak", "Hello", SpeechFormat::Wav);
    hello.speed = 1.5;
    let wav = swapper.client().speech(&hello).await.unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert!(daarion_audio::decode(&wav).unwrap().seconds() > 0.2);
    let r = swapper
        .post("/v1/audio/speech")
        .json(&json!({"model": "espeak", "input": "Hi", "response_format": "pcm"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "audio/pcm");

    // Bad input, in OpenAI's error format.
    for (body, code) in [
        (
            json!({"model": "espeak", "input": "", "response_format": "opus"}),
            400,
        ),
        (json!({"model": "espeak", "input": "x".repeat(5000)}), 400),
        (
            json!({"model": "espeak", "input": "hi", "response_format": "mp3"}),
            400,
        ),
        (json!({"model": "espeak", "input": "hi", "speed": 9.0}), 400),
        (json!({"model": "smollm2", "input": "hi"}), 400),
        (json!({"model": "nope", "input": "hi"}), 404),
    ] {
        let r = swapper
            .post("/v1/audio/speech")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), code, "{body}");
        let error: Value = r.json().await.unwrap();
        assert!(error["error"]["message"].is_string(), "{error}");
    }
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Serves `body` at `/file` on a local port.
async fn serve_file(body: Vec<u8>) -> String {
    let app = axum::Router::new().route(
        "/file",
        axum::routing::get(move || {
            let body = body.clone();
            async move { body }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/file")
}

#[tokio::test]
async fn a_pull_started_from_the_api_reports_progress_and_verifies_the_checksum() {
    let dir = workspace();
    let body: Vec<u8> = (0..2_000_000u32).map(|i| (i % 253) as u8).collect();
    let url = serve_file(body.clone()).await;
    let good = dir.join("good.bin");
    std::fs::write(&good, &body).unwrap();
    let sha = daarion_swapper::manifest::sha256_file(&good).unwrap();
    std::fs::remove_file(&good).unwrap();
    for (id, sha) in [("fetched", sha.as_str()), ("corrupt", &"0".repeat(64))] {
        std::fs::write(
            dir.join(format!("manifests/{id}.toml")),
            format!(
                "id = \"{id}\"\nkind = \"chat\"\nfile = \"{}\"\nurl = \"{url}\"\nsha256 = \"{sha}\"\nestimate_mb = 1\n",
                dir.join(format!("{id}.gguf")).display()
            ),
        )
        .unwrap();
    }
    let swapper = Swapper::start(&dir, 2048).await;
    let status = swapper.status().await;
    assert_eq!(status["files_present"]["fetched"], false);
    assert_eq!(status["files_present"]["smollm2"], true);

    for id in ["fetched", "corrupt"] {
        let (code, answer) = swapper
            .json(&format!("/v1/swapper/models/{id}/pull"), json!({}))
            .await;
        assert_eq!(code, 200, "{answer}");
    }
    let mut last = Value::Null;
    for _ in 0..400 {
        last = swapper.status().await;
        if last["pulls"]["fetched"]["state"] != "running"
            && last["pulls"]["corrupt"]["state"] != "running"
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(last["pulls"]["fetched"]["state"], "done", "{last}");
    assert_eq!(last["pulls"]["fetched"]["done_bytes"], 2_000_000);
    assert_eq!(last["pulls"]["fetched"]["sha256"], sha.as_str());
    assert_eq!(last["files_present"]["fetched"], true);
    assert_eq!(std::fs::read(dir.join("fetched.gguf")).unwrap(), body);
    assert_eq!(last["pulls"]["corrupt"]["state"], "failed", "{last}");
    assert!(
        last["pulls"]["corrupt"]["error"]
            .as_str()
            .unwrap()
            .contains("checksum mismatch")
    );
    assert!(!dir.join("corrupt.gguf").exists());

    let (code, answer) = swapper
        .json("/v1/swapper/models/smollm2/pull", json!({}))
        .await;
    assert_eq!(code, 400, "a manifest without a url: {answer}");
    let (code, _) = swapper
        .json("/v1/swapper/models/nope/pull", json!({}))
        .await;
    assert_eq!(code, 404);
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn image_part(url: &str) -> Value {
    json!({"type": "image_url", "image_url": {"url": url}})
}

#[tokio::test]
async fn a_vision_model_reads_inline_images_and_bad_ones_get_clear_errors() {
    use base64::Engine as _;
    let mmproj = fixture("tiny-random-mmproj.gguf");
    let dir = workspace();
    let manifests = dir.join("manifests");
    std::fs::write(
        manifests.join("eyes.toml"),
        format!(
            "id = \"eyes\"\nkind = \"vision\"\nfile = \"tiny-random-llama.gguf\"\nmmproj = \"{}\"\ncontext = 512\nestimate_mb = 300\n",
            mmproj.display()
        ),
    )
    .unwrap();
    std::fs::write(
        manifests.join("blind.toml"),
        "id = \"blind\"\nkind = \"vision\"\nfile = \"tiny-random-llama.gguf\"\nmmproj = \"no-such-mmproj.gguf\"\nestimate_mb = 300\n",
    )
    .unwrap();
    let swapper = Swapper::start(&dir, 4096).await;
    let picture = format!(
        "data:image/bmp;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bmp(40, 30))
    );
    let ask = |model: &str, parts: Vec<Value>| {
        json!({"model": model, "max_tokens": 4,
               "messages": [{"role": "user", "content": parts}]})
    };
    let words = json!({"type": "text", "text": "What is in this picture?"});

    // The image goes through the projector into the context: the prompt grows by its tokens
    // (2x2 patches of the fixture's 28x28 input), and an answer follows. Asked through the
    // client the gateway and the router use.
    let client = swapper.client();
    let look = |parts: Vec<Part>| {
        let mut request = ChatRequest::new("eyes", vec![ChatMessage::user(parts)]);
        request.max_tokens = Some(4);
        request
    };
    let question = || Part::text("What is in this picture?");
    let text_only = client.chat(&look(vec![question()])).await.unwrap();
    let seen = client
        .chat(&look(vec![Part::image_url(&picture), question()]))
        .await
        .unwrap();
    let grown = seen.usage.prompt_tokens - text_only.usage.prompt_tokens;
    assert!(grown >= 4, "the image added {grown} tokens: {seen:?}");
    assert!(seen.text().is_some());
    assert_eq!(seen.usage.completion_tokens, 4);
    // Two images: twice the image tokens.
    let two = client
        .chat(&look(vec![
            Part::image_url(&picture),
            Part::image_url(&picture),
            question(),
        ]))
        .await
        .unwrap();
    assert!(two.usage.prompt_tokens >= seen.usage.prompt_tokens + 4);

    let not_an_image = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(b"hello, not a picture")
    );
    // A PNG signature with garbage behind it: it passes the format check, the decoder refuses it.
    let mut damaged = b"\x89PNG\r\n\x1a\n".to_vec();
    damaged.extend(b"this is no chunk of any image at all");
    let truncated = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&damaged)
    );
    for (body, code, says) in [
        (
            ask("tiny", vec![image_part(&picture), words.clone()]),
            "invalid_request",
            "cannot see images",
        ),
        (
            ask("eyes", vec![image_part("https://example.com/cat.png")]),
            "invalid_request",
            "inline data: URLs",
        ),
        (
            ask("eyes", vec![image_part(&not_an_image)]),
            "invalid_request",
            "not PNG, JPEG",
        ),
        (
            ask("eyes", vec![image_part("data:image/png;base64,@@@")]),
            "invalid_request",
            "base64",
        ),
        (
            ask("eyes", vec![json!({"type": "image_url"})]),
            "invalid_request",
            "needs its url",
        ),
        (
            ask("eyes", vec![json!({"type": "input_audio"})]),
            "invalid_request",
            "not supported",
        ),
        (
            ask("eyes", vec![image_part(&truncated)]),
            "invalid_request",
            "cannot be decoded",
        ),
    ] {
        let (status, answer) = swapper.json("/v1/chat/completions", body.clone()).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{says}: {message}");
    }
    // A vision model whose projector file is absent: the operator's error, said plainly.
    let (status, answer) = swapper
        .json(
            "/v1/chat/completions",
            ask("blind", vec![image_part(&picture)]),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no-such-mmproj.gguf") && message.contains("missing"),
        "{message}"
    );
    // The vision model still answers after all that.
    let (status, _) = swapper
        .json(
            "/v1/chat/completions",
            ask("eyes", vec![image_part(&picture)]),
        )
        .await;
    assert_eq!(status, 200);
    client
        .describe_image("eyes", &picture, "What is in this picture?", 4)
        .await
        .unwrap();
    // An image the model cannot read is the caller's mistake, not the swapper being down.
    let refused = client
        .describe_image("eyes", &truncated, "What is this?", 4)
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400), "{refused}");
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn edge_tts_voice_reads_back_through_whisper() {
    let edge = helpers::edge::start();
    let dir = workspace();
    let voice = |id: &str, voice: &str, endpoint: &str| {
        std::fs::write(
            dir.join("manifests").join(format!("{id}.toml")),
            format!(
                "id = \"{id}\"\nkind = \"tts\"\nbackend = \"edge-tts\"\nvoice = \"{voice}\"\nendpoint = \"{endpoint}\"\nestimate_mb = 10\n"
            ),
        )
        .unwrap();
    };
    voice("aria", "en-US-AriaNeural", &edge.endpoint);
    voice("nobody", "en-US-NobodyNeural", &edge.endpoint);
    voice("offline", "en-US-AriaNeural", "ws://127.0.0.1:1/v1");
    let swapper = Swapper::start(&dir, 4096).await;
    // An online voice needs nothing on disk.
    assert_eq!(swapper.status().await["files_present"]["aria"], true);

    let said = "Please call me back tomorrow morning.";
    let client = swapper.client();
    let ogg = client
        .speak("aria", said, SpeechFormat::Opus)
        .await
        .unwrap();
    let (rate, heard) = read_back(&swapper, ogg, said).await;
    println!(
        "figure: edge-tts (local service) → whisper tiny.en read-back WER: {:.1} %",
        rate * 100.0
    );
    assert!(rate <= 0.2, "whisper heard {heard} for {said:?}");

    // What the service was sent: the voice's long name, the browser's origin, MP3 at 24 kHz,
    // the speed as a rate, and the text unescaped on its side.
    let mut request = SpeechRequest::new("aria", "Tom & <Jerry>", SpeechFormat::Wav);
    request.speed = 1.5;
    let wav = client.speech(&request).await.unwrap();
    assert!(daarion_audio::decode(&wav).unwrap().seconds() > 0.2);
    let seen = edge.seen.lock().unwrap().clone();
    let last = seen.last().unwrap();
    assert_eq!(
        last.voice,
        "Microsoft Server Speech Text to Speech Voice (en-US, AriaNeural)"
    );
    assert_eq!(
        last.origin,
        "chrome-extension://jdiccldimpdaibmpdkjnbmckianbfold"
    );
    assert_eq!(last.output_format, "audio-24khz-48kbitrate-mono-mp3");
    assert_eq!(last.rate, "+50%");
    assert_eq!(last.text, "Tom & <Jerry>");

    // A voice the service hangs up on, and a service that cannot be reached: each a clear
    // error at load, in OpenAI's format; the swapper keeps serving.
    let down = client
        .speak("offline", "hello", SpeechFormat::Opus)
        .await
        .unwrap_err();
    assert!(down.is_unavailable(), "a voice that cannot load: {down}");
    assert_eq!(down.status(), Some(503));
    for (model, says) in [("nobody", "voice"), ("offline", "cannot reach")] {
        let (status, body) = swapper
            .json(
                "/v1/audio/speech",
                json!({"model": model, "input": "hello", "response_format": "opus"}),
            )
            .await;
        assert_eq!(status, 503, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{model}: {message}");
    }
    let r = swapper
        .post("/v1/audio/speech")
        .json(&json!({"model": "aria", "input": "Still here.", "response_format": "pcm"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn image_generation_checks_requests_and_names_missing_files() {
    let dir = workspace();
    let manifests = dir.join("manifests");
    // A FLUX-style model in parts whose VAE was never downloaded; a whole checkpoint that is
    // absent; and a file that is no model at all.
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"this is not a diffusion model").unwrap();
    let parts = dir.join("parts");
    std::fs::create_dir_all(&parts).unwrap();
    for name in ["flux.gguf", "clip_l.safetensors", "t5xxl.gguf"] {
        std::fs::write(parts.join(name), b"x").unwrap();
    }
    std::fs::write(
        manifests.join("flux.toml"),
        format!(
            "id = \"flux\"\nkind = \"image\"\nfile = \"{p}/flux.gguf\"\nestimate_mb = 100\n\
             [components]\nclip_l = {{ file = \"{p}/clip_l.safetensors\" }}\n\
             t5xxl = {{ file = \"{p}/t5xxl.gguf\" }}\nvae = {{ file = \"{p}/no-such-ae.safetensors\" }}\n\
             [image]\nsteps = 4\ncfg_scale = 1.0\nwidth = 1024\nheight = 1024\n",
            p = parts.display()
        ),
    )
    .unwrap();
    std::fs::write(
        manifests.join("sd15.toml"),
        "id = \"sd15\"\nkind = \"image\"\nfile = \"no-such-sd15.safetensors\"\nestimate_mb = 100\n",
    )
    .unwrap();
    std::fs::write(
        manifests.join("junk.toml"),
        format!(
            "id = \"junk\"\nkind = \"image\"\nfile = \"{}\"\nestimate_mb = 100\n",
            junk.display()
        ),
    )
    .unwrap();
    let swapper = Swapper::start(&dir, 4096).await;
    let status = swapper.status().await;
    assert_eq!(status["files_present"]["flux"], false, "the VAE is missing");
    assert_eq!(status["files_present"]["junk"], true);

    // Bad requests: 400 in OpenAI's format before any model loads.
    for (body, says) in [
        (
            json!({"model": "flux", "prompt": ""}),
            "prompt must not be empty",
        ),
        (
            json!({"model": "flux", "prompt": "a fox", "size": "1000x1000"}),
            "multiple of 64",
        ),
        (
            json!({"model": "flux", "prompt": "a fox", "n": 9}),
            "n must be",
        ),
        (
            json!({"model": "flux", "prompt": "a fox", "response_format": "url"}),
            "b64_json",
        ),
        (
            json!({"model": "flux", "prompt": "a fox", "steps": 500}),
            "steps",
        ),
        (
            json!({"model": "smollm2", "prompt": "a fox"}),
            "/v1/chat/completions",
        ),
        (json!({"prompt": "a fox"}), "model"),
    ] {
        let (status, answer) = swapper.json("/v1/images/generations", body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{says}: {message}");
    }
    let (status, answer) = swapper
        .json(
            "/v1/images/generations",
            json!({"model": "nope", "prompt": "a fox"}),
        )
        .await;
    assert_eq!(status, 404, "{answer}");

    // Missing files: the operator's error, naming the file.
    for (model, file) in [
        ("flux", "no-such-ae.safetensors"),
        ("sd15", "no-such-sd15.safetensors"),
    ] {
        let (status, answer) = swapper
            .json(
                "/v1/images/generations",
                json!({"model": model, "prompt": "a fox"}),
            )
            .await;
        assert_eq!(status, 503, "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(file) && message.contains("missing"),
            "{message}"
        );
    }
    // A file stable-diffusion.cpp cannot read: the worker says so and exits; nothing else
    // is disturbed.
    let (status, answer) = swapper
        .json(
            "/v1/images/generations",
            json!({"model": "junk", "prompt": "a fox"}),
        )
        .await;
    assert_eq!(status, 503, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("junk"), "{message}");
    assert!(swapper.loaded().await.is_empty());
    let (status, _) = swapper.ask("tiny", "Hello", 4).await;
    assert_eq!(status, 200, "the swapper keeps serving");
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

/// The decoded `b64_json` pictures and the seed of a `/v1/images/generations` answer, asked
/// through the client.
async fn draw(swapper: &Swapper, body: Value) -> (Vec<Vec<u8>>, i64) {
    use base64::Engine;
    let request: ImageRequest = serde_json::from_value(body).unwrap();
    let answer = swapper.client().generate_image(&request).await.unwrap();
    assert_eq!(answer.output_format, "png");
    let pictures = answer
        .data
        .iter()
        .map(|d| {
            base64::engine::general_purpose::STANDARD
                .decode(&d.b64_json)
                .unwrap()
        })
        .collect();
    (pictures, answer.seed)
}

#[tokio::test]
async fn image_generation_runs_stable_diffusion_for_real() {
    let dir = workspace();
    // A tiny random SD 1.x checkpoint (tests/fixtures/tiny_sd.py): the real UNet, CLIP and VAE
    // code paths; the pictures are noise.
    std::fs::write(
        dir.join("manifests").join("sketch.toml"),
        format!(
            "id = \"sketch\"\nkind = \"image\"\nfile = \"{}\"\nestimate_mb = 400\n[image]\nsteps = 2\ncfg_scale = 1.0\nwidth = 64\nheight = 64\n",
            daarion_swapper::testing::fixture("tiny-random-sd1.safetensors").display()
        ),
    )
    .unwrap();
    let swapper = Swapper::start(&dir, 4096).await;
    let generate = |body: Value| {
        let swapper = &swapper;
        async move {
            let started = std::time::Instant::now();
            let (pictures, seed) = draw(swapper, body).await;
            (pictures, seed, started.elapsed())
        }
    };
    let started = std::time::Instant::now();
    let (status, answer) = swapper
        .json("/v1/swapper/models/sketch/load", json!({}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let load = started.elapsed();
    let at_load = swapper.model("sketch").await;
    assert_eq!(at_load["footprint_source"], "rss", "{at_load}");
    let (first, seed, cold) =
        generate(json!({"model": "sketch", "prompt": "a red fox in the snow", "seed": 42})).await;
    assert_eq!(seed, 42);
    assert_eq!(first.len(), 1);
    assert_eq!(png_size(&first[0]), (64, 64), "the manifest's default size");
    let (again, _, warm) =
        generate(json!({"model": "sketch", "prompt": "a red fox in the snow", "seed": 42})).await;
    assert_eq!(again, first, "the same seed makes the same picture");
    println!(
        "figure: tiny SD 1.x 64x64, 2 steps: load {load:?}, first picture {cold:?}, warm {warm:?}"
    );
    let (other, _, _) =
        generate(json!({"model": "sketch", "prompt": "a red fox in the snow", "seed": 7})).await;
    assert_ne!(other, first, "another seed, another picture");
    let (two, fresh_seed, _) = generate(
        json!({"model": "sketch", "prompt": "two boats", "n": 2, "size": "128x64", "steps": 1}),
    )
    .await;
    assert_eq!(two.len(), 2);
    assert!(two.iter().all(|p| png_size(p) == (128, 64)));
    assert!(fresh_seed >= 0, "a seed is chosen and told: {fresh_seed}");
    // Loaded once and kept. stable-diffusion.cpp reads its weights at the first picture, so what
    // was measured at load is far below what the model holds: the high-water mark replaces it,
    // in the status and in the ledger.
    let model = swapper.model("sketch").await;
    assert_eq!(model["state"], "loaded", "{model}");
    let loaded_bytes = at_load["footprint_bytes"].as_u64().unwrap();
    let grown = until("the footprint to grow past the load's", || async {
        let model = swapper.model("sketch").await;
        let now = model["footprint_bytes"].as_u64().unwrap();
        (now > loaded_bytes + 100 * 1024 * 1024).then_some(now)
    })
    .await;
    let ledger: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("data/swapper/ledger.json")).unwrap(),
    )
    .unwrap();
    assert!(
        ledger["sketch"]["footprint_bytes"].as_u64().unwrap() >= grown,
        "the grown footprint is persisted: {ledger}"
    );
    let metrics = reqwest::get(format!("{}/metrics", swapper.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("daarion_swapper_image_seconds_count{model=\"sketch\"} 4"),
        "every request's generation time is recorded"
    );
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn image_generation_runs_flux_in_parts_for_real() {
    let dir = workspace();
    // A tiny random FLUX.1 in the files people download (tests/fixtures/tiny_flux.py): the
    // diffusion model, CLIP-L and the 16-channel autoencoder, each its own file, named as the
    // manifest's components. No T5-XXL: its shape is fixed at 4.7 billion parameters, and
    // stable-diffusion.cpp runs FLUX without it.
    let part = |name: &str| fixture(&format!("tiny-random-flux/{name}"));
    std::fs::write(
        dir.join("manifests").join("lighthouse.toml"),
        format!(
            "id = \"lighthouse\"\nkind = \"image\"\nfile = \"{}\"\nestimate_mb = 400\n\
             [components]\nclip_l = {{ file = \"{}\" }}\nvae = {{ file = \"{}\" }}\n\
             [image]\nsteps = 2\ncfg_scale = 1.0\nguidance = 3.5\nwidth = 64\nheight = 64\n",
            part("flux.safetensors").display(),
            part("clip_l.safetensors").display(),
            part("ae.safetensors").display(),
        ),
    )
    .unwrap();
    let swapper = Swapper::start(&dir, 4096).await;
    assert_eq!(swapper.status().await["files_present"]["lighthouse"], true);
    let body = |seed: i64, guidance: f64| json!({"model": "lighthouse", "prompt": "a lighthouse at dusk", "seed": seed, "guidance": guidance});
    let started = std::time::Instant::now();
    let (first, seed) = draw(&swapper, body(11, 3.5)).await;
    let cold = started.elapsed();
    assert_eq!(seed, 11);
    assert_eq!(first.len(), 1);
    assert_eq!(png_size(&first[0]), (64, 64), "the manifest's default size");
    let started = std::time::Instant::now();
    let (again, _) = draw(&swapper, body(11, 3.5)).await;
    let warm = started.elapsed();
    assert_eq!(again, first, "the same seed makes the same picture");
    println!("figure: tiny FLUX.1 in parts 64x64, 2 steps: first picture {cold:?}, warm {warm:?}");
    // The guidance reaches the model's distilled-guidance embedder.
    let (guided, _) = draw(&swapper, body(11, 9.0)).await;
    assert_ne!(guided, first, "another guidance, another picture");
    let (wide, _) = draw(
        &swapper,
        json!({"model": "lighthouse", "prompt": "a harbour", "size": "128x64", "steps": 1}),
    )
    .await;
    assert_eq!(png_size(&wide[0]), (128, 64));
    let model = swapper.model("lighthouse").await;
    assert_eq!(model["state"], "loaded", "loaded once and kept: {model}");
    swapper.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

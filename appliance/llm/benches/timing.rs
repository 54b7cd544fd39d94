//! How long the provider clients take to give up or to retry, next to the limits they were
//! given: a 429 retried after `Retry-After: 1`, a stream that stalls (300 ms limit), a server
//! that never answers (500 ms first-byte limit). The tests only guard against hanging; these
//! are the figures. Run: `cargo bench -p daarion-llm --bench timing` (loopback only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use daarion_llm::testing::{Fake, Reply, openai_answer, sse};
use daarion_llm::{
    ChatRequest, LlmError, Message, OpenAiCompatible, Provider, Resilient, RetryPolicy, Role,
    Timeouts, collect,
};
use serde_json::json;

const FIRST_BYTE: Duration = Duration::from_millis(500);
const STALL: Duration = Duration::from_millis(300);

fn request() -> ChatRequest {
    ChatRequest {
        model: "any".into(),
        messages: vec![Message::new(Role::User, "Hi")],
        tools: vec![],
        temperature: None,
        max_tokens: Some(8),
    }
}

async fn provider(fake: &Fake) -> OpenAiCompatible {
    let addr = fake.serve().await;
    OpenAiCompatible::new(
        "bench",
        format!("http://{addr}/v1"),
        None,
        Timeouts {
            connect: Duration::from_secs(2),
            first_byte: FIRST_BYTE,
            stall: STALL,
        },
    )
}

fn row(name: &str, limit: Duration, mut samples: Vec<f64>) {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<40} {:>8.0} {:>8.1} {:>8.1} {:>6}",
        limit.as_secs_f64() * 1e3,
        at(0.5),
        at(1.0),
        samples.len()
    );
}

#[tokio::main]
async fn main() {
    println!("provider timing benchmark (ms; loopback fake provider)");
    println!(
        "{:<40} {:>8} {:>8} {:>8} {:>6}",
        "measure", "limit", "p50", "max", "runs"
    );

    let mut samples = Vec::new();
    for _ in 0..5 {
        let fake = Fake::default();
        fake.then(Reply::Status {
            status: 429,
            body: json!({"error": {"message": "rate limited"}}).to_string(),
            retry_after: Some(1),
        })
        .then(openai_answer("ok"));
        let resilient = Resilient::new(
            Arc::new(provider(&fake).await),
            RetryPolicy {
                max_retries: 3,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_secs(5),
            },
        );
        let started = Instant::now();
        let answer = collect(resilient.chat_stream(request()).await.unwrap())
            .await
            .unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(answer.content, "ok");
    }
    row(
        "429 with Retry-After: 1, to the answer",
        Duration::from_secs(1),
        samples,
    );

    let mut samples = Vec::new();
    for _ in 0..20 {
        let fake = Fake::default();
        fake.then(Reply::Stream {
            chunks: sse(&[json!({"choices": [{"index": 0, "delta": {"content": "partial"}}]})])
                .into_iter()
                .take(1)
                .collect(),
            gap: Duration::from_millis(1),
            stall: true,
        });
        let provider = provider(&fake).await;
        let started = Instant::now();
        let err = collect(provider.chat_stream(request()).await.unwrap())
            .await
            .unwrap_err();
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(matches!(err, LlmError::Stalled { .. }), "{err}");
    }
    row("stalled stream, request to error", STALL, samples);

    let mut samples = Vec::new();
    for _ in 0..10 {
        let fake = Fake::default();
        fake.then(Reply::Hang);
        let provider = provider(&fake).await;
        let started = Instant::now();
        let err = provider.chat_stream(request()).await.err().unwrap();
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        assert!(matches!(err, LlmError::Timeout { .. }), "{err}");
    }
    row("silent server, request to error", FIRST_BYTE, samples);
}

//! The router's own overhead per turn: admission (routing, policy, quota), memory reads and
//! writes, the event on the bus and the settlement — everything but the model, which here is a
//! local OpenAI-compatible server that answers at once. Printed at 1, 10 and 100 concurrent
//! conversations, next to the bare model call as the reference.
//!
//! `cargo bench -p daarion-router --bench router` (needs PostgreSQL, Redis and NATS).

#[path = "../tests/helpers/mod.rs"]
mod helpers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use daarion_llm::testing::{Reply, sse};
use daarion_llm::{ChatRequest, Message, OpenAiCompatible, Provider, Role, Timeouts, collect};
use helpers::Stack;
use serde_json::json;

fn instant_answer() -> Reply {
    Reply::Stream {
        chunks: sse(&[
            json!({"choices": [{"index": 0, "delta": {"content": "ok"}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}),
        ]),
        gap: Duration::ZERO,
        stall: false,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn row(name: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort();
    println!(
        "| {name:<34} | {:>6} | {:>8.2} | {:>8.2} | {:>8.0} |",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.len() as f64 / wall.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let stack = Arc::new(Stack::start(false).await);
    let fake = stack.fake().await;
    fake.always(instant_answer());
    stack
        .agent(
            "a",
            "You are a.",
            Some(json!({"tools": [], "memory_hits": 3})),
            None,
        )
        .await;

    println!("| measure                            |  turns |  p50 ms  |  p99 ms  |  turns/s |");
    println!("| ---------------------------------- | ------ | -------- | -------- | -------- |");

    // Reference: the model call alone, through the same client the router uses.
    let provider_base = stack.plane.get("/config/providers.fake").await.1["value"]["base_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let direct = OpenAiCompatible::new("fake", provider_base, None, Timeouts::default());
    let mut samples = Vec::new();
    let wall = Instant::now();
    for _ in 0..300 {
        let started = Instant::now();
        let request = ChatRequest {
            model: "m".into(),
            messages: vec![Message::new(Role::User, "hi")],
            tools: Vec::new(),
            temperature: None,
            max_tokens: Some(16),
        };
        collect(direct.chat_stream(request).await.unwrap())
            .await
            .unwrap();
        samples.push(started.elapsed());
    }
    row("reference: the model call alone", samples, wall.elapsed());

    for (conversations, turns_each) in [(1usize, 200usize), (10, 30), (100, 4)] {
        let wall = Instant::now();
        let tasks: Vec<_> = (0..conversations)
            .map(|c| {
                let stack = stack.clone();
                tokio::spawn(async move {
                    let mut samples = Vec::with_capacity(turns_each);
                    for t in 0..turns_each {
                        let message = Stack::message(
                            &format!("bench-{conversations}-{c}"),
                            &format!("question number {t} about the weather"),
                        );
                        let started = Instant::now();
                        let events = stack.route(&message).await;
                        samples.push(started.elapsed());
                        assert!(events.iter().any(|(n, _)| n == "message"), "{events:?}");
                    }
                    samples
                })
            })
            .collect();
        let mut samples = Vec::new();
        for task in tasks {
            samples.extend(task.await.unwrap());
        }
        row(
            &format!("router turn, {conversations} concurrent"),
            samples,
            wall.elapsed(),
        );
    }
    match Arc::try_unwrap(stack) {
        Ok(stack) => stack.stop().await,
        Err(_) => unreachable!("every task finished"),
    }
}

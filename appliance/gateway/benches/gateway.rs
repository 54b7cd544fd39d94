//! The gateway's webhook throughput and the latency it adds per message.
//!
//! 1. Accepted updates per second: 100 concurrent senders post updates to the webhook (each is
//!    checked, stored on the bus, marked seen and answered).
//! 2. Latency per message at 100 concurrent chats, with the real router, memory and control plane
//!    and an instant model: webhook POST → the answer complete in the fake Telegram chat, next to
//!    the same turn asked of the router directly; the difference is the gateway's share.
//!    Telegram's own pacing (1 message/s per chat, 30/s overall) is replaced by fast limits with
//!    no global cap, or it alone would set the figure (100 answers at 30/s take 3.3 s).
//!
//! `cargo bench -p daarion-gateway --bench gateway` (needs PostgreSQL, Redis and NATS).

#[path = "../tests/helpers/mod.rs"]
mod helpers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use daarion_llm::testing::{Reply, sse};
use helpers::{Gateway, text_update};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn row(name: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort();
    println!(
        "| {name:<40} | {:>6} | {:>8.2} | {:>8.2} | {:>8.0} |",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.len() as f64 / wall.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let limits = daarion_gateway::Limits {
        private_interval: Duration::from_millis(50),
        group_interval: Duration::from_millis(100),
        global_interval: Duration::ZERO,
    };
    let gw = Arc::new(Gateway::start_with(false, Some("a"), limits).await);
    let fake = gw.stack.fake().await;
    fake.always(Reply::Stream {
        chunks: sse(&[
            json!({"choices": [{"index": 0, "delta": {"content": "ok"}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}),
        ]),
        gap: Duration::ZERO,
        stall: false,
    });
    gw.stack
        .config("agents.a", json!({"tools": [], "memory_hits": 0}))
        .await;

    println!(
        "| measure                                  |  count |  p50 ms  |  p99 ms  |  per s   |"
    );
    println!(
        "| ---------------------------------------- | ------ | -------- | -------- | -------- |"
    );

    // 1. Webhook acceptance: updates of a kind the gateway skips, so only the webhook is timed.
    let wall = Instant::now();
    let senders: Vec<_> = (0..100)
        .map(|s| {
            let gw = gw.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                for i in 0..30 {
                    let update = json!({"update_id": 1_000_000 + s * 1000 + i, "poll": {"id": "p", "question": "?"}});
                    let started = Instant::now();
                    let (status, _) = gw.post(&update).await;
                    assert_eq!(status, 200);
                    samples.push(started.elapsed());
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for s in senders {
        samples.extend(s.await.unwrap());
    }
    row(
        "webhook: update accepted (100 senders)",
        samples,
        wall.elapsed(),
    );

    // 2. Whole messages at 100 concurrent chats, three rounds.
    for round in 0..3 {
        let wall = Instant::now();
        let chats: Vec<_> = (0..100)
            .map(|c| {
                let gw = gw.clone();
                tokio::spawn(async move {
                    let chat = 10_000 + c;
                    let before = gw.telegram.shown(chat).len();
                    let started = Instant::now();
                    let (status, _) = gw
                        .post(&text_update(chat, chat, &format!("round {round}"), false))
                        .await;
                    assert_eq!(status, 200);
                    loop {
                        let shown = gw.telegram.shown(chat);
                        if shown.len() > before && shown.last().is_some_and(|m| m == "ok") {
                            return started.elapsed();
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                })
            })
            .collect();
        let mut samples = Vec::new();
        for c in chats {
            samples.extend([c.await.unwrap()]);
        }
        if round > 0 {
            row(
                &format!("telegram message answered, round {round}"),
                samples,
                wall.elapsed(),
            );
        }
    }

    // Reference: the same turn asked of the router directly, 100 at once.
    for round in 0..2 {
        let wall = Instant::now();
        let chats: Vec<_> = (0..100)
            .map(|c| {
                let gw = gw.clone();
                tokio::spawn(async move {
                    let mut message = helpers::stack::Stack::message(
                        &format!("direct-{c}"),
                        &format!("round {round}"),
                    );
                    message["chat_id"] = json!(format!("direct-{c}"));
                    let started = Instant::now();
                    let events = gw.stack.route(&message).await;
                    assert!(events.iter().any(|(n, _)| n == "message"));
                    started.elapsed()
                })
            })
            .collect();
        let mut samples = Vec::new();
        for c in chats {
            samples.push(c.await.unwrap());
        }
        if round > 0 {
            row("reference: router turn directly", samples, wall.elapsed());
        }
    }
    match Arc::try_unwrap(gw) {
        Ok(gw) => gw.stop().await,
        Err(_) => unreachable!("every task finished"),
    }
}

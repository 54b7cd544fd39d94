//! Bus throughput and latency against the local NATS server, next to a bare async-nats loop
//! doing the same work. Run: `cargo bench -p daarion-bus --bench bus` (NATS at 127.0.0.1:4222 or
//! DAARION_TEST_NATS_URL). Prints a table; the ratio column is daarion / bare.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::consumer::PullConsumer;
use daarion_bus::testing::TestBus;
use daarion_bus::topology::MEMORY_INDEXER;
use daarion_bus::{Envelope, consume};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

const N: usize = 2000;
const PAYLOAD: usize = 1024;

#[derive(Clone, Serialize, Deserialize)]
struct Payload {
    sent_ns: u128,
    data: String,
}

/// Published as `memory.store.bench`, so the memory-indexer's stream and consumer carry it.
impl daarion_bus::Event for Payload {
    const TYPE: &'static str = "memory.store";
    const SCHEMA_VERSION: u32 = 1;
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn payload() -> Payload {
    Payload {
        sent_ns: now_ns(),
        data: "x".repeat(PAYLOAD),
    }
}

struct Row {
    name: &'static str,
    per_sec: f64,
    p50_us: f64,
    p99_us: f64,
}

fn row(name: &'static str, elapsed: Duration, mut lat_us: Vec<f64>) -> Row {
    lat_us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pick = |q: f64| lat_us[((lat_us.len() as f64 - 1.0) * q).round() as usize];
    Row {
        name,
        per_sec: lat_us.len() as f64 / elapsed.as_secs_f64(),
        p50_us: pick(0.50),
        p99_us: pick(0.99),
    }
}

async fn publish_daarion(t: &TestBus) -> Row {
    let mut lat = Vec::with_capacity(N);
    let started = Instant::now();
    for _ in 0..N {
        let event = Envelope::new("memory.store.bench", "bench", payload());
        let t0 = Instant::now();
        t.bus.publish(&event).await.unwrap();
        lat.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    row("publish+ack  daarion", started.elapsed(), lat)
}

async fn publish_bare(t: &TestBus) -> Row {
    let js = t.bus.jetstream().clone();
    let subject = t.bus.naming().subject("memory.store.bench");
    let mut lat = Vec::with_capacity(N);
    let started = Instant::now();
    for _ in 0..N {
        let body = serde_json::to_vec(&payload()).unwrap();
        let t0 = Instant::now();
        js.publish(subject.clone(), body.into())
            .await
            .unwrap()
            .await
            .unwrap();
        lat.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    row("publish+ack  bare", started.elapsed(), lat)
}

async fn e2e_daarion(t: &TestBus) -> Row {
    let lat = Arc::new(Mutex::new(Vec::with_capacity(N)));
    let shutdown = CancellationToken::new();
    let consumer = {
        let (bus, lat, shutdown) = (t.bus.clone(), lat.clone(), shutdown.clone());
        tokio::spawn(async move {
            consume(
                &bus,
                MEMORY_INDEXER,
                shutdown.clone(),
                |e: Envelope<Payload>| {
                    let lat = lat.clone();
                    let shutdown = shutdown.clone();
                    async move {
                        let mut lat = lat.lock().unwrap();
                        lat.push((now_ns() - e.payload.sent_ns) as f64 / 1e3);
                        if lat.len() == N {
                            shutdown.cancel();
                        }
                        Ok(())
                    }
                },
            )
            .await
            .unwrap();
        })
    };
    let started = Instant::now();
    for _ in 0..N {
        t.bus
            .publish(&Envelope::new("memory.store.bench", "bench", payload()))
            .await
            .unwrap();
    }
    consumer.await.unwrap();
    let elapsed = started.elapsed();
    let lat = lat.lock().unwrap().clone();
    row("e2e          daarion", elapsed, lat)
}

async fn e2e_bare(t: &TestBus) -> Row {
    let js = t.bus.jetstream().clone();
    let subject = t.bus.naming().subject("memory.store.bench");
    let stream = js
        .get_stream(t.bus.naming().stream("MEMORY"))
        .await
        .unwrap();
    let consumer: PullConsumer = stream.get_consumer("memory-indexer").await.unwrap();
    let reader = tokio::spawn(async move {
        let mut messages = consumer.messages().await.unwrap();
        let mut lat = Vec::with_capacity(N);
        while lat.len() < N {
            let m = messages.next().await.unwrap().unwrap();
            let p: Payload = serde_json::from_slice(&m.payload).unwrap();
            m.double_ack().await.unwrap();
            lat.push((now_ns() - p.sent_ns) as f64 / 1e3);
        }
        lat
    });
    let started = Instant::now();
    for _ in 0..N {
        let body = serde_json::to_vec(&payload()).unwrap();
        js.publish(subject.clone(), body.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let lat = reader.await.unwrap();
    row("e2e          bare", started.elapsed(), lat)
}

#[tokio::main]
async fn main() {
    // Each measurement on a fresh topology so stream size does not favour either side.
    let mut rows = Vec::new();
    for which in 0..4 {
        let t = TestBus::new().await;
        // Warm-up: connections, stream files, consumer state.
        for _ in 0..100 {
            t.bus
                .publish(&Envelope::new("audit.warmup", "bench", ()))
                .await
                .unwrap();
        }
        rows.push(match which {
            0 => publish_daarion(&t).await,
            1 => publish_bare(&t).await,
            2 => e2e_daarion(&t).await,
            _ => e2e_bare(&t).await,
        });
        t.cleanup().await;
    }
    println!(
        "bus benchmark: {N} events of {PAYLOAD} B each, one publisher awaiting every ack, one consumer acking each message (double ack)"
    );
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>12}",
        "measure", "msg/s", "p50 µs", "p99 µs", "msg/s ratio"
    );
    for pair in rows.chunks(2) {
        let ratio = pair[0].per_sec / pair[1].per_sec;
        for (i, r) in pair.iter().enumerate() {
            let ratio = if i == 0 {
                format!("{ratio:.2}")
            } else {
                "1.00".into()
            };
            println!(
                "{:<22} {:>10.0} {:>10.0} {:>10.0} {:>12}",
                r.name, r.per_sec, r.p50_us, r.p99_us, ratio
            );
        }
    }
}

//! Control-plane figures on this machine: a cached policy decision (next to the same decision
//! asked of the control plane over HTTP), quota check-and-consume under concurrent load
//! (next to a bare Redis INCRBY round trip, the floor it is built on), and how soon a prompt
//! change is announced on NATS and seen through a client's cache (the tests only guard these
//! against hanging).
//! Run: `cargo bench -p daarion-control-client --bench control` (PostgreSQL, Redis, NATS here).

use std::time::{Duration, Instant};

use daarion_client::{Timeouts, http_client};
use daarion_control_client::{ControlClient, Usage};
use daarion_control_plane::testing::Plane;
use daarion_policy::Action;
use futures::StreamExt;
use serde_json::json;

fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

fn row(name: &str, samples: Vec<f64>, elapsed: Duration) {
    let n = samples.len();
    let (p50, p99) = percentiles(samples);
    println!(
        "{name:<44} {:>10.1} {:>10.1} {:>12.0}",
        p50,
        p99,
        n as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let plane = Plane::start().await;
    plane
        .post("/agents", json!({"id": "helper", "name": "Helper"}))
        .await;
    plane
        .put(
            "/policy/helper",
            json!({"document": {"roles": {"user": {"use": true, "tools": {"allow": ["search_*"]}}}}}),
        )
        .await;
    plane
        .put("/users/alice/roles", json!({"roles": ["user"]}))
        .await;
    plane
        .put(
            "/quotas/limits/role/user",
            json!({"requests_per_minute": 100000000, "tokens_per_day": 100000000000i64}),
        )
        .await;
    let reader = plane.token(&["read", "quota:consume"]).await;
    let client = ControlClient::new(plane.url(""), reader.clone(), Duration::from_secs(3600));

    println!("control-plane benchmark (µs; single node, loopback)");
    println!(
        "{:<44} {:>10} {:>10} {:>12}",
        "measure", "p50", "p99", "ops/s"
    );

    // Cached decision: policy and roles in the client's cache.
    client
        .decide("alice", "helper", &Action::Tool("search_memory"))
        .await
        .unwrap();
    let n = 100_000;
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let report = client
            .decide("alice", "helper", &Action::Tool("search_memory"))
            .await
            .unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(report.decision.allow);
    }
    row("policy decision, client cache", samples, started.elapsed());

    let http = http_client(Timeouts::total(Duration::from_secs(5)));
    let n = 2_000;
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let r = http
            .post(plane.url("/policy/helper/decide"))
            .bearer_auth(&reader)
            .json(&json!({"user_id": "alice", "action": "tool", "resource": "search_memory"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    row(
        "  reference: same decision over HTTP",
        samples,
        started.elapsed(),
    );

    // Quota check-and-consume, 32 callers at once.
    let callers = 32;
    let per_caller = 150;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..callers {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(per_caller);
            for _ in 0..per_caller {
                let t = Instant::now();
                client
                    .consume(
                        &format!("user-{}", c % 8),
                        &Usage {
                            requests: 1,
                            tokens: 100,
                            ..Usage::default()
                        },
                    )
                    .await
                    .unwrap();
                samples.push(t.elapsed().as_secs_f64() * 1e6);
            }
            samples
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.unwrap());
    }
    row(
        "quota check-and-consume, 32 concurrent",
        samples,
        started.elapsed(),
    );

    let redis = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let key = format!("bench:{}:incr", std::process::id());
    let n = 5_000;
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let _: i64 = redis::cmd("INCRBY")
            .arg(&key)
            .arg(1)
            .query_async(&mut conn)
            .await
            .unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    row(
        "  reference: bare Redis INCRBY, 1 caller",
        samples,
        started.elapsed(),
    );

    // A prompt change: POST to its announcement on the bus, and to a watching client's cache
    // (an hour of TTL, so only the announcement can refresh it).
    let subject = plane.bus.bus.naming().subject("control.changed.prompt");
    let mut announced = plane.bus.bus.client().subscribe(subject).await.unwrap();
    plane.bus.bus.client().flush().await.unwrap();
    let watched = ControlClient::new(plane.url(""), reader.clone(), Duration::from_secs(3600));
    let watcher = watched.watch(&plane.bus.bus).await.unwrap();
    plane
        .post("/prompts/helper", json!({"content": "Version 1."}))
        .await;
    let mut version = 1;
    while watched.active_prompt("helper").await.unwrap().version != version {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), announced.next()).await
    {
    }
    let n = 50;
    let (mut to_bus, mut to_cache) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let started = Instant::now();
    for _ in 0..n {
        version += 1;
        let t = Instant::now();
        let changed = plane.post(
            "/prompts/helper",
            json!({"content": format!("Version {version}.")}),
        );
        let seen = async {
            announced.next().await.expect("the subscription stays open");
            t.elapsed()
        };
        let (_, seen) = tokio::join!(changed, seen);
        to_bus.push(seen.as_secs_f64() * 1e6);
        loop {
            let prompt = watched.active_prompt("helper").await.unwrap();
            if prompt.version == version {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(30), "never invalidated");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        to_cache.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let elapsed = started.elapsed();
    row("prompt change to announcement on NATS", to_bus, elapsed);
    row(
        "prompt change to a watching client's cache",
        to_cache,
        elapsed,
    );
    watcher.abort();
    plane.stop().await;
}

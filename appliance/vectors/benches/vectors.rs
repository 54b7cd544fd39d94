//! Vector search in Qdrant's embedded engine against the brute-force reference, for 10k and 100k
//! stored chunks of synthetic 384-dimensional vectors (MiniLM's size), clustered the way sentence
//! embeddings are: indexing throughput, search p50/p99 for one user's points, and recall@10
//! against the exact answer a brute-force cosine scan gives (itself timed as the reference).
//! `cargo bench -p daarion-vectors` (a release build; no services needed). The end-to-end
//! figures with PostgreSQL, the bus and real MiniLM embeddings are in the memory crate's bench.

use std::time::{Duration, Instant};

use daarion_vectors::{Collection, EdgeStore, Point, Query, Scope, VectorStore};
use rand::{Rng as _, SeedableRng};
use uuid::Uuid;

const DIM: usize = 384;
const QUERIES: usize = 200;
const USERS: usize = 10;

/// Seeded, so every run measures the same data.
type Rng = rand::rngs::StdRng;

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Points around 64 topic centres, as sentence embeddings cluster by topic.
fn data(n: usize, rng: &mut Rng) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let centres: Vec<Vec<f32>> = (0..64)
        .map(|_| normalised((0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect()))
        .collect();
    let around = |rng: &mut Rng| {
        let c = &centres[rng.random_range(0..64)];
        normalised(
            c.iter()
                .map(|x| x + 0.6 * rng.random_range(-1.0f32..1.0) / (DIM as f32).sqrt() * 4.0)
                .collect(),
        )
    };
    let points = (0..n).map(|_| around(rng)).collect();
    let queries = (0..QUERIES).map(|_| around(rng)).collect();
    (points, queries)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The exact top 10 of one user's points by cosine (vectors are normalised: a dot product).
fn brute_force(points: &[Vec<f32>], owners: &[usize], user: usize, q: &[f32]) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = points
        .iter()
        .enumerate()
        .filter(|(i, _)| owners[*i] == user)
        .map(|(i, p)| (dot(p, q), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(10).map(|(_, i)| i).collect()
}

async fn run(n: usize) {
    let mut rng = Rng::seed_from_u64(0x9E37_79B9_7F4A_7C15 ^ n as u64);
    let (points, queries) = data(n, &mut rng);
    let users: Vec<Uuid> = (0..USERS).map(|_| Uuid::new_v4()).collect();
    let owners: Vec<usize> = (0..n).map(|i| i % USERS).collect();
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let dir =
        std::env::temp_dir().join(format!("daarion-vectors-bench-{}", Uuid::new_v4().simple()));
    let store = EdgeStore::open(&dir).unwrap();

    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let batch = chunk
            .iter()
            .map(|&i| Point {
                id: ids[i],
                kind: "chunk".into(),
                scope: Scope {
                    user_id: users[owners[i]],
                    agent_id: None,
                    chat_id: None,
                },
                vector: points[i].clone(),
            })
            .collect();
        store.upsert(Collection::Chunks, batch).await.unwrap();
    }
    let written = started.elapsed();
    let started = Instant::now();
    store.optimize().await.unwrap();
    let optimized = started.elapsed();

    let mut edge = Vec::new();
    let mut exact = Vec::new();
    let mut recall = 0.0;
    for (k, q) in queries.iter().enumerate() {
        let user = k % USERS;
        let t = Instant::now();
        let hits = store
            .search(
                Collection::Chunks,
                Query {
                    vector: q.clone(),
                    user_id: users[user],
                    agent_id: None,
                    kinds: Vec::new(),
                    limit: 10,
                },
            )
            .await
            .unwrap();
        edge.push(t.elapsed());
        let t = Instant::now();
        let truth = brute_force(&points, &owners, user, q);
        exact.push(t.elapsed());
        let truth_ids: Vec<Uuid> = truth.iter().map(|&i| ids[i]).collect();
        recall += hits.iter().filter(|h| truth_ids.contains(&h.id)).count() as f64 / 10.0;
    }
    edge.sort();
    exact.sort();
    println!(
        "| {n:>7} | {:>8.0} pts/s | {:>6.1} s | {:>6.2} | {:>6.2} | {:>6.2} | {:>6.2} | {:>5.3} |",
        n as f64 / written.as_secs_f64(),
        optimized.as_secs_f64(),
        percentile(&edge, 0.5),
        percentile(&edge, 0.99),
        percentile(&exact, 0.5),
        percentile(&exact, 0.99),
        recall / QUERIES as f64,
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main]
async fn main() {
    println!(
        "Qdrant Edge (qdrant-edge 0.7.2) vs brute-force cosine scan, {DIM} dims, {USERS} users, top 10 of one user's points, {QUERIES} queries"
    );
    println!(
        "| points  | upsert (flushed per 1k) | optimize | edge p50 ms | edge p99 ms | scan p50 ms | scan p99 ms | recall@10 |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for n in [10_000, 100_000] {
        run(n).await;
    }
}

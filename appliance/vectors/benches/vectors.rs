//! Vector search in Qdrant's embedded engine, and in a Qdrant server when
//! `DAARION_TEST_QDRANT_URL` names one (gRPC, e.g. the one `tests/setup.sh` starts on
//! `http://127.0.0.1:16334`), against the brute-force reference, for 10k and 100k stored chunks
//! of synthetic 384-dimensional vectors (MiniLM's size), clustered the way sentence embeddings
//! are: indexing throughput, search p50/p99 for one user's points, and recall@10 against the
//! exact answer a brute-force cosine scan gives (itself timed as the reference).
//! `cargo bench -p daarion-vectors [-- 10000]` (a release build; the sizes to run may be given).
//! The end-to-end figures with PostgreSQL, the bus and real MiniLM embeddings are in the memory
//! crate's bench.

use std::time::{Duration, Instant};

use daarion_vectors::{Collection, EdgeStore, Point, Query, Scope, ServerStore, VectorStore};
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

/// One backend's figures at one size.
struct Measured {
    upserts_per_s: f64,
    optimize: Duration,
    search: Vec<Duration>,
    recall: f64,
}

/// Writes every point (flushed per batch of 1k), waits for the backend's index, then searches.
async fn measure(
    store: &dyn VectorStore,
    optimize: impl std::future::Future<Output = ()>,
    points: &[Point],
    queries: &[Query],
    truth: &[Vec<Uuid>],
) -> Measured {
    let started = Instant::now();
    for batch in points.chunks(1_000) {
        store
            .upsert(Collection::Chunks, batch.to_vec())
            .await
            .unwrap();
    }
    let upserts_per_s = points.len() as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    optimize.await;
    let optimize = started.elapsed();
    let mut search = Vec::new();
    let mut recall = 0.0;
    for (query, truth) in queries.iter().zip(truth) {
        let t = Instant::now();
        let hits = store
            .search(Collection::Chunks, query.clone())
            .await
            .unwrap();
        search.push(t.elapsed());
        recall += hits.iter().filter(|h| truth.contains(&h.id)).count() as f64 / 10.0;
    }
    search.sort();
    Measured {
        upserts_per_s,
        optimize,
        search,
        recall: recall / queries.len() as f64,
    }
}

/// Until the server's optimizers are done (status green): the HNSW index it builds in the
/// background past its indexing threshold, so searches are timed on the index, as in service.
async fn server_indexed(url: &str, collection: &str) {
    let client = qdrant_client::Qdrant::from_url(url)
        .skip_compatibility_check()
        .build()
        .unwrap();
    loop {
        let info = client.collection_info(collection).await.unwrap();
        let status = info.result.map(|r| r.status).unwrap_or_default();
        if status == qdrant_client::qdrant::CollectionStatus::Green as i32 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn row(n: usize, backend: &str, m: &Measured) {
    println!(
        "| {n:>7} | {backend:<13} | {:>8.0} | {:>6.1} | {:>6.2} | {:>6.2} | {:>5.3} |",
        m.upserts_per_s,
        m.optimize.as_secs_f64(),
        percentile(&m.search, 0.5),
        percentile(&m.search, 0.99),
        m.recall,
    );
}

async fn run(n: usize, server: Option<&str>) {
    let mut rng = Rng::seed_from_u64(0x9E37_79B9_7F4A_7C15 ^ n as u64);
    let (vectors, query_vectors) = data(n, &mut rng);
    let users: Vec<Uuid> = (0..USERS).map(|_| Uuid::new_v4()).collect();
    let owners: Vec<usize> = (0..n).map(|i| i % USERS).collect();
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let points: Vec<Point> = (0..n)
        .map(|i| Point {
            id: ids[i],
            kind: "chunk".into(),
            scope: Scope {
                user_id: users[owners[i]],
                agent_id: None,
                chat_id: None,
            },
            vector: vectors[i].clone(),
        })
        .collect();
    let queries: Vec<Query> = query_vectors
        .iter()
        .enumerate()
        .map(|(k, q)| Query {
            vector: q.clone(),
            user_id: users[k % USERS],
            agent_id: None,
            kinds: Vec::new(),
            limit: 10,
        })
        .collect();
    let mut scan = Vec::new();
    let truth: Vec<Vec<Uuid>> = query_vectors
        .iter()
        .enumerate()
        .map(|(k, q)| {
            let t = Instant::now();
            let top = brute_force(&vectors, &owners, k % USERS, q);
            scan.push(t.elapsed());
            top.iter().map(|&i| ids[i]).collect()
        })
        .collect();
    scan.sort();

    let dir =
        std::env::temp_dir().join(format!("daarion-vectors-bench-{}", Uuid::new_v4().simple()));
    let store = EdgeStore::open(&dir).unwrap();
    let optimize = async { store.optimize().await.unwrap() };
    let edge = measure(&store, optimize, &points, &queries, &truth).await;
    row(n, "edge", &edge);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);

    if let Some(url) = server {
        let prefix = format!("bench_{}_", Uuid::new_v4().simple());
        let store = ServerStore::connect(url, None, &prefix, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("DAARION_TEST_QDRANT_URL={url}: {e}"));
        let collection = format!("{prefix}{}", Collection::Chunks.name());
        let optimize = server_indexed(url, &collection);
        let measured = measure(&store, optimize, &points, &queries, &truth).await;
        row(n, "qdrant server", &measured);
        store.drop_collections().await.unwrap();
    }
    println!(
        "| {n:>7} | {:<13} |        - |      - | {:>6.2} | {:>6.2} | 1.000 |",
        "scan",
        percentile(&scan, 0.5),
        percentile(&scan, 0.99),
    );
}

#[tokio::main]
async fn main() {
    let server = std::env::var("DAARION_TEST_QDRANT_URL").ok();
    // Sizes given after `--` (numbers only: cargo bench passes `--bench` too).
    let mut sizes: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000];
    }
    println!(
        "Qdrant Edge (qdrant-edge 0.7.2){} vs brute-force cosine scan, {DIM} dims, {USERS} users, top 10 of one user's points, {QUERIES} queries",
        match &server {
            Some(url) => format!(" and a Qdrant server ({url}, gRPC)"),
            None => " (DAARION_TEST_QDRANT_URL unset: no Qdrant server)".into(),
        }
    );
    println!(
        "| points  | backend       | upserts/s (flushed per 1k) | optimize s | search p50 ms | search p99 ms | recall@10 |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for n in sizes {
        run(n, server.as_deref()).await;
    }
}

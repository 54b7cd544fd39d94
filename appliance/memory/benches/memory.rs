//! The memory service end to end, on the real PostgreSQL, NATS and a swapper with MiniLM:
//!
//! - indexing throughput over the bus: documents posted to the API until every chunk is
//!   `indexed` (trigger → relay → `memory.store.chunk` → memory-indexer → MiniLM → Qdrant Edge);
//! - hybrid search (`GET /v1/search`: full-text + the query's MiniLM embedding against the vector
//!   store + graph) p50/p99 over 10k and 100k stored chunks, next to the full-text query alone
//!   run straight on PostgreSQL as the reference. The large corpora are loaded directly (rows
//!   marked indexed, synthetic 384-dimensional vectors) so the figure is search, not loading.
//!
//! `cargo build --release -p daarion-llama-worker && cargo bench -p daarion-memory --bench memory`

#[path = "support/common.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Rng, ms, seeded};
use daarion_control_plane::testing::Plane;
use daarion_vectors::{Collection, EdgeStore, Point, Scope, VectorStore};
use rand::Rng as _;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WORDS: &[&str] = &[
    "garden", "tomato", "river", "bread", "dough", "mountain", "hiking", "winter", "coffee",
    "market", "train", "ticket", "doctor", "fever", "school", "homework", "guitar", "concert",
    "budget", "invoice", "salary", "holiday", "beach", "sunset", "recipe", "oven", "bicycle",
    "repair", "battery", "charger", "library", "novel", "poetry", "museum", "painting", "harbour",
    "fishing", "weather", "storm", "forest", "mushroom", "apple", "orchard", "cellar", "wine",
    "cheese", "village", "bridge", "castle", "festival",
];

/// Made-up text and vectors from the seeded generator.
trait Fake {
    fn word(&mut self) -> &'static str;
    fn sentence(&mut self, words: usize) -> String;
    fn unit_vector(&mut self) -> Vec<f32>;
}

impl Fake for Rng {
    fn word(&mut self) -> &'static str {
        WORDS[self.random_range(0..WORDS.len())]
    }

    fn sentence(&mut self, words: usize) -> String {
        let mut s: Vec<&str> = (0..words).map(|_| self.word()).collect();
        s.insert(words / 2, "and the");
        format!("{}.", s.join(" "))
    }

    fn unit_vector(&mut self) -> Vec<f32> {
        let v: Vec<f32> = (0..384).map(|_| self.random_range(-1.0..1.0)).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect()
    }
}

struct Memory {
    url: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start_memory(config: &daarion_config::Config) -> Memory {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let run = daarion_memory::run(config.clone(), listener, stop.clone());
    let task = tokio::spawn(async move { run.await.unwrap() });
    let http = reqwest::Client::new();
    for _ in 0..400 {
        if let Ok(r) = http.get(format!("{url}/ready")).send().await
            && r.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Memory { url, stop, task }
}

async fn indexed_chunks(http: &reqwest::Client, memory: &Memory, root: &str) -> i64 {
    let status: Value = http
        .get(format!("{}/v1/index/status", memory.url))
        .bearer_auth(root)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    status["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "chunk" && s["state"] == "indexed")
        .map(|s| s["count"].as_i64().unwrap())
        .sum()
}

/// Loads `n` chunks for `user` straight into PostgreSQL (marked indexed) and the vector store.
async fn load_corpus(
    plane: &Plane,
    config: &daarion_config::Config,
    user: Uuid,
    n: usize,
    rng: &mut Rng,
) {
    let pool = &plane.db.pool;
    let vectors = EdgeStore::open(&config.general.data_dir.join("vectors")).unwrap();
    for batch in 0..n.div_ceil(1000) {
        let document = Uuid::now_v7();
        sqlx::query("INSERT INTO documents (id, user_id, title, bytes, created_by) VALUES ($1, $2, $3, 0, 'bench')")
            .bind(document)
            .bind(user)
            .bind(format!("corpus {batch}"))
            .execute(pool)
            .await
            .unwrap();
        let count = 1000.min(n - batch * 1000);
        let ids: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
        let texts: Vec<String> = (0..count).map(|_| rng.sentence(24)).collect();
        let ordinals: Vec<i32> = (0..count as i32).collect();
        let kinds: Vec<String> = vec!["chunk".into(); count];
        // Marked indexed first, so the trigger leaves them be.
        sqlx::query("INSERT INTO index_state (kind, item_id, user_id, state, model) SELECT t.kind, t.id, $2, 'indexed', 'minilm' FROM unnest($1::uuid[], $3::text[]) AS t(id, kind)")
            .bind(&ids)
            .bind(user)
            .bind(&kinds)
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO chunks (id, document_id, user_id, ordinal, content) SELECT t.id, $2, $3, t.o, t.c FROM unnest($1::uuid[], $4::int[], $5::text[]) AS t(id, o, c)")
            .bind(&ids)
            .bind(document)
            .bind(user)
            .bind(&ordinals)
            .bind(&texts)
            .execute(pool)
            .await
            .unwrap();
        let points = ids
            .iter()
            .map(|id| Point {
                id: *id,
                kind: "chunk".into(),
                scope: Scope {
                    user_id: user,
                    agent_id: None,
                    chat_id: None,
                },
                vector: rng.unit_vector(),
            })
            .collect();
        vectors.upsert(Collection::Chunks, points).await.unwrap();
    }
    vectors.optimize().await.unwrap();
}

#[tokio::main]
async fn main() {
    let plane = Plane::start().await;
    let mut rng = seeded(0x005E_ED0F_DAA1);
    let swapper_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let swapper_addr = swapper_listener.local_addr().unwrap();
    let swapper_config = daarion_swapper::testing::config(
        &plane.config,
        &plane.config.general.data_dir.join("swapper"),
        &[("minilm", "embedding", "all-minilm-l6-v2-f16.gguf", 512)],
    );
    let swapper_stop = CancellationToken::new();
    let swapper = tokio::spawn(daarion_swapper::run(
        swapper_config,
        swapper_listener,
        swapper_stop.clone(),
    ));
    let mut config = plane.config.clone();
    config.swapper.listen = swapper_addr;
    config.models.embedding_model = "minilm".into();
    let http = reqwest::Client::new();
    let root = plane.root.clone();

    // Indexing end to end over the bus.
    let memory = start_memory(&config).await;
    let user: Value = http
        .post(format!("{}/v1/identities/resolve", memory.url))
        .bearer_auth(&root)
        .json(&json!({"channel": "bench", "external_id": "writer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let writer = user["user_id"].as_str().unwrap().to_owned();
    let documents = 8;
    let paragraphs = 125;
    let started = Instant::now();
    let mut total = 0;
    for d in 0..documents {
        let text: Vec<String> = (0..paragraphs).map(|_| rng.sentence(40)).collect();
        let r = http
            .post(format!("{}/v1/users/{writer}/documents", memory.url))
            .bearer_auth(&root)
            .json(&json!({"title": format!("doc {d}"), "content": text.join("\n\n")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        // Short paragraphs share a chunk: count what the API made.
        let document: Value = r.json().await.unwrap();
        total += document["chunks"].as_i64().unwrap();
    }
    let stored = started.elapsed();
    while indexed_chunks(&http, &memory, &root).await < total {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let indexed = started.elapsed();
    memory.stop.cancel();
    memory.task.await.unwrap();
    println!("Memory service, 2 cores, real PostgreSQL/NATS, MiniLM through the swapper");
    println!();
    println!(
        "| indexing over the bus | chunks | stored (API) | all indexed | chunks/s end to end |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| documents → trigger → relay → memory-indexer → MiniLM → Qdrant Edge | {total} | {:.2} s | {:.2} s | {:.0} |",
        stored.as_secs_f64(),
        indexed.as_secs_f64(),
        total as f64 / indexed.as_secs_f64()
    );
    println!();
    println!(
        "| stored chunks | hybrid search p50 ms | p99 ms | reference: full-text SQL alone p50 ms | p99 ms |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");

    let reader = Uuid::parse_str(&writer).unwrap();
    let mut loaded = 0;
    for n in [10_000usize, 100_000] {
        load_corpus(&plane, &config, reader, n - loaded, &mut rng).await;
        loaded = n;
        let memory = start_memory(&config).await;
        let queries: Vec<String> = (0..200)
            .map(|_| format!("{} {} {}", rng.word(), rng.word(), rng.word()))
            .collect();
        // Warm the model and the caches.
        for q in queries.iter().take(5) {
            http.get(format!("{}/v1/search", memory.url))
                .bearer_auth(&root)
                .query(&[("user_id", writer.as_str()), ("q", q.as_str())])
                .send()
                .await
                .unwrap();
        }
        let mut hybrid = Vec::new();
        let mut words = Vec::new();
        for q in &queries {
            let t = Instant::now();
            let r = http
                .get(format!("{}/v1/search", memory.url))
                .bearer_auth(&root)
                .query(&[("user_id", writer.as_str()), ("q", q.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let hits: Value = r.json().await.unwrap();
            hybrid.push(t.elapsed());
            assert!(hits.as_array().is_some_and(|h| !h.is_empty()));
            let t = Instant::now();
            let _: Vec<(Uuid, f32)> = sqlx::query_as(
                "WITH query AS (SELECT websearch_to_tsquery('simple', $2) AS tsq) \
                 SELECT c.id, ts_rank(c.search, query.tsq)::float4 FROM chunks c, query \
                 WHERE c.user_id = $1 AND c.search @@ query.tsq ORDER BY 2 DESC LIMIT 20",
            )
            .bind(reader)
            .bind(q)
            .fetch_all(&plane.db.pool)
            .await
            .unwrap();
            words.push(t.elapsed());
        }
        hybrid.sort();
        words.sort();
        println!(
            "| {n} | {:.1} | {:.1} | {:.1} | {:.1} |",
            ms(&hybrid, 0.5),
            ms(&hybrid, 0.99),
            ms(&words, 0.5),
            ms(&words, 0.99)
        );
        memory.stop.cancel();
        memory.task.await.unwrap();
    }
    swapper_stop.cancel();
    let _ = swapper.await;
    plane.stop().await;
}

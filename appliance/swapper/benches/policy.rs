//! The eviction policy on a simulated mixed workload, next to the alternatives: one GPU box's worth of
//! models (sizes and load times of the kinds the appliance runs), a 16 GiB budget, and 100 000
//! requests drawn with a fixed seed from a chat-heavy mix with bursts of speech and occasional
//! vision and image work. The figure that matters is seconds spent loading models: every one of
//! them is a user waiting. `cargo bench -p daarion-swapper --bench policy` (no models needed).

use std::time::Instant;

use daarion_swapper::scheduler::{Candidate, choose_victims};
use rand::{Rng as _, SeedableRng};

const GB: u64 = 1 << 30;
const BUDGET: u64 = 16 * GB;
const REQUESTS: usize = 100_000;

struct Model {
    name: &'static str,
    footprint: u64,
    load_ms: f64,
    serve_ms: f64,
    weight: u32,
}

fn models() -> Vec<Model> {
    let m = |name, gb: f64, load_ms, serve_ms, weight| Model {
        name,
        footprint: (gb * GB as f64) as u64,
        load_ms,
        serve_ms,
        weight,
    };
    vec![
        m("chat 8B Q4", 5.0, 4000.0, 2000.0, 40),
        m("embeddings", 0.4, 250.0, 50.0, 20),
        m("whisper small", 1.6, 900.0, 1000.0, 12),
        m("tts voice", 0.2, 150.0, 300.0, 12),
        m("chat 1.5B", 1.5, 1200.0, 800.0, 8),
        m("vision 7B", 6.5, 5500.0, 3000.0, 5),
        m("image (FLUX)", 8.0, 7000.0, 10_000.0, 3),
    ]
}

/// Requests come in bursts: a user who sends a voice note sends a few.
fn trace(models: &[Model]) -> Vec<usize> {
    let total: u32 = models.iter().map(|m| m.weight).sum();
    // Seeded: the same trace for both policies, every run.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0da4_1015_2026);
    let mut out = Vec::with_capacity(REQUESTS);
    while out.len() < REQUESTS {
        let mut pick = rng.random_range(0..total);
        let model = models
            .iter()
            .position(|m| {
                if pick < m.weight {
                    true
                } else {
                    pick -= m.weight;
                    false
                }
            })
            .expect("the weights cover the range");
        let burst = rng.random_range(1..=4);
        out.extend(std::iter::repeat_n(model, burst));
    }
    out.truncate(REQUESTS);
    out
}

struct Outcome {
    loads: u64,
    load_seconds: f64,
    busy_seconds: f64,
    decisions: u64,
    decision_ns: f64,
}

#[derive(Clone, Copy, PartialEq)]
enum Policy {
    /// What the scheduler runs: [`choose_victims`] itself.
    Scheduler,
    /// Reload time per byte first, then LRU (the scheduler's first rule).
    CostPerByte,
    /// GreedyDual-Size on reload time per byte.
    GreedyDualSize,
    /// Reload time over time since last use.
    CostOverAge,
}

/// The same take-until-it-fits loop as the scheduler's, over another order.
fn take(order: Vec<usize>, candidates: &[Candidate], mut used: u64, need: u64) -> Vec<usize> {
    let mut victims = Vec::new();
    for i in order {
        if used + need <= BUDGET {
            break;
        }
        used -= candidates[i].footprint;
        victims.push(i);
    }
    victims
}

fn simulate(models: &[Model], trace: &[usize], policy: Policy) -> Outcome {
    let mut loaded = vec![false; models.len()];
    let mut last_used = vec![0u64; models.len()];
    let mut credits = vec![0f64; models.len()];
    let mut inflation = 0f64;
    let mut used = 0u64;
    let mut out = Outcome {
        loads: 0,
        load_seconds: 0.0,
        busy_seconds: 0.0,
        decisions: 0,
        decision_ns: 0.0,
    };
    let mut decision_time = 0u128;
    for (tick, &m) in trace.iter().enumerate() {
        if !loaded[m] {
            let idle: Vec<usize> = (0..models.len()).filter(|&i| loaded[i]).collect();
            let candidates: Vec<Candidate> = idle
                .iter()
                .map(|&i| Candidate {
                    footprint: models[i].footprint,
                    reload_ms: models[i].load_ms,
                    last_used: last_used[i],
                })
                .collect();
            let need = models[m].footprint;
            let started = Instant::now();
            let mut order: Vec<usize> = (0..candidates.len()).collect();
            let victims = match policy {
                Policy::Scheduler => choose_victims(&candidates, used, need, BUDGET)
                    .expect("every model fits the budget alone"),
                Policy::CostPerByte => {
                    order.sort_by(|&a, &b| {
                        let (a, b) = (&candidates[a], &candidates[b]);
                        a.cost_per_byte()
                            .total_cmp(&b.cost_per_byte())
                            .then(a.last_used.cmp(&b.last_used))
                    });
                    take(order, &candidates, used, need)
                }
                Policy::GreedyDualSize => {
                    order.sort_by(|&a, &b| credits[idle[a]].total_cmp(&credits[idle[b]]));
                    take(order, &candidates, used, need)
                }
                Policy::CostOverAge => {
                    let score =
                        |c: &Candidate| c.reload_ms / ((tick as u64 - c.last_used) as f64 + 1.0);
                    order.sort_by(|&a, &b| score(&candidates[a]).total_cmp(&score(&candidates[b])));
                    take(order, &candidates, used, need)
                }
            };
            decision_time += started.elapsed().as_nanos();
            out.decisions += 1;
            for v in victims {
                inflation = inflation.max(credits[idle[v]]);
                loaded[idle[v]] = false;
                used -= models[idle[v]].footprint;
            }
            loaded[m] = true;
            used += models[m].footprint;
            out.loads += 1;
            out.load_seconds += models[m].load_ms / 1000.0;
        }
        last_used[m] = tick as u64 + 1;
        credits[m] = inflation + models[m].load_ms / (models[m].footprint as f64 / 1e6);
        out.busy_seconds += models[m].serve_ms / 1000.0;
    }
    out.decision_ns = decision_time as f64 / out.decisions.max(1) as f64;
    out
}

fn main() {
    let models = models();
    let trace = trace(&models);
    println!(
        "{} requests over {} models, budget {} GiB",
        REQUESTS,
        models.len(),
        BUDGET / GB
    );
    for m in &models {
        let share =
            trace.iter().filter(|&&i| models[i].name == m.name).count() as f64 / REQUESTS as f64;
        println!(
            "  {:<14} {:>5.1} GiB  load {:>5.0} ms  {:>4.1} % of requests",
            m.name,
            m.footprint as f64 / GB as f64,
            m.load_ms,
            share * 100.0
        );
    }
    println!();
    println!(
        "| policy                         |  loads | hit rate | load time (h) | requests/h incl. loads | µs/decision |"
    );
    println!(
        "| ------------------------------ | ------ | -------- | ------------- | ---------------------- | ----------- |"
    );
    let mut results = Vec::new();
    for (name, policy) in [
        ("DAARION scheduler (LRU, then cost)", Policy::Scheduler),
        ("reload cost per byte, then LRU", Policy::CostPerByte),
        ("GreedyDual-Size", Policy::GreedyDualSize),
        ("reload time / age", Policy::CostOverAge),
    ] {
        let o = simulate(&models, &trace, policy);
        let hours = (o.load_seconds + o.busy_seconds) / 3600.0;
        println!(
            "| {name:<34} | {:>6} | {:>7.1}% | {:>13.2} | {:>22.0} | {:>11.2} |",
            o.loads,
            100.0 * (1.0 - o.loads as f64 / REQUESTS as f64),
            o.load_seconds / 3600.0,
            REQUESTS as f64 / hours,
            o.decision_ns / 1000.0
        );
        results.push(o.load_seconds);
    }
    println!();
    println!(
        "time spent loading, relative to the scheduler's policy: cost per byte first {:.2}×, GreedyDual-Size {:.2}×, reload time / age {:.2}×",
        results[1] / results[0],
        results[2] / results[0],
        results[3] / results[0]
    );
}

//! Supervisor figures on this machine: cold start to all-ready (services only, no models),
//! restart latency after a crash, and the supervisor's own RSS and idle CPU.
//! Run: `cargo bench -p daarion --bench supervisor` (needs PostgreSQL and nats-server here).

#[path = "../tests/it/helpers/mod.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant};

use helpers::appliance::Appliance;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const RUNS: usize = 5;

fn stats(mut ms: Vec<f64>) -> String {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "{:>8.0} {:>8.0} {:>8.0}",
        ms[0],
        ms[ms.len() / 2],
        ms[ms.len() - 1]
    )
}

/// CPU time of every thread of `pid`, in nanoseconds (schedstat: finer than stat's 10 ms ticks).
fn cpu_ns(pid: i32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::main]
async fn main() {
    let mut cold = Vec::new();
    let mut restart = Vec::new();
    let mut rss = Vec::new();
    let mut idle_cpu = Vec::new();
    for run in 0..RUNS {
        let mut app = Appliance::new().await;
        // Production cadence for the idle measurement.
        app.set("DAARION__SUPERVISOR__HEALTH_INTERVAL_SECS", "5");
        app.start();
        cold.push(
            app.wait_all_ready(Duration::from_secs(60))
                .await
                .as_secs_f64()
                * 1e3,
        );

        let old = app.unit("memory").await["pid"].as_i64().unwrap() as i32;
        let t0 = Instant::now();
        kill(Pid::from_raw(old), Signal::SIGKILL).unwrap();
        app.wait_unit("memory", Duration::from_secs(30), |u| {
            u["state"] == "ready" && u["pid"].as_i64().is_some_and(|p| p as i32 != old)
        })
        .await;
        restart.push(t0.elapsed().as_secs_f64() * 1e3);

        if run == 0 {
            // Idle: nothing but health probes for 20 s.
            let pid = app.pid();
            tokio::time::sleep(Duration::from_secs(2)).await;
            let ns0 = cpu_ns(pid);
            let t = Instant::now();
            tokio::time::sleep(Duration::from_secs(20)).await;
            let ns = cpu_ns(pid) - ns0;
            idle_cpu.push(ns as f64 / 1e9 / t.elapsed().as_secs_f64() * 100.0);
            rss.push(rss_kib(pid));
        }
        app.signal(Signal::SIGTERM);
        app.wait_exit(Duration::from_secs(30));
        app.cleanup().await;
    }
    println!("supervisor benchmark: {RUNS} runs, units = bundled nats-server + memory service");
    println!(
        "{:<34} {:>8} {:>8} {:>8}",
        "measure (ms)", "min", "median", "max"
    );
    println!("{:<34} {}", "cold start to all-ready", stats(cold));
    println!(
        "{:<34} {}",
        "kill -9 of memory to ready again",
        stats(restart)
    );
    println!(
        "supervisor RSS when idle: {} KiB; idle CPU over 20 s: {:.3}% of one core",
        rss[0], idle_cpu[0]
    );
}

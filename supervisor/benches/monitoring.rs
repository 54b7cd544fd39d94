//! What monitoring costs an idle appliance: CPU (% of one core) and RSS of Prometheus and
//! Alertmanager, the supervisor's CPU with and without them (its collectors run either way;
//! the difference is serving the scrapes), and each target's scrape duration as Prometheus
//! measures it. The goal: under 2 % of one core and 150 MB RSS together.
//! Run: `cargo bench -p daarion --bench monitoring` (needs PostgreSQL, Redis, nats-server and
//! Debian's prometheus and prometheus-alertmanager here). `DAARION_BENCH_SECS` sets the window
//! (60 s by default).

#[path = "../tests/it/helpers/mod.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::{Duration, Instant};

use helpers::appliance::Appliance;
use serde_json::Value;

/// The goal, together for Prometheus, Alertmanager and what the scrapes add to the supervisor.
const GOAL_CPU_PERCENT: f64 = 2.0;
const GOAL_RSS_MB: f64 = 150.0;
/// Past the start: Prometheus's first rule evaluations and WAL set-up, the first bus poll.
const SETTLE: Duration = Duration::from_secs(20);

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_sec() -> f64 {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn rss_mb(pid: i32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap()
        / 1024.0
}

/// CPU as % of one core and RSS at the end, for each pid, over `window`.
fn measure(pids: &[(&str, i32)], window: Duration) -> Vec<(String, f64, f64)> {
    let tick = clock_ticks_per_sec();
    let before: Vec<u64> = pids.iter().map(|(_, p)| cpu_ticks(*p)).collect();
    let started = Instant::now();
    std::thread::sleep(window);
    let elapsed = started.elapsed().as_secs_f64();
    pids.iter()
        .zip(before)
        .map(|((name, pid), before)| {
            let cpu = (cpu_ticks(*pid) - before) as f64 / tick / elapsed * 100.0;
            ((*name).to_owned(), cpu, rss_mb(*pid))
        })
        .collect()
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// An idle appliance at production cadence (health every 5 s, scrape every 15 s).
async fn appliance(monitoring: bool) -> (Appliance, Option<String>) {
    let mut app = Appliance::new().await;
    app.set("DAARION__SUPERVISOR__HEALTH_INTERVAL_SECS", "5");
    let prometheus = monitoring.then(|| app.with_monitoring().0);
    app.set("DAARION__MONITORING__SCRAPE_INTERVAL_SECS", "15");
    app.start();
    app.wait_all_ready(Duration::from_secs(120)).await;
    tokio::time::sleep(SETTLE).await;
    (app, prometheus)
}

async fn pid(app: &Appliance, unit: &str) -> i32 {
    app.unit(unit).await["pid"].as_i64().unwrap() as i32
}

#[tokio::main]
async fn main() {
    let window = Duration::from_secs(
        std::env::var("DAARION_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );

    let (app, _) = appliance(false).await;
    let without = measure(&[("supervisor", app.pid())], window);
    app.cleanup().await;

    let (app, prometheus) = appliance(true).await;
    let prometheus = prometheus.unwrap();
    let pids = [
        ("prometheus", pid(&app, "prometheus").await),
        ("alertmanager", pid(&app, "alertmanager").await),
        ("supervisor", app.pid()),
    ];
    let with = measure(&pids, window);
    let url = reqwest::Url::parse_with_params(
        &format!("{prometheus}/api/v1/query"),
        &[("query", "avg_over_time(scrape_duration_seconds[2m])")],
    )
    .unwrap();
    let scrapes = get_json(url.as_str()).await;
    let samples = reqwest::Url::parse_with_params(
        &format!("{prometheus}/api/v1/query"),
        &[("query", "sum(scrape_samples_scraped)")],
    )
    .unwrap();
    let samples = get_json(samples.as_str()).await["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap_or("?")
        .to_owned();
    app.cleanup().await;

    println!(
        "\nidle, {} s window, scrape every 15 s, health every 5 s",
        window.as_secs()
    );
    println!("{:<28} {:>10} {:>10}", "process", "CPU %core", "RSS MB");
    for (name, cpu, rss) in &with {
        println!("{name:<28} {cpu:>10.2} {rss:>10.1}");
    }
    let (_, base_cpu, base_rss) = &without[0];
    println!(
        "{:<28} {base_cpu:>10.2} {base_rss:>10.1}",
        "supervisor, monitoring off"
    );
    let supervisor = &with[2];
    let scraped = (supervisor.1 - base_cpu).max(0.0);
    let cpu = with[0].1 + with[1].1 + scraped;
    let rss = with[0].2 + with[1].2;
    println!(
        "{:<28} {cpu:>10.2} {rss:>10.1}   goal < {GOAL_CPU_PERCENT} % and < {GOAL_RSS_MB} MB: {}",
        "monitoring, together",
        if cpu < GOAL_CPU_PERCENT && rss < GOAL_RSS_MB {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "(together: Prometheus + Alertmanager + the supervisor's CPU above its monitoring-off figure)"
    );
    println!("samples per scrape round: {samples}");

    println!("\n{:<16} {:>16}", "target (job)", "scrape ms (avg)");
    let mut rows: Vec<(String, f64)> = scrapes["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| {
            let job = s["metric"]["job"].as_str()?.to_owned();
            let secs: f64 = s["value"][1].as_str()?.parse().ok()?;
            Some((job, secs * 1000.0))
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    for (job, ms) in rows {
        println!("{job:<16} {ms:>16.2}");
    }
}

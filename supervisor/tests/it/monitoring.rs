//! Prometheus and Alertmanager as units of `daarion up` (Debian's binaries, free ports, a
//! one-second scrape), the supervisor's own metrics as Prometheus sees them, and `ops.health`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use nix::sys::signal::Signal;
use serde_json::Value;

use crate::helpers::appliance::Appliance;
use crate::helpers::text;

/// Polls until `probe` returns `Some`, or fails the test with `what` and the supervisor's log.
async fn eventually<T, F, Fut>(app: &Appliance, what: &str, within: Duration, probe: F) -> T
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            started.elapsed() < within,
            "{what}: not within {within:?}; log:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn get_json(url: &str) -> Option<Value> {
    let response = reqwest::get(url).await.ok()?;
    response.status().is_success().then_some(())?;
    response.json().await.ok()
}

/// The value of a PromQL query's single series, if it has exactly one.
async fn query(prometheus: &str, promql: &str) -> Option<f64> {
    let url = reqwest::Url::parse_with_params(
        &format!("{prometheus}/api/v1/query"),
        &[("query", promql)],
    )
    .ok()?;
    let body = get_json(url.as_str()).await?;
    let result = body["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test]
async fn monitoring_is_off_and_says_why_when_prometheus_is_missing() {
    let mut app = Appliance::new().await;
    app.with_monitoring();
    app.set(
        "DAARION__MONITORING__PROMETHEUS_BIN",
        "/nonexistent/prometheus",
    );
    app.start();
    // The appliance runs: an off unit does not hold up readiness.
    app.wait_all_ready(Duration::from_secs(60)).await;
    for name in ["prometheus", "alertmanager"] {
        let unit = app.unit(name).await;
        assert_eq!(unit["state"], "off", "{unit}");
        let detail = unit["detail"].as_str().unwrap();
        assert!(detail.contains("/nonexistent/prometheus"), "{detail}");
        assert!(detail.contains("monitoring.prometheus_bin"), "{detail}");
    }
    let refused = app.post("/api/services/prometheus/start").await;
    assert_eq!(refused.status(), 409, "an off unit cannot be started");

    let status = app.command(&["status"]).output().unwrap();
    let out = text(&status);
    assert!(status.status.success(), "off is not a failure:\n{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("prometheus"))
        .unwrap_or_else(|| panic!("no prometheus line:\n{out}"));
    assert!(
        line.contains("off") && line.contains("/nonexistent/prometheus"),
        "{line}"
    );

    let doctor = app.command(&["doctor"]).output().unwrap();
    let out = text(&doctor);
    let line = out
        .lines()
        .find(|l| l.starts_with("monitoring"))
        .unwrap_or_else(|| panic!("no monitoring line:\n{out}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("monitoring is off: /nonexistent/prometheus"),
        "{line}"
    );
    assert!(
        !app.dir.join("data/monitoring/prometheus.yml").exists(),
        "nothing configured for a unit that cannot run"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn prometheus_scrapes_every_unit_and_sees_a_killed_service_down() {
    assert!(
        std::path::Path::new("/usr/bin/prometheus").is_file()
            && std::path::Path::new("/usr/bin/prometheus-alertmanager").is_file(),
        "Debian's prometheus and prometheus-alertmanager (tests/setup.sh installs them)"
    );
    let mut app = Appliance::new().await;
    let (prometheus, alertmanager) = app.with_monitoring();
    // A restart that waits 3 s: long enough for one-second scrapes to see the unit down.
    app.set("DAARION__SUPERVISOR__BACKOFF_INITIAL_MS", "3000");
    app.set("DAARION__SUPERVISOR__BACKOFF_MAX_MS", "3000");
    app.start();
    let took = app.wait_all_ready(Duration::from_secs(90)).await;
    println!(
        "figure: cold start with monitoring to all-ready: {} ms",
        took.as_millis()
    );
    for name in ["prometheus", "alertmanager"] {
        assert_eq!(app.unit(name).await["state"], "ready");
    }
    let bus = async_nats::connect(app.nats_url.as_str()).await.unwrap();
    let mut health = bus.subscribe("ops.health").await.unwrap();

    // Every enabled unit is a job named after it, and each is up after a scrape.
    let jobs = [
        "supervisor",
        "control-plane",
        "memory",
        "router",
        "gateway",
        "alertmanager",
        "prometheus",
    ];
    let targets = eventually(&app, "every target up", Duration::from_secs(30), || async {
        let body = get_json(&format!("{prometheus}/api/v1/targets")).await?;
        let active = body["data"]["activeTargets"].as_array()?.clone();
        let up = |job: &str| {
            active
                .iter()
                .any(|t| t["labels"]["job"] == job && t["health"] == "up")
        };
        jobs.iter().all(|j| up(j)).then_some(active)
    })
    .await;
    assert_eq!(
        targets.len(),
        jobs.len(),
        "one target per unit: {targets:?}"
    );

    let rules = get_json(&format!("{prometheus}/api/v1/rules"))
        .await
        .unwrap();
    let names: Vec<&str> = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .filter_map(|r| r["name"].as_str())
        .collect();
    for alert in ["ServiceDown", "Watchdog", "PostgresUnreachable", "GpuLost"] {
        assert!(names.contains(&alert), "{alert} not loaded: {names:?}");
    }
    let ready = reqwest::get(format!("{alertmanager}/-/ready"))
        .await
        .unwrap();
    assert!(ready.status().is_success());
    // Prometheus sends to this Alertmanager.
    let ams = get_json(&format!("{prometheus}/api/v1/alertmanagers"))
        .await
        .unwrap();
    assert!(
        ams.to_string()
            .contains(alertmanager.trim_start_matches("http://")),
        "{ams}"
    );

    // The supervisor's collectors, as Prometheus reads them.
    for (promql, want) in [
        (r#"daarion_dependency_up{dependency="postgres"}"#, 1.0),
        (r#"daarion_dependency_up{dependency="redis"}"#, 1.0),
        (r#"daarion_dependency_up{dependency="nats"}"#, 1.0),
        (
            r#"daarion_supervisor_restarts_total{unit="gateway",cause="failure"}"#,
            0.0,
        ),
        (r#"daarion_supervisor_unit_up{unit="memory"}"#, 1.0),
    ] {
        eventually(&app, promql, Duration::from_secs(20), || async {
            (query(&prometheus, promql).await? == want).then_some(())
        })
        .await;
    }
    let data_dir = app.dir.join("data").display().to_string();
    let free = query(
        &prometheus,
        &format!(r#"daarion_disk_free_bytes{{path="{data_dir}"}}"#),
    )
    .await
    .expect("disk free of the data dir");
    assert!(free > 0.0);
    assert!(query(&prometheus, "daarion_gpu_present").await.is_some());

    // kill -9: Prometheus sees the unit down while it waits to restart, then the restart.
    let memory = app.unit("memory").await;
    let pid = memory["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    eventually(
        &app,
        "unit_up 0 in Prometheus",
        Duration::from_secs(10),
        || async {
            (query(&prometheus, r#"daarion_supervisor_unit_up{unit="memory"}"#).await? == 0.0)
                .then_some(())
        },
    )
    .await;
    eventually(
        &app,
        "the restart counted",
        Duration::from_secs(20),
        || async {
            let promql = r#"daarion_supervisor_restarts_total{unit="memory",cause="failure"}"#;
            (query(&prometheus, promql).await? == 1.0).then_some(())
        },
    )
    .await;

    // ops.health: down with its cause, then starting and ready again.
    let mut seen: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen
        .iter()
        .any(|e| e["payload"]["unit"] == "memory" && e["payload"]["state"] == "ready")
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, health.next())
            .await
            .unwrap_or_else(|_| panic!("no ops.health `ready` for memory: {seen:?}"))
            .unwrap();
        seen.push(serde_json::from_slice(&message.payload).unwrap());
    }
    let memory: Vec<&Value> = seen
        .iter()
        .filter(|e| e["payload"]["unit"] == "memory")
        .map(|e| &e["payload"])
        .collect();
    let states: Vec<&str> = memory.iter().filter_map(|e| e["state"].as_str()).collect();
    assert_eq!(states, ["backoff", "starting", "ready"], "{memory:?}");
    assert_eq!(memory[0]["previous"], "ready");
    assert_eq!(memory[0]["cause"], "killed by SIGKILL");
    assert_eq!(memory[0]["restarts"], 1);
    assert_eq!(
        memory[1]["cause"], "killed by SIGKILL",
        "restarting, and why"
    );
    assert_eq!(seen[0]["type"], "ops.health");
    assert_eq!(seen[0]["source"], "supervisor");

    // The generated configs are where the docs say.
    let generated = app.dir.join("data/monitoring");
    let config = std::fs::read_to_string(generated.join("alertmanager.yml")).unwrap();
    assert!(config.contains(&format!(
        "{}/alertmanager-webhook",
        app.dir.join("secrets").display()
    )));
    assert!(generated.join("prometheus.yml").is_file());
    app.cleanup().await;
}

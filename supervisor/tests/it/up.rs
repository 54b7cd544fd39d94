//! `daarion up` with real child processes.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::helpers::appliance::{Appliance, gone};
use crate::helpers::text;

fn pid_of(unit: &Value) -> i32 {
    unit["pid"].as_i64().expect("a running unit has a pid") as i32
}

#[tokio::test]
async fn every_service_becomes_ready_and_a_killed_one_comes_back() {
    let mut app = Appliance::new().await;
    app.start();
    let cold = app.wait_all_ready(Duration::from_secs(60)).await;
    println!("figure: cold start to all-ready: {} ms", cold.as_millis());

    let units: Value = app.get("/api/services").await.json().await.unwrap();
    let names: Vec<&str> = units
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["nats", "control-plane", "memory", "router", "gateway"],
        "bus first, then the control and data layer, then the router that needs them"
    );
    assert!(
        units
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["state"] == "ready")
    );

    let memory = app.unit("memory").await;
    let old = pid_of(&memory);
    let killed_at = std::time::Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old), Signal::SIGKILL).unwrap();
    let back = app
        .wait_unit("memory", Duration::from_secs(30), |u| {
            u["state"] == "ready" && u["pid"].as_i64().is_some_and(|p| p as i32 != old)
        })
        .await;
    println!(
        "figure: time to ready after kill -9: {} ms",
        killed_at.elapsed().as_millis()
    );
    assert_eq!(back["restarts"], 1);
    assert_eq!(back["last_exit"], "killed by SIGKILL");

    // The restarted memory service works: its /ready is green through the supervisor's probe.
    assert!(app.get("/ready").await.status().is_success());
    app.cleanup().await;
}

#[tokio::test]
async fn a_crash_looping_service_is_marked_failed_and_the_rest_stay_up() {
    let mut app = Appliance::new().await;
    // Memory cannot bind its port, so it exits at once, every time.
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    app.set(
        "DAARION__MEMORY__LISTEN",
        blocker.local_addr().unwrap().to_string(),
    );
    app.set("DAARION__SUPERVISOR__MAX_RESTARTS", "3");
    app.start();
    // The admin API answers as soon as the supervisor runs; a supervisor that never gets there
    // fails the test with what it printed instead of hanging it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let failed = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the admin API never answered /health; log:\n{}",
            app.log()
        );
        if let Ok(r) = reqwest::Client::new()
            .get(format!("{}/health", app.admin))
            .send()
            .await
            && r.status().is_success()
        {
            break app
                .wait_unit("memory", Duration::from_secs(30), |u| {
                    u["state"] == "failed"
                })
                .await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.contains("failed 3 times"), "{detail}");
    assert!(
        failed["last_exit"]
            .as_str()
            .unwrap()
            .contains("exited with status"),
        "{failed}"
    );
    assert_eq!(failed["restarts"], 2, "two restarts, then given up on");
    let nats = app.unit("nats").await;
    assert_eq!(nats["state"], "ready", "the others keep running: {nats}");
    // Not restarted in a hot loop: still failed a moment later, same restart count.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = app.unit("memory").await;
    assert_eq!(later["state"], "failed");
    assert_eq!(later["restarts"], 2);
    // The supervisor reports it: /ready names it.
    let ready = reqwest::get(format!("{}/ready", app.admin)).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body = ready.text().await.unwrap();
    assert!(body.contains("memory is failed"), "{body}");

    // Fixed by the operator (port freed) and started again through the API: it comes up.
    drop(blocker);
    assert_eq!(app.post("/api/services/memory/start").await.status(), 202);
    app.wait_unit("memory", Duration::from_secs(30), |u| u["state"] == "ready")
        .await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_service_whose_health_stops_answering_is_restarted() {
    let mut app = Appliance::new().await;
    app.start();
    app.wait_all_ready(Duration::from_secs(60)).await;
    let old = pid_of(&app.unit("memory").await);
    // A frozen process: the port accepts, nothing answers.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old), Signal::SIGSTOP).unwrap();
    let back = app
        .wait_unit("memory", Duration::from_secs(40), |u| {
            u["state"] == "ready" && u["pid"].as_i64().is_some_and(|p| p as i32 != old)
        })
        .await;
    assert_eq!(back["restarts"], 1);
    assert!(gone(old), "the frozen process was killed");
    assert!(app.log().contains("health check failed"));
    app.cleanup().await;
}

#[tokio::test]
async fn sigterm_stops_every_child_within_the_grace_period() {
    let mut app = Appliance::new().await;
    app.start();
    app.wait_all_ready(Duration::from_secs(60)).await;
    let mut pids = Vec::new();
    for name in ["nats", "control-plane", "memory", "router", "gateway"] {
        pids.push(pid_of(&app.unit(name).await));
    }
    app.signal(Signal::SIGTERM);
    // Grace is 3 s per tier in this config.
    let (code, took) = app.wait_exit(Duration::from_secs(15));
    assert_eq!(code, Some(0), "log:\n{}", app.log());
    println!(
        "figure: SIGTERM to supervisor exit: {} ms",
        took.as_millis()
    );
    for pid in pids {
        assert!(gone(pid), "child {pid} outlived the supervisor");
    }
    let log = app.log();
    let memory_stop = log.rfind("stopped unit=memory");
    let nats_stop = log.rfind("stopped unit=nats");
    assert!(
        memory_stop.is_some() && nats_stop.is_some(),
        "both stops logged:\n{log}"
    );
    assert!(
        memory_stop < nats_stop,
        "reverse dependency order: memory before the bus"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn kill_9_of_the_supervisor_takes_the_children_down() {
    let mut app = Appliance::new().await;
    app.start();
    app.wait_all_ready(Duration::from_secs(60)).await;
    let mut pids = Vec::new();
    for name in ["nats", "control-plane", "memory", "router", "gateway"] {
        pids.push(pid_of(&app.unit(name).await));
    }
    app.signal(Signal::SIGKILL);
    app.wait_exit(Duration::from_secs(5));
    for pid in pids {
        let mut waited = 0;
        while !gone(pid) && waited < 100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        assert!(gone(pid), "child {pid} survived kill -9 of its supervisor");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn bundled_nats_keeps_its_streams_across_a_restart() {
    let mut app = Appliance::new().await;
    app.start();
    app.wait_all_ready(Duration::from_secs(60)).await;
    let mut bus_config = daarion_config::Config::defaults().bus;
    bus_config.url = app.nats_url.clone();
    let (created, event, sequence) = {
        let bus = daarion_bus::Bus::connect(&bus_config, "test")
            .await
            .unwrap();
        let event = daarion_bus::Envelope::new(
            "audit.action",
            "test",
            daarion_bus::events::AuditRecord {
                actor: "admin".into(),
                action: "test.persist".into(),
                target: Some("bundled-nats".into()),
                outcome: "ok".into(),
                before: None,
                after: None,
                detail: None,
            },
        );
        let sequence = bus.publish(&event).await.unwrap().stream_sequence;
        let mut stream = bus.jetstream().get_stream("AUDIT").await.unwrap();
        (stream.info().await.unwrap().created, event, sequence)
    };
    app.signal(Signal::SIGTERM);
    app.wait_exit(Duration::from_secs(15));

    app.start();
    app.wait_all_ready(Duration::from_secs(60)).await;
    let bus = daarion_bus::Bus::connect(&bus_config, "test")
        .await
        .unwrap();
    let mut stream = bus.jetstream().get_stream("AUDIT").await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.created, created, "the same stream, not a new one");
    // Others write to AUDIT too (unit changes, first-run defaults): ours is still where it was.
    let kept = stream.get_raw_message(sequence).await.unwrap();
    let kept: serde_json::Value = serde_json::from_slice(&kept.payload).unwrap();
    assert_eq!(kept["id"], event.id.to_string());
    // And the audit-logger stored it exactly once across the restart. Counted by what it says,
    // not by its id (the key, which can only ever count 0 or 1), so a second store would show.
    let db = app.db.as_ref().unwrap();
    let count = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM audit_log WHERE action = 'test.persist' AND target = 'bundled-nats'",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap_or(0)
    };
    let mut stored = 0;
    for _ in 0..100 {
        stored = count().await;
        if stored >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored, 1, "stored once, as soon as it is stored");
    // A redelivery after the restart would come just behind the first store.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count().await, 1, "stored again later");
    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM audit_log WHERE action = 'test.persist'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(id, event.id, "the row is the event published");
    app.cleanup().await;
}

#[tokio::test]
async fn admin_api_needs_the_token_and_drives_units() {
    let mut app = Appliance::new().await;
    app.start();
    app.wait_all_ready(Duration::from_secs(60)).await;
    let client = reqwest::Client::new();
    for token in [None, Some("wrong")] {
        let mut request = client.get(format!("{}/api/services", app.admin));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    let r = client
        .post(format!("{}/api/services/memory/stop", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "mutations too");
    assert_eq!(app.get("/api/services/nope").await.status(), 404);
    assert_eq!(app.post("/api/services/memory/explode").await.status(), 400);
    assert_eq!(app.get("/api/gpu").await.status(), 200);

    let logs: Value = app
        .get("/api/services/memory/logs?lines=500&filter=consuming")
        .await
        .json()
        .await
        .unwrap();
    let lines = logs["lines"].as_array().unwrap();
    assert!(!lines.is_empty(), "{logs}");
    assert!(
        lines
            .iter()
            .all(|l| l["line"].as_str().unwrap().contains("consuming"))
    );

    // Stop → stays stopped; start → ready again; restart → counted.
    assert_eq!(app.post("/api/services/memory/stop").await.status(), 202);
    app.wait_unit("memory", Duration::from_secs(10), |u| {
        u["state"] == "stopped"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.unit("memory").await["state"], "stopped");
    assert_eq!(app.post("/api/services/memory/start").await.status(), 202);
    app.wait_unit("memory", Duration::from_secs(30), |u| u["state"] == "ready")
        .await;
    let before = app.unit("memory").await["restarts"].as_u64().unwrap();
    let out = app.command(&["restart", "memory"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    app.wait_unit("memory", Duration::from_secs(30), |u| {
        u["state"] == "ready" && u["restarts"].as_u64() == Some(before + 1)
    })
    .await;

    // The CLI over the same API.
    let out = app.command(&["status"]).output().unwrap();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("nats") && l.contains("ready")),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("memory") && l.contains("ready")),
        "{shown}"
    );
    let out = app
        .command(&["logs", "memory", "-n", "3"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    // The token never appears in the supervisor's log.
    assert!(!app.log().contains(&app.token()));
    app.cleanup().await;
}

#[tokio::test]
async fn systemd_is_told_ready_status_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let mut app = Appliance::new().await;
    let socket_path = app.dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // Read as systemd does, all along: the socket queues only a few datagrams.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut messages = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => messages.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(_) if done.load(std::sync::atomic::Ordering::SeqCst) => return messages,
                    Err(_) => {}
                }
            }
        })
    };
    app.set("NOTIFY_SOCKET", socket_path.display().to_string());
    app.set("WATCHDOG_USEC", "400000");
    app.start();
    app.wait_all_ready(Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.signal(Signal::SIGTERM);
    app.wait_exit(Duration::from_secs(15));
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let messages = reader.join().unwrap();
    let all = messages.join("\n");
    assert!(all.contains("READY=1"), "{all}");
    assert!(all.contains("STATUS=5/5 units ready"), "{all}");
    assert!(all.contains("WATCHDOG=1"), "{all}");
    assert!(all.contains("STOPPING=1"), "{all}");
    let ready_at = messages.iter().position(|m| m.contains("READY=1")).unwrap();
    let starting_at = messages
        .iter()
        .position(|m| m.contains("STATUS=starting"))
        .unwrap();
    assert!(starting_at < ready_at, "{messages:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn missing_nats_server_is_a_clear_error() {
    let mut app = Appliance::new().await;
    app.set(
        "DAARION__SUPERVISOR__NATS_SERVER",
        "/nonexistent/nats-server-xyz",
    );
    let out = app.command(&["up"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("supervisor.nats_server"),
        "{}",
        text(&out)
    );
    app.cleanup().await;
}

//! The `daarion` binary end to end.

use crate::helpers;

use helpers::{daarion, text};

#[test]
fn version_prints_the_crate_version() {
    let out = daarion().arg("version").output().unwrap();
    assert!(out.status.success());
    assert!(text(&out).starts_with(&format!("daarion {}", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn doctor_passes_against_this_machines_services() {
    let out = daarion()
        .args(["doctor"])
        .env("DAARION__GENERAL__MIN_FREE_DISK_MB", "1")
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    for check in ["postgres", "redis", "nats", "disk", "gpu", "models"] {
        assert!(
            shown.lines().any(|l| l.starts_with(check)),
            "no line for {check}:\n{shown}"
        );
    }
    assert!(shown.contains("verdict:"), "{shown}");
    assert!(!shown.contains("FAIL"), "{shown}");
}

#[test]
fn doctor_fails_when_a_dependency_is_down() {
    let out = daarion()
        .args(["doctor"])
        .env("DAARION__REDIS__URL", "redis://127.0.0.1:1/0")
        .env("DAARION__GENERAL__MIN_FREE_DISK_MB", "1")
        .output()
        .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let redis = shown.lines().find(|l| l.starts_with("redis")).unwrap();
    assert!(redis.contains("FAIL"), "{redis}");
    assert!(redis.contains("127.0.0.1:1"), "{redis}");
    let postgres = shown.lines().find(|l| l.starts_with("postgres")).unwrap();
    assert!(!postgres.contains("FAIL"), "only redis is down: {shown}");
    assert!(shown.contains("1 failing"), "{shown}");
}

#[test]
fn doctor_json_names_the_failing_check() {
    let out = daarion()
        .args(["doctor", "--json"])
        .env("DAARION__BUS__URL", "nats://127.0.0.1:1")
        .env("DAARION__BUS__CONNECT_TIMEOUT_SECS", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["healthy"], false);
    let nats = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "nats")
        .unwrap();
    assert_eq!(nats["verdict"], "fail", "{nats}");
}

#[test]
fn doctor_password_never_shown() {
    let out = daarion()
        .args(["doctor"])
        .env(
            "DAARION__DATABASE__URL",
            "postgres://daarion:hunter2@127.0.0.1:1/daarion",
        )
        .output()
        .unwrap();
    let shown = text(&out);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("daarion:***@127.0.0.1:1"), "{shown}");
}

#[test]
fn invalid_config_exits_78_naming_the_key() {
    let out = daarion()
        .arg("version")
        .env("DAARION__BUS__MAX_DELIVERIES", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out).contains("bus.max_deliveries"), "{}", text(&out));
}

#[test]
fn unknown_service_is_a_usage_error() {
    let out = daarion().args(["service", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("known: control-plane"),
        "{}",
        text(&out)
    );
}

#[test]
fn migrate_applies_then_reports_up_to_date() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(daarion_db::TestDb::new()).unwrap();
    let first = daarion()
        .arg("migrate")
        .env("DAARION__DATABASE__URL", &db.url)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", text(&first));
    // Every migration the binary embeds, in order, whatever their number.
    let all: Vec<i64> = daarion_db::MIGRATOR.iter().map(|m| m.version).collect();
    assert!(all.len() >= 15, "{all:?}");
    assert!(
        text(&first).contains(&format!("applied migrations: {all:?}")),
        "{}",
        text(&first)
    );
    let second = daarion()
        .arg("migrate")
        .env("DAARION__DATABASE__URL", &db.url)
        .output()
        .unwrap();
    assert!(text(&second).contains("up to date"), "{}", text(&second));
    rt.block_on(db.drop_schema());
}

#[test]
fn admin_create_generates_or_reads_a_password() {
    use std::io::Write;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(daarion_db::TestDb::new()).unwrap();
    let out = daarion()
        .args(["admin", "create", "root-user"])
        .env("DAARION__DATABASE__URL", &db.url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    let password = shown
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .expect("a generated password is shown once");
    assert_eq!(password.len(), 24);

    let mut child = daarion()
        .args(["admin", "create", "second", "--password-stdin"])
        .env("DAARION__DATABASE__URL", &db.url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("at least 12"), "{}", text(&out));
    let count: i64 = rt.block_on(async {
        sqlx::query_scalar("SELECT count(*) FROM admin_accounts")
            .fetch_one(&db.pool)
            .await
            .unwrap()
    });
    assert_eq!(count, 1, "the refused account was not stored");
    rt.block_on(db.drop_schema());
}

/// `daarion admin password|disable|enable|sign-out`: the account operations for root on the box,
/// each ending the sessions it must.
#[test]
fn admin_account_operations_end_sessions() {
    use std::io::Write;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(daarion_db::TestDb::new()).unwrap();
    let admin = |args: &[&str], stdin: Option<&str>| {
        let mut child = daarion()
            .arg("admin")
            .args(args)
            .env("DAARION__DATABASE__URL", &db.url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        text(&out)
    };
    let scalar = |sql: &str| -> Option<String> {
        rt.block_on(sqlx::query_scalar(sql).fetch_one(&db.pool))
            .unwrap()
    };
    let sessions = |n: usize| {
        for _ in 0..n {
            rt.block_on(
                sqlx::query(
                    "INSERT INTO admin_sessions (id_hash, account_id, csrf_token, expires_at) \
                     SELECT gen_random_uuid()::text::bytea, id, 'x', now() + interval '1 hour' FROM admin_accounts",
                )
                .execute(&db.pool),
            )
            .unwrap();
        }
    };
    let count = || scalar("SELECT count(*)::text FROM admin_sessions").unwrap();

    admin(
        &["create", "alice", "--password-stdin"],
        Some("correct horse battery\n"),
    );
    let before = scalar("SELECT password_hash FROM admin_accounts");
    sessions(2);
    let shown = admin(&["password", "alice"], None);
    assert!(shown.contains("2 session(s) ended"), "{shown}");
    assert!(
        shown.lines().any(|l| l.starts_with("password: ")),
        "{shown}"
    );
    assert_ne!(scalar("SELECT password_hash FROM admin_accounts"), before);
    assert_eq!(count(), "0");

    sessions(1);
    admin(&["disable", "alice"], None);
    assert_eq!(count(), "0");
    assert!(scalar("SELECT disabled_at::text FROM admin_accounts").is_some());
    admin(&["enable", "alice"], None);
    assert!(scalar("SELECT disabled_at::text FROM admin_accounts").is_none());

    sessions(3);
    let shown = admin(&["sign-out", "alice"], None);
    assert!(shown.contains("3 session(s)"), "{shown}");
    assert_eq!(count(), "0");
    assert_eq!(
        scalar("SELECT count(*)::text FROM control_outbox").unwrap(),
        "4",
        "each change is audited"
    );
    rt.block_on(db.drop_schema());
}

#[test]
fn models_list_and_verify_check_the_catalogue() {
    let dir = std::env::temp_dir().join(format!("daarion-models-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.gguf"), b"not really a model").unwrap();
    // sha256 of "not really a model"
    let good = "4d9f3b5a0ad3e6bbb9e8ba9b8b7ff53d76b4df7fe50e7ab5e6fd2c1d9e84ea4a";
    std::fs::write(
        dir.join("a.toml"),
        format!("id = \"a\"\nkind = \"chat\"\nfile = \"model.gguf\"\nsha256 = \"{good}\"\nestimate_mb = 1\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("b.toml"),
        "id = \"b\"\nkind = \"embedding\"\nfile = \"absent.gguf\"\nestimate_mb = 1\n",
    )
    .unwrap();
    let run = |sub: &str| {
        daarion()
            .args(["models", sub])
            .env("DAARION__MODELS__MANIFESTS_DIR", &dir)
            .env("DAARION__GENERAL__MODELS_DIR", &dir)
            .output()
            .unwrap()
    };
    let listed = run("list");
    assert!(listed.status.success(), "{}", text(&listed));
    let shown = text(&listed);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("b ") && l.contains("missing")),
        "{shown}"
    );
    let verified = run("verify");
    let shown = text(&verified);
    assert_eq!(
        verified.status.code(),
        Some(1),
        "the checksum above is wrong on purpose: {shown}"
    );
    assert!(
        shown.contains("MISMATCH") && shown.contains("sha256 actual"),
        "{shown}"
    );
    let actual = shown
        .lines()
        .find_map(|l| l.trim().strip_prefix("sha256 actual"))
        .unwrap()
        .trim()
        .to_owned();
    std::fs::write(
        dir.join("a.toml"),
        format!("id = \"a\"\nkind = \"chat\"\nfile = \"model.gguf\"\nsha256 = \"{actual}\"\nestimate_mb = 1\n"),
    )
    .unwrap();
    let verified = run("verify");
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified)
            .lines()
            .any(|l| l.starts_with("a ") && l.contains("ok"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn doctor_checks_the_model_catalogue_and_the_worker() {
    let catalogue = concat!(env!("CARGO_MANIFEST_DIR"), "/../models");
    let empty = std::env::temp_dir().join(format!("daarion-no-models-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = daarion()
        .args(["doctor"])
        .env("DAARION__MODELS__MANIFESTS_DIR", catalogue)
        .env("DAARION__GENERAL__MODELS_DIR", &empty)
        .env("DAARION__GENERAL__MIN_FREE_DISK_MB", "1")
        .output()
        .unwrap();
    let shown = text(&out);
    let line = shown.lines().find(|l| l.starts_with("models")).unwrap();
    assert!(
        line.contains("WARN") && line.contains("missing: minilm, smollm2"),
        "{line}"
    );

    let out = daarion()
        .args(["doctor"])
        .env(
            "DAARION__MODELS__LLAMA_WORKER",
            "/nonexistent/daarion-llama-worker",
        )
        .env("DAARION__GENERAL__MIN_FREE_DISK_MB", "1")
        .output()
        .unwrap();
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    let line = shown.lines().find(|l| l.starts_with("models")).unwrap();
    assert!(
        line.contains("FAIL") && line.contains("not installed"),
        "{line}"
    );
    std::fs::remove_dir_all(&empty).unwrap();
}

/// Serves `body` at `/model.bin` honouring `Range: bytes=N-`, and records each Range header.
fn file_server(body: Vec<u8>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::http::{HeaderMap, StatusCode, header};
    let ranges = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = ranges.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/model.bin",
                axum::routing::get(move |headers: HeaderMap| {
                    let (body, seen) = (body.clone(), seen.clone());
                    async move {
                        let range = headers
                            .get(header::RANGE)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        seen.lock().unwrap().push(range.clone().unwrap_or_default());
                        let from = range.and_then(|r| {
                            r.strip_prefix("bytes=")?
                                .trim_end_matches('-')
                                .parse::<usize>()
                                .ok()
                        });
                        match from {
                            Some(from) if from >= body.len() => {
                                (StatusCode::RANGE_NOT_SATISFIABLE, Vec::new())
                            }
                            Some(from) => (StatusCode::PARTIAL_CONTENT, body[from..].to_vec()),
                            None => (StatusCode::OK, body),
                        }
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    (format!("http://{addr}/model.bin"), ranges)
}

#[test]
fn models_pull_resumes_verifies_and_refuses_a_wrong_checksum() {
    let dir = std::env::temp_dir().join(format!("daarion-pull-{}", std::process::id()));
    let (manifests, store) = (dir.join("manifests"), dir.join("store"));
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::create_dir_all(&store).unwrap();
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let (url, ranges) = file_server(body.clone());
    let write = |sha: &str| {
        std::fs::write(
            manifests.join("m.toml"),
            format!("id = \"m\"\nkind = \"chat\"\nfile = \"m.gguf\"\nsha256 = \"{sha}\"\nurl = \"{url}\"\nestimate_mb = 1\n"),
        )
        .unwrap();
    };
    let run = |args: &[&str]| {
        daarion()
            .args(args)
            .env("DAARION__MODELS__MANIFESTS_DIR", &manifests)
            .env("DAARION__GENERAL__MODELS_DIR", &store)
            .output()
            .unwrap()
    };
    // A wrong checksum: refused, nothing left behind.
    write(&"0".repeat(64));
    let out = run(&["models", "pull", "m"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("checksum mismatch"), "{}", text(&out));
    assert!(!store.join("m.gguf").exists() && !store.join("m.gguf.part").exists());

    // The real checksum, and an interrupted earlier download to resume.
    let whole = dir.join("whole");
    std::fs::write(&whole, &body).unwrap();
    let sha = daarion_swapper::manifest::sha256_file(&whole).unwrap();
    write(&sha);
    std::fs::write(store.join("m.gguf.part"), &body[..1_000_000]).unwrap();
    ranges.lock().unwrap().clear();
    let out = run(&["models", "pull", "m"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("resumed at"), "{shown}");
    assert!(shown.contains("matches the manifest"), "{shown}");
    assert!(shown.contains("100%"), "progress is shown: {shown}");
    assert_eq!(ranges.lock().unwrap().as_slice(), ["bytes=1000000-"]);
    assert_eq!(std::fs::read(store.join("m.gguf")).unwrap(), body);
    let out = run(&["models", "verify"]);
    assert!(out.status.success(), "{}", text(&out));

    // A vision model: its projector is pulled after it, listed under it, and removed with it.
    std::fs::write(
        manifests.join("v.toml"),
        format!(
            "id = \"v\"\nkind = \"vision\"\nfile = \"v.gguf\"\nsha256 = \"{sha}\"\nurl = \"{url}\"\n\
             mmproj = \"v-mmproj.gguf\"\nmmproj_url = \"{url}\"\nmmproj_sha256 = \"{sha}\"\nestimate_mb = 1\n"
        ),
    )
    .unwrap();
    let out = run(&["models", "pull", "v"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("v-mmproj.gguf"), "{shown}");
    assert_eq!(shown.matches("matches the manifest").count(), 2, "{shown}");
    assert_eq!(std::fs::read(store.join("v-mmproj.gguf")).unwrap(), body);
    let out = run(&["models", "verify"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("+ mmproj"), "{}", text(&out));
    std::fs::write(store.join("v-mmproj.gguf"), b"tampered").unwrap();
    let out = run(&["models", "verify"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a damaged projector fails verify"
    );
    let out = run(&["models", "rm", "v"]);
    assert!(out.status.success());
    assert!(!store.join("v.gguf").exists() && !store.join("v-mmproj.gguf").exists());

    // An image model in parts: each part is pulled, listed, verified and removed with it; an
    // online voice has nothing to pull and is listed as online.
    std::fs::write(
        manifests.join("img.toml"),
        format!(
            "id = \"img\"\nkind = \"image\"\nfile = \"img.gguf\"\nsha256 = \"{sha}\"\nurl = \"{url}\"\nestimate_mb = 1\n\
             [components]\nvae = {{ file = \"img-vae.safetensors\", url = \"{url}\", sha256 = \"{sha}\" }}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        manifests.join("aria.toml"),
        "id = \"aria\"\nkind = \"tts\"\nbackend = \"edge-tts\"\nvoice = \"en-US-AriaNeural\"\nestimate_mb = 1\n",
    )
    .unwrap();
    let out = run(&["models", "pull", "img"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert_eq!(shown.matches("matches the manifest").count(), 2, "{shown}");
    assert_eq!(
        std::fs::read(store.join("img-vae.safetensors")).unwrap(),
        body
    );
    let out = run(&["models", "verify"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("+ vae"), "{shown}");
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("aria") && l.contains("online")),
        "{shown}"
    );
    let out = run(&["models", "pull", "aria"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("online voice"), "{}", text(&out));
    let out = run(&["models", "rm", "img"]);
    assert!(out.status.success());
    assert!(!store.join("img.gguf").exists() && !store.join("img-vae.safetensors").exists());

    // rm deletes the file but never one outside the models directory.
    let out = run(&["models", "rm", "m"]);
    assert!(out.status.success());
    assert!(!store.join("m.gguf").exists());
    let out = run(&["models", "pull", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no model `nope`"), "{}", text(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

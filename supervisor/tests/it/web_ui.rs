//! The admin web UI on the admin port: the embedded files, the proxy to the services, browser
//! sessions, and the whole UI driven in a real headless Chromium.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    COOKIE, ETAG, IF_NONE_MATCH, SET_COOKIE,
};
use serde_json::{Value, json};

use crate::helpers::appliance::Appliance;

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn header(r: &reqwest::Response, name: reqwest::header::HeaderName) -> &str {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_ui_is_served_with_types_caching_and_compression() {
    let mut app = Appliance::new().await;
    app.start();
    app.wait_all_ready(Duration::from_secs(60)).await;
    let http = client();

    let index = http.get(format!("{}/", app.admin)).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(header(&index, CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header(&index, CACHE_CONTROL), "no-cache");
    assert!(header(&index, CONTENT_SECURITY_POLICY).contains("default-src 'self'"));
    let html = index.text().await.unwrap();
    let script = html
        .split('"')
        .find(|s| s.starts_with("/assets/") && s.ends_with(".js"))
        .expect("index.html names its script")
        .to_owned();

    // A page of the app (client-side route) is the same document.
    let page = http
        .get(format!("{}/agents", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), html);

    let plain = http
        .get(format!("{}{script}", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(
        header(&plain, CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        header(&plain, CACHE_CONTROL),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(&plain, CONTENT_ENCODING), "");
    let etag = header(&plain, ETAG).to_owned();
    let original = plain.bytes().await.unwrap();

    for (accept, coding) in [("gzip, deflate, br", "br"), ("gzip", "gzip")] {
        let packed = http
            .get(format!("{}{script}", app.admin))
            .header(ACCEPT_ENCODING, accept)
            .send()
            .await
            .unwrap();
        assert_eq!(header(&packed, CONTENT_ENCODING), coding);
        let body = packed.bytes().await.unwrap();
        assert!(
            body.len() < original.len() / 2,
            "{coding} shrinks the script"
        );
        let unpacked = if coding == "gzip" {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
                .unwrap();
            out
        } else {
            let mut out = Vec::new();
            brotli_decompressor::BrotliDecompress(&mut &body[..], &mut out).unwrap();
            out
        };
        assert_eq!(unpacked, original, "{coding} decodes to the same script");
    }

    let again = http
        .get(format!("{}{script}", app.admin))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    let missing = http
        .get(format!("{}/assets/nope.js", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let api = http
        .get(format!("{}/api/nope", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(header(&api, CONTENT_TYPE), "application/json");
    app.cleanup().await;
}

/// Logs in through the proxy; returns the session cookie and its CSRF token.
async fn login(app: &Appliance, user: &str, password: &str) -> (String, String) {
    let r = client()
        .post(format!("{}/api/control/auth/login", app.admin))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = header(&r, SET_COOKIE).split(';').next().unwrap().to_owned();
    let csrf = r.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn the_proxy_passes_tokens_and_browser_sessions_to_the_services() {
    let mut app = Appliance::new().await;
    app.start();
    app.wait_all_ready(Duration::from_secs(60)).await;
    app.create_admin("alice", "correct horse battery staple");
    let http = client();
    let get = |path: &str, cookie: Option<&str>, csrf: Option<&str>| {
        let mut request = http.get(format!("{}{path}", app.admin));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };

    // The root token reaches every service through the proxy.
    let agents = app
        .root(Method::GET, "/api/control/agents", Value::Null)
        .await;
    assert!(agents.is_array());
    let users = app
        .root(Method::GET, "/api/memory/v1/users", Value::Null)
        .await;
    assert!(users.is_array());

    // Nothing without a credential; the services answer for themselves.
    for path in [
        "/api/services",
        "/api/control/agents",
        "/api/memory/v1/users",
    ] {
        assert_eq!(get(path, None, None).await.unwrap().status(), 401, "{path}");
    }

    let (cookie, csrf) = login(&app, "alice", "correct horse battery staple").await;
    for path in [
        "/api/services",
        "/api/bus",
        "/api/control/agents",
        "/api/memory/v1/users",
        "/api/gateway/v1/pairings",
    ] {
        let r = get(path, Some(&cookie), Some(&csrf)).await.unwrap();
        assert_eq!(r.status(), 200, "{path} with the session");
    }
    // The bus report lists the seed's streams with their consumers.
    let bus: Value = get("/api/bus", Some(&cookie), Some(&csrf))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = bus["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"MESSAGES") && names.contains(&"AUDIT"),
        "{bus}"
    );

    // The cookie alone (what a cross-site page could make the browser send) is not enough for
    // the services that check sessions with the control plane, and a wrong token neither.
    for path in ["/api/services", "/api/memory/v1/users"] {
        assert_eq!(
            get(path, Some(&cookie), None).await.unwrap().status(),
            401,
            "{path} without the CSRF token"
        );
        assert_eq!(
            get(
                path,
                Some(&cookie),
                Some("0123456789abcdef0123456789abcdef")
            )
            .await
            .unwrap()
            .status(),
            401,
            "{path} with a wrong CSRF token"
        );
    }
    let refused = http
        .post(format!("{}/api/control/agents", app.admin))
        .header(COOKIE, &cookie)
        .json(&json!({"id": "sneaky", "name": "sneaky"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let error: Value = refused.json().await.unwrap();
    assert!(error["error"]["message"].as_str().unwrap().contains("CSRF"));

    // The swapper and ingest are off in this appliance: a clear 502, not a hang.
    for (path, what) in [
        ("/api/swapper/v1/models", "swapper"),
        ("/api/ingest/v1/attachments", "ingest"),
    ] {
        let down = get(path, Some(&cookie), Some(&csrf)).await.unwrap();
        assert_eq!(down.status(), 502, "{path}");
        let error: Value = down.json().await.unwrap();
        assert!(
            error["error"]["message"].as_str().unwrap().contains(what),
            "{path}: {error}"
        );
    }

    // After logout the cookie opens nothing.
    let out = http
        .post(format!("{}/api/control/auth/logout", app.admin))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success());
    for path in ["/api/services", "/api/memory/v1/users"] {
        assert_eq!(
            get(path, Some(&cookie), Some(&csrf))
                .await
                .unwrap()
                .status(),
            401,
            "{path} after logout"
        );
    }
    app.cleanup().await;
}

fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(
        std::env::var("DAARION_E2E_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    path.is_file().then_some(path)
}

fn web_ui() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web-ui")
}

/// What the scripted model answers as every crew task's final answer.
const CREW_ANSWER: &str = "Tomatoes want six hours of sun.";

/// An OpenAI-compatible model for the crew's steps: every request gets the same final answer,
/// streamed as the router asks for it, so a run completes in a second whatever it asks.
async fn scripted_model() -> std::net::SocketAddr {
    async fn complete() -> impl axum::response::IntoResponse {
        let content = format!("Thought: I know it now.\nFinal Answer: {CREW_ANSWER}");
        let frames: String = [
            json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": null}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}),
        ]
        .iter()
        .map(|c| format!("data: {c}\n\n"))
        .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
        .collect();
        ([(CONTENT_TYPE, "text/event-stream")], frames)
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(complete));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// An agent on `model`, usable by every guest with every model and tool.
async fn agent(app: &Appliance, id: &str, model: &str, max_tokens: u32) {
    app.root(
        Method::POST,
        "/api/control/agents",
        json!({"id": id, "name": id, "default_model": model}),
    )
    .await;
    app.root(
        Method::POST,
        &format!("/api/control/prompts/{id}"),
        json!({"content": "You are a helpful assistant. Answer in one short sentence."}),
    )
    .await;
    app.root(
        Method::PUT,
        &format!("/api/control/policy/{id}"),
        json!({"document": {"roles": {"guest": {"use": true, "models": {"allow": ["*"]}, "tools": {"allow": ["*"]}, "modes": {"allow": ["*"]}}}}}),
    )
    .await;
    app.root(
        Method::PUT,
        &format!("/api/control/config/agents.{id}"),
        json!({"value": {"models": [model], "max_tokens": max_tokens, "tools": [], "temperature": 0.0}}),
    )
    .await;
}

/// The browser files, run one after another in one `node --test` (the admin one first: it
/// starts at the login page and ends by signing out its own session).
const E2E_FILES: [&str; 3] = [
    "e2e/admin.e2e.mjs",
    "e2e/crews.e2e.mjs",
    "e2e/monitoring.e2e.mjs",
];

/// Every page's screenshot the browser files take.
const SCREENSHOTS: [&str; 16] = [
    "overview",
    "services",
    "models",
    "agents",
    "policy-users",
    "config",
    "quotas",
    "memory",
    "audit",
    "chat",
    "attachments",
    "crews",
    "runs",
    "trace",
    "metrics",
    "alerts",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_ui_works_end_to_end_in_chromium() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let playwright = web_ui().join("node_modules/playwright-core");
    let (Some(chromium), true) = (chromium(), playwright.is_dir()) else {
        assert!(
            !ci,
            "Chromium (/usr/bin/chromium) and web-ui/node_modules are needed: tests/setup.sh installs them"
        );
        eprintln!("skipped: no Chromium or playwright-core (tests/setup.sh installs them)");
        return;
    };
    assert!(
        std::path::Path::new("/usr/bin/prometheus").is_file()
            && std::path::Path::new("/usr/bin/prometheus-alertmanager").is_file(),
        "Debian's prometheus and prometheus-alertmanager (tests/setup.sh installs them)"
    );
    let model = scripted_model().await;
    let mut app = Appliance::new().await;
    app.with_swapper();
    app.with_ingest();
    app.with_crews();
    app.with_monitoring();
    app.start();
    let took = app.wait_all_ready(Duration::from_secs(180)).await;
    println!(
        "figure: cold start of the whole appliance (swapper, ingest, crews, monitoring) to all-ready: {} ms",
        took.as_millis()
    );
    let password = "a long enough e2e password";
    app.create_admin("alice", password);

    // What the pages will look for: an agent on the local model (chat, trace), one on the
    // scripted model (the crew's steps), and a user with a fact and a relation in memory.
    agent(&app, "helper", "local/smollm2", 16).await;
    app.root(
        Method::PUT,
        "/api/control/config/providers.fake",
        json!({"value": {"kind": "openai", "base_url": format!("http://{model}/v1"), "timeout_secs": 60}}),
    )
    .await;
    agent(&app, "crewbot", "fake/m", 64).await;
    let olena = app
        .root(
            Method::POST,
            "/api/memory/v1/identities/resolve",
            json!({"channel": "telegram", "external_id": "777", "display_name": "Olena"}),
        )
        .await["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.root(
        Method::POST,
        &format!("/api/memory/v1/users/{olena}/facts"),
        json!({"content": "Olena's favourite colour is teal"}),
    )
    .await;
    app.root(
        Method::POST,
        "/api/memory/v1/graph/relations",
        json!({"user_id": olena, "from": {"kind": "person", "name": "Olena"}, "relation": "lives_in", "to": {"kind": "city", "name": "Kyiv"}}),
    )
    .await;

    // The fact's vector is in the index before the browser searches for it.
    let mut indexed = false;
    for _ in 0..600 {
        let status = app
            .root(Method::GET, "/api/memory/v1/index/status", Value::Null)
            .await;
        if status["states"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["kind"] == "fact" && s["state"] == "indexed")
        {
            indexed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(indexed, "the fact was never indexed; log:\n{}", app.log());

    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web-ui/e2e/screenshots");
    for page in SCREENSHOTS {
        // A screenshot left by an earlier run must not stand in for one this run did not take.
        let _ = std::fs::remove_file(shots.join(format!("{page}.png")));
    }
    let started = std::time::Instant::now();
    let output = Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg("--test-concurrency=1")
        .args(E2E_FILES)
        .current_dir(web_ui())
        .env("DAARION_E2E_URL", &app.admin)
        .env("DAARION_E2E_USER", "alice")
        .env("DAARION_E2E_PASSWORD", password)
        .env("DAARION_E2E_SCREENSHOTS", &shots)
        .env("DAARION_E2E_CHROMIUM", &chromium)
        .env("DAARION_E2E_USER_ID", &olena)
        .env("DAARION_E2E_CHAT_AGENT", "helper")
        .env("DAARION_E2E_CREW_AGENT", "crewbot")
        .env("DAARION_E2E_CREW_ANSWER", CREW_ANSWER)
        .env(
            "DAARION_E2E_CREWAI_DIR",
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../appliance/crews/tests/fixtures/trip_planner"),
        )
        .output()
        .expect("node runs");
    let report = crate::helpers::text(&output);
    println!("{report}");
    println!(
        "figure: the browser files took {} s",
        started.elapsed().as_secs()
    );
    assert!(
        output.status.success(),
        "the browser tests failed:\n{report}\nappliance log:\n{}",
        app.log()
    );
    for page in SCREENSHOTS {
        assert!(
            shots.join(format!("{page}.png")).is_file(),
            "screenshot of {page}"
        );
    }
    app.cleanup().await;
}

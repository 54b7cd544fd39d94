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
    let mut app = Appliance::new().await;
    app.with_swapper();
    app.with_ingest();
    app.start();
    app.wait_all_ready(Duration::from_secs(120)).await;
    let password = "a long enough e2e password";
    app.create_admin("alice", password);

    // What the pages will look for: an agent on the local model, and a user with a fact and a
    // relation in memory.
    app.root(
        Method::POST,
        "/api/control/agents",
        json!({"id": "helper", "name": "Helper", "default_model": "local/smollm2"}),
    )
    .await;
    app.root(
        Method::POST,
        "/api/control/prompts/helper",
        json!({"content": "You are a helpful assistant. Answer in one short sentence."}),
    )
    .await;
    app.root(
        Method::PUT,
        "/api/control/policy/helper",
        json!({"document": {"roles": {"guest": {"use": true, "models": {"allow": ["*"]}, "tools": {"allow": ["*"]}, "modes": {"allow": ["*"]}}}}}),
    )
    .await;
    app.root(
        Method::PUT,
        "/api/control/config/agents.helper",
        json!({"value": {"models": ["local/smollm2"], "max_tokens": 16, "tools": [], "temperature": 0.0}}),
    )
    .await;
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
    let output = Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg("e2e/admin.e2e.mjs")
        .current_dir(web_ui())
        .env("DAARION_E2E_URL", &app.admin)
        .env("DAARION_E2E_USER", "alice")
        .env("DAARION_E2E_PASSWORD", password)
        .env("DAARION_E2E_SCREENSHOTS", &shots)
        .env("DAARION_E2E_CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let report = crate::helpers::text(&output);
    println!("{report}");
    assert!(
        output.status.success(),
        "the browser tests failed:\n{report}\nappliance log:\n{}",
        app.log()
    );
    for page in [
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
    ] {
        assert!(
            shots.join(format!("{page}.png")).is_file(),
            "screenshot of {page}"
        );
    }
    app.cleanup().await;
}

//! `sudo daarion telegram set-webhook` resolves a bot's secret references as root and sends
//! them to the bot's `api_url` (issue #21, High 1). A reference to any root-only file (the
//! appliance's admin token first of all) would have gone to whatever server the config named:
//! references now resolve inside the secrets directory only, and nothing is sent otherwise.

use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::post;
use daarion_control_plane::testing::Plane;
use daarion_gateway::GatewayError;
use serde_json::json;

/// A Bot API that records every request (path and body) and says yes.
async fn fake_telegram() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().route(
        "/{*rest}",
        post(move |uri: axum::http::Uri, body: String| {
            record.lock().unwrap().push(format!("{uri} {body}"));
            async { axum::Json(json!({"ok": true, "result": true})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn private(path: &std::path::Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[tokio::test]
async fn set_webhook_sends_only_secrets_from_the_secrets_dir() {
    let base = std::env::temp_dir().join(format!("daarion-hook-{}", uuid::Uuid::new_v4().simple()));
    let secrets = base.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    private(&secrets.join("token"), "123:SAFE");
    private(&secrets.join("hook"), "hook-secret");
    private(&base.join("outside"), "not-for-telegram");
    let mut plane = Plane::start().await;
    plane.config.general.secrets_dir = secrets.clone();
    let (api, seen) = fake_telegram().await;
    let inside = |name: &str| format!("file:{}", secrets.join(name).display());
    let admin_token = format!(
        "file:{}",
        plane.config.supervisor.admin_token_file.display()
    );
    let outside = format!("file:{}", base.join("outside").display());
    let climbing = format!("file:{}/../outside", secrets.display());
    let bot = |token_ref: &str, hook_ref: &str| {
        json!({"value": {"token_ref": token_ref, "webhook_secret_ref": hook_ref,
                         "api_url": api, "public_url": "https://box.example"}})
    };

    // A path climbing out is not even stored: the settings refuse `..` in a reference.
    let (status, body) = plane
        .put("/config/telegram.mainbot", bot(&climbing, &inside("hook")))
        .await;
    assert_eq!(status, 422, "{body}");
    for (token_ref, hook_ref, why) in [
        (
            admin_token.clone(),
            inside("hook"),
            "the admin token as the bot token",
        ),
        (
            inside("token"),
            admin_token.clone(),
            "the admin token as the webhook secret",
        ),
        (
            outside.clone(),
            inside("hook"),
            "a file outside the secrets dir",
        ),
    ] {
        let (status, body) = plane
            .put("/config/telegram.mainbot", bot(&token_ref, &hook_ref))
            .await;
        assert_eq!(status, 201, "{body}");
        let err = daarion_gateway::set_webhook(&plane.config, "mainbot")
            .await
            .unwrap_err();
        assert!(
            matches!(err, GatewayError::Misconfigured { .. }),
            "{why}: {err}"
        );
        assert!(
            seen.lock().unwrap().is_empty(),
            "{why}: Telegram was called: {:?}",
            seen.lock().unwrap()
        );
    }

    let (status, body) = plane
        .put(
            "/config/telegram.mainbot",
            bot(&inside("token"), &inside("hook")),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let url = daarion_gateway::set_webhook(&plane.config, "mainbot")
        .await
        .unwrap();
    assert_eq!(url, "https://box.example/telegram/mainbot/webhook");
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].contains("123:SAFE") && calls[0].contains("hook-secret"),
        "{calls:?}"
    );
    assert!(
        !calls[0].contains(&plane.root),
        "the root token never leaves"
    );
    plane.stop().await;
    let _ = std::fs::remove_dir_all(&base);
}

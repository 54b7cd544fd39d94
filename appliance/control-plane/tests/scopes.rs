//! Scopes and credentials from the security review (issue #21), each attack reproduced against
//! the real control plane and shown not to get through: a `config:write` token pointing a
//! secret at a server of its choosing, a data-plane token reading the whole control plane, a
//! user-confined token minted for no one, and two live tokens sharing a name.

use daarion_control_plane::testing::Plane;
use reqwest::Method;
use serde_json::{Value, json};

/// Calls `path` with `token` and asserts the status; `why` names the case in a failure.
async fn expect(
    plane: &Plane,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: u16,
    why: &str,
) -> Value {
    let (got, answer) = plane.call(method.clone(), path, Some(token), body).await;
    assert_eq!(got, status, "{why}: {method} {path} → {answer}");
    answer
}

fn provider(base_url: &str, key_ref: &str) -> Value {
    json!({"value": {"kind": "openai", "base_url": base_url, "api_key_ref": key_ref, "models": ["m"]}})
}

fn bot(api_url: &str, public_url: &str) -> Value {
    json!({"value": {"token_ref": "file:/etc/daarion/secrets/bot-token", "webhook_secret_ref": "file:/etc/daarion/secrets/bot-hook",
                     "api_url": api_url, "public_url": public_url, "mode": "polling"}})
}

/// High 1: with `config:write` alone, a provider's `base_url` (or a polling bot's `api_url`)
/// could be pointed at an attacker, who then received the secret with the next request.
#[tokio::test]
async fn only_admin_changes_where_a_secret_is_sent() {
    let plane = Plane::start().await;
    let writer = plane.token(&["config:write", "read"]).await;
    let (status, body) = plane
        .put(
            "/config/providers.deepseek",
            provider(
                "https://api.deepseek.com",
                "file:/etc/daarion/secrets/deepseek",
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = plane
        .put(
            "/config/telegram.helper",
            bot("https://api.telegram.org", "https://box.example"),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    let mut more_models = provider(
        "https://api.deepseek.com",
        "file:/etc/daarion/secrets/deepseek",
    );
    more_models["value"]["models"] = json!(["m", "deepseek-chat"]);
    let put = Method::PUT;
    for (key, body, expected, why) in [
        (
            "providers.deepseek",
            more_models,
            201,
            "other fields stay config:write's",
        ),
        (
            "providers.deepseek",
            provider(
                "https://evil.example/v1",
                "file:/etc/daarion/secrets/deepseek",
            ),
            403,
            "a provider's base_url",
        ),
        (
            "providers.deepseek",
            provider("https://api.deepseek.com", "file:/etc/daarion/admin.token"),
            403,
            "which secret a provider sends",
        ),
        (
            "providers.evil",
            provider(
                "https://evil.example/v1",
                "file:/etc/daarion/secrets/deepseek",
            ),
            403,
            "a new provider",
        ),
        (
            "telegram.helper",
            bot("https://evil.example", "https://box.example"),
            403,
            "a bot's api_url",
        ),
        (
            "telegram.helper",
            bot("https://api.telegram.org", "https://evil.example"),
            403,
            "a bot's webhook URL",
        ),
    ] {
        let path = format!("/config/{key}");
        let answer = expect(
            &plane,
            &writer,
            put.clone(),
            &path,
            Some(body.clone()),
            expected,
            why,
        )
        .await;
        if expected == 403 {
            assert_eq!(answer["error"]["code"], "forbidden", "{why}: {answer}");
            // The administrator may.
            expect(
                &plane,
                &plane.root,
                put.clone(),
                &path,
                Some(body),
                201,
                why,
            )
            .await;
        }
    }
    let (_, stored) = plane.get("/config/providers.deepseek/versions").await;
    let authors: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["author"].as_str().unwrap())
        .collect();
    assert!(
        authors.iter().filter(|a| a.starts_with("token:")).count() == 1,
        "only the harmless change is the writer's: {authors:?}"
    );
    plane.stop().await;
}

/// Medium 3: any scope implied `read`, so an `agents:use` token read every prompt, policy
/// (with user ids), config and quota.
#[tokio::test]
async fn read_is_its_own_scope_and_data_plane_tokens_read_nothing_here() {
    let plane = Plane::start().await;
    let (status, body) = plane
        .post("/agents", json!({"id": "helper", "name": "Helper"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = plane
        .post("/prompts/helper", json!({"content": "You are helpful."}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = plane
        .put("/config/misc.x", json!({"value": {"a": 1}}))
        .await;
    assert_eq!(status, 201, "{body}");
    let reads = [
        "/agents",
        "/agents/helper",
        "/prompts/helper",
        "/prompts/helper/1",
        "/config",
        "/config/misc.x",
        "/config/misc.x/versions",
        "/roles",
        "/users/alice/roles",
        "/quotas/alice",
    ];
    let user = uuid::Uuid::new_v4().to_string();
    let mut narrow = vec![];
    for scopes in [
        &["agents:use"][..],
        &["memory:read"],
        &["memory:write"],
        &["models:use"],
        &["quota:consume"],
        &["prompts:write"],
        &["config:write"],
    ] {
        narrow.push((scopes.join("+"), plane.token(scopes).await));
    }
    narrow.push(("memory:user".into(), plane.user_token(&user, &[]).await));
    for (scopes, token) in &narrow {
        for path in reads {
            let answer = expect(&plane, token, Method::GET, path, None, 403, scopes).await;
            assert_eq!(answer["error"]["code"], "forbidden", "{scopes} {path}");
        }
    }
    let reader = plane.token(&["read"]).await;
    for path in reads {
        expect(&plane, &reader, Method::GET, path, None, 200, "read reads").await;
    }
    plane.stop().await;
}

/// Low: two live tokens could share a name (and so, once, a user's memory); a user-confined
/// token must name its user, and says who it is.
#[tokio::test]
async fn token_names_are_unique_and_a_confined_token_names_its_user() {
    let plane = Plane::start().await;
    let mint = |body: Value| plane.post("/auth/tokens", body);
    let (status, first) = mint(json!({"name": "ann-bot", "scopes": ["read"]})).await;
    assert_eq!(status, 201, "{first}");
    let (status, body) = mint(json!({"name": "ann-bot", "scopes": ["agents:use"]})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");
    let (status, body) = mint(json!({"name": " ann-bot ", "scopes": ["read"]})).await;
    assert_eq!(status, 409, "names are trimmed first: {body}");
    // A revoked token's name is free again.
    let id = first["info"]["id"].as_str().unwrap();
    let (status, _) = plane.delete(&format!("/auth/tokens/{id}")).await;
    assert_eq!(status, 204);
    let (status, body) = mint(json!({"name": "ann-bot", "scopes": ["read"]})).await;
    assert_eq!(status, 201, "{body}");

    let user = uuid::Uuid::new_v4().to_string();
    for (body, why) in [
        (
            json!({"name": "u1", "scopes": ["memory:user"]}),
            "memory:user without its user",
        ),
        (
            json!({"name": "u2", "scopes": ["memory:read"], "user_id": user}),
            "a user for another scope",
        ),
        (
            json!({"name": "u3", "scopes": ["memory:user"], "user_id": "ann"}),
            "a user id is a UUID",
        ),
    ] {
        let (status, answer) = mint(body).await;
        assert_eq!(status, 422, "{why}: {answer}");
    }
    let (status, minted) =
        mint(json!({"name": "ann-memory", "scopes": ["memory:user"], "user_id": user})).await;
    assert_eq!(status, 201, "{minted}");
    assert_eq!(minted["info"]["user_id"], user.as_str());
    let token = minted["token"].as_str().unwrap();
    let who = expect(
        &plane,
        token,
        Method::POST,
        "/auth/whoami",
        None,
        200,
        "whoami",
    )
    .await;
    assert_eq!(who["user_id"], user.as_str(), "{who}");
    let seen = expect(
        &plane,
        &plane.root,
        Method::POST,
        "/auth/introspect",
        Some(json!({"token": token})),
        200,
        "introspect",
    )
    .await;
    assert_eq!(seen["user_id"], user.as_str(), "{seen}");
    assert_eq!(seen["scopes"], json!(["memory:user"]));
    plane.stop().await;
}

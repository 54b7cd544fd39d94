use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::stack::{Stack, claim, spec};

#[tokio::test]
async fn each_scope_reaches_exactly_its_routes_and_runs() {
    let stack = Stack::start().await;
    stack.crew("suppliers").await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let plane = &stack.plane;
    let reader = plane.token(&["read"]).await;
    let writer = plane.token(&["crews:write"]).await;
    let starter = plane.token(&["crews:run"]).await;
    let other_starter = plane.token(&["crews:run"]).await;
    let user_a = plane.user_token(&a.to_string(), &["crews:run"]).await;
    let user_b = plane.user_token(&b.to_string(), &["crews:run"]).await;
    let stranger = plane.token(&["agents:use"]).await;
    let start = |user: Option<Uuid>| Some(json!({"user_id": user, "inputs": {"topic": "tea"}}));

    let (s, _) = stack.call(Method::GET, "/v1/crews", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = stack
        .call(Method::GET, "/v1/crews", Some("wrong"), None)
        .await;
    assert_eq!(s, 401);
    for (who, token, read, write, run) in [
        ("read", &reader, 200, 403, 403),
        ("crews:write", &writer, 403, 200, 403),
        ("crews:run bound", &user_a, 403, 403, 201),
        ("agents:use", &stranger, 403, 403, 403),
    ] {
        let (s, body) = stack
            .call(Method::GET, "/v1/crews/suppliers", Some(token), None)
            .await;
        assert_eq!(s, read, "{who} reads: {body}");
        let (s, body) = stack
            .call(
                Method::PUT,
                "/v1/crews/suppliers",
                Some(token),
                Some(spec("suppliers")),
            )
            .await;
        assert_eq!(s, write, "{who} writes: {body}");
        let (s, body) = stack
            .call(
                Method::POST,
                "/v1/crews/suppliers/runs",
                Some(token),
                start(None),
            )
            .await;
        assert_eq!(s, run, "{who} starts: {body}");
    }
    // Bound tokens: their own user, never another.
    let (s, _) = stack
        .call(
            Method::POST,
            "/v1/crews/suppliers/runs",
            Some(&user_a),
            start(Some(b)),
        )
        .await;
    assert_eq!(s, 403, "A names B");
    let (_, run_b) = stack
        .call(
            Method::POST,
            "/v1/crews/suppliers/runs",
            Some(&user_b),
            start(None),
        )
        .await;
    let run_b = run_b["run"]["id"].as_str().unwrap().to_owned();
    let runs_of = async |token: &str, query: &str| -> (u16, Value) {
        stack
            .call(Method::GET, &format!("/v1/runs{query}"), Some(token), None)
            .await
    };
    let (s, mine) = runs_of(&user_a, "").await;
    assert_eq!(s, 200);
    assert_eq!(mine.as_array().unwrap().len(), 1, "A sees A's run only");
    assert_eq!(mine[0]["user_id"], a.to_string());
    let (s, _) = runs_of(&user_a, &format!("?user_id={b}")).await;
    assert_eq!(s, 403, "A lists B's");
    for (method, path) in [
        (Method::GET, format!("/v1/runs/{run_b}")),
        (Method::GET, format!("/v1/runs/{run_b}/events")),
        (Method::POST, format!("/v1/runs/{run_b}/cancel")),
        (Method::POST, format!("/v1/runs/{run_b}/resume")),
        (Method::POST, format!("/v1/runs/{run_b}/rerun")),
    ] {
        let (s, body) = stack
            .call(method, &path, Some(&user_a), Some(json!({})))
            .await;
        assert_eq!(s, 403, "A on B's run {path}: {body}");
    }
    let (s, _) = stack
        .call(
            Method::GET,
            &format!("/v1/runs/{run_b}"),
            Some(&user_b),
            None,
        )
        .await;
    assert_eq!(s, 200, "B reads B's");
    let (s, _) = stack
        .call(
            Method::GET,
            &format!("/v1/runs/{run_b}"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(s, 200, "a reader reads any run");
    let (s, all) = runs_of(&reader, "").await;
    assert_eq!((s, all.as_array().unwrap().len()), (200, 2));
    let (s, _) = stack
        .call(
            Method::POST,
            &format!("/v1/runs/{run_b}/cancel"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(s, 403, "reading is not cancelling");

    // Unbound crews:run: names the user, sees what it started.
    let (s, _) = stack
        .call(
            Method::POST,
            "/v1/crews/suppliers/runs",
            Some(&starter),
            start(None),
        )
        .await;
    assert_eq!(s, 422, "an unbound token must name the user");
    let (_, started) = stack
        .call(
            Method::POST,
            "/v1/crews/suppliers/runs",
            Some(&starter),
            start(Some(b)),
        )
        .await;
    let started = started["run"]["id"].as_str().unwrap().to_owned();
    let (s, _) = stack
        .call(
            Method::GET,
            &format!("/v1/runs/{started}"),
            Some(&starter),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = stack
        .call(
            Method::GET,
            &format!("/v1/runs/{started}"),
            Some(&other_starter),
            None,
        )
        .await;
    assert_eq!(s, 403, "another unbound token did not start it");
    let (_, theirs) = runs_of(&other_starter, "").await;
    assert_eq!(theirs.as_array().unwrap().len(), 0);

    // The journal: services only.
    let claim_path = format!("/v1/worker/runs/{}/claim", Uuid::new_v4());
    for (who, token, expected) in [
        ("read", &reader, 403),
        ("crews:run bound", &user_a, 403),
        ("crews:run", &starter, 403),
        ("crews:write", &writer, 409),
    ] {
        let (s, body) = stack
            .call(
                Method::POST,
                &claim_path,
                Some(token),
                Some(claim("w", "ghost", a)),
            )
            .await;
        assert_eq!(s, expected, "{who} claims: {body}");
    }

    let (s, doc) = stack.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, 200);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/crews",
        "/v1/crews/{id}",
        "/v1/crews/{id}/versions",
        "/v1/crews/{id}/diff",
        "/v1/crews/{id}/rollback",
        "/v1/crews/import",
        "/v1/crews/{id}/runs",
        "/v1/runs",
        "/v1/runs/{id}",
        "/v1/runs/{id}/events",
        "/v1/runs/{id}/cancel",
        "/v1/runs/{id}/resume",
        "/v1/runs/{id}/rerun",
        "/v1/worker/runs/{id}/claim",
        "/v1/worker/runs/{id}/steps",
        "/v1/worker/runs/{id}/heartbeat",
        "/v1/worker/runs/{id}/finish",
    ] {
        assert!(paths.contains_key(path), "{path} in the OpenAPI document");
    }
    stack.stop().await;
}

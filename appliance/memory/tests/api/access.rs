//! Who may call, and whose data a caller reaches.

use serde_json::json;

use crate::helpers::memory::Memory;

#[tokio::test]
async fn credentials_scopes_and_user_confinement() {
    let memory = Memory::start().await;
    let alice = memory.user("1001").await;
    let bob = memory.user("1002").await;
    let alice_profile = format!("/v1/users/{alice}");
    let bob_profile = format!("/v1/users/{bob}");
    let alice_facts = format!("/v1/users/{alice}/facts");
    let tea = json!({"content": "likes tea"});

    let answer = memory.anonymous().get(&alice_profile).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    memory
        .with_token("dcp_wrong")
        .get(&alice_profile)
        .await
        .expect(401);

    let reader = memory.token(&["memory:read"]).await;
    let profile = memory
        .with_token(&reader)
        .get(&alice_profile)
        .await
        .expect(200);
    assert_eq!(profile["identities"][0]["external_id"], "1001");
    let answer = memory
        .with_token(&reader)
        .post(&alice_facts, tea.clone())
        .await;
    assert_eq!(
        answer.status, 403,
        "a read token cannot write: {}",
        answer.body
    );

    let unrelated = memory.token(&["prompts:write"]).await;
    let answer = memory.with_token(&unrelated).get(&alice_profile).await;
    assert_eq!(answer.status, 403, "no memory scope at all");

    // A token minted for a user reaches only that user, with or without the header.
    let acting = memory.plane.user_token(&alice, &[]).await;
    let answer = memory.with_token(&acting).get(&alice_profile).await;
    assert_eq!(answer.status, 200, "acts for its own user: {}", answer.body);
    let as_alice = || memory.with_token(&acting).acting_for(&alice);
    as_alice().get(&alice_profile).await.expect(200);
    let refused = as_alice().get(&bob_profile).await.expect(403);
    assert_eq!(refused["error"]["code"], "other_user");
    let answer = as_alice().post(&alice_facts, tea).await;
    assert_eq!(
        answer.status, 201,
        "acting for alice may write alice's data"
    );
    let answer = as_alice()
        .get(&format!("/v1/search?user_id={bob}&q=tea"))
        .await;
    assert_eq!(answer.status, 403, "nor search another user's data");
    // Even the root token is confined once it names a user.
    memory
        .root()
        .acting_for(&alice)
        .get(&bob_profile)
        .await
        .expect(403);
    memory.stop().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let memory = Memory::start().await;
    let doc = memory.anonymous().get("/openapi.json").await.expect(200);
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for path in [
        "/v1/identities/resolve",
        "/v1/users",
        "/v1/users/{id}",
        "/v1/sessions",
        "/v1/sessions/open",
        "/v1/sessions/{id}",
        "/v1/sessions/{id}/end",
        "/v1/sessions/{id}/messages",
        "/v1/users/{id}/facts",
        "/v1/facts/{id}/supersede",
        "/v1/facts/{id}/forget",
        "/v1/facts/{id}/history",
        "/v1/search",
        "/v1/users/{id}/documents",
        "/v1/documents/{id}",
        "/v1/index/status",
        "/v1/index/retry",
        "/v1/usage",
        "/v1/audit",
        "/v1/sessions/{id}/state",
        "/v1/sessions/{id}/state/{key}",
        "/v1/graph/relations",
        "/v1/graph/relations/{id}/end",
        "/v1/graph/nodes",
        "/v1/graph/nodes/{id}/neighbourhood",
        "/v1/graph/path",
        "/v1/attachments",
        "/v1/attachments/{id}",
        "/v1/attachments/{id}/retry",
        "/v1/attachments/{id}/progress",
        "/v1/attachments/{id}/sections",
        "/v1/attachments/{id}/parsed",
        "/v1/attachments/{id}/failed",
    ] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
    assert_eq!(paths.len(), 33, "{paths:?}");
    assert!(doc["components"]["schemas"]["StoredMessage"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // The document is open; the API is not.
    memory
        .anonymous()
        .get("/v1/search?user_id=x&q=y")
        .await
        .expect(401);
    memory.stop().await;
}

//! What turns used, summed over time, and the audit log: each read only by those it is for.

use daarion_bus::Envelope;
use daarion_bus::events::MessageProcessed;
use daarion_memory_client::{AuditRow, Usage};
use serde_json::{Value, json};

use crate::helpers::memory::Memory;

/// The router's event for one answered turn.
fn processed(user: &str, prompt: u32, completion: u32, cost: f64) -> Envelope<MessageProcessed> {
    Envelope::event(
        "router",
        MessageProcessed {
            user_id: user.parse().unwrap(),
            agent_id: "helper".into(),
            message_id: None,
            session_id: None,
            provider: "deepseek".into(),
            model: "deepseek-chat".into(),
            prompt_tokens: prompt,
            completion_tokens: completion,
            cost,
            currency: "USD".into(),
            gpu_seconds: 0.5,
            tool_steps: 1,
            versions: Value::Null,
        },
    )
}

#[tokio::test]
async fn usage_is_recorded_once_per_event_and_summed_by_time() {
    let memory = Memory::start().await;
    let ann = memory.user("usage-ann").await;
    let bob = memory.user("usage-bob").await;
    let bus = &memory.plane.bus.bus;
    let first = processed(&ann, 100, 20, 0.01);
    bus.publish(&first).await.unwrap();
    bus.publish(&first).await.unwrap(); // the same event again: counted once
    bus.publish(&processed(&ann, 50, 10, 0.02)).await.unwrap();
    bus.publish(&processed(&bob, 7, 3, 0.0)).await.unwrap();
    // A payload that is not usage goes to the dead letters, not into the table.
    bus.publish(&Envelope::new(
        "message.processed",
        "router",
        json!({"nonsense": true}),
    ))
    .await
    .unwrap();

    let answer = memory
        .poll_until(&format!("/v1/usage?user_id={ann}"), |u| {
            u["total"]["requests"] == 2
        })
        .await;
    let usage: Usage = serde_json::from_value(answer.clone()).unwrap();
    assert_eq!(usage.total.requests, 2, "{answer}");
    assert_eq!(usage.total.prompt_tokens, 150);
    assert_eq!(usage.total.completion_tokens, 30);
    assert!((usage.total.cost - 0.03).abs() < 1e-9);
    assert_eq!(usage.buckets.len(), 1, "one day");
    // Bob's event comes after Ann's on the stream: wait for it too.
    let all = memory
        .poll_until("/v1/usage?bucket=hour&agent_id=helper", |u| {
            u["total"]["requests"] == 3
        })
        .await;
    assert_eq!(all["total"]["requests"], 3, "{all}");
    assert_eq!(memory.count("SELECT count(*) FROM usage_records").await, 3);

    // Bad queries and callers.
    for query in ["/v1/usage?bucket=week", "/v1/usage?from=yesterday"] {
        memory.root().get(query).await.expect(422);
    }
    let user_token = memory.plane.user_token(&ann, &[]).await;
    let as_ann = || memory.with_token(&user_token).acting_for(&ann);
    let answer = as_ann().get(&format!("/v1/usage?user_id={ann}")).await;
    assert_eq!(answer.status, 200, "a user sees their own usage");
    let answer = as_ann().get("/v1/usage").await;
    assert_eq!(answer.status, 403, "but not everyone's");
    memory.stop().await;
}

#[tokio::test]
async fn the_audit_log_is_queried_by_administrators_only() {
    let memory = Memory::start().await;
    let (status, _) = memory
        .plane
        .post("/agents", json!({"id": "audited", "name": "Audited"}))
        .await;
    assert_eq!(status, 201);
    let rows = memory
        .poll_until("/v1/audit?action=agent.create&limit=10", |rows| {
            rows.as_array().is_some_and(|r| !r.is_empty())
        })
        .await;
    let row: AuditRow = serde_json::from_value(rows[0].clone()).unwrap();
    assert_eq!(row.action, "agent.create", "{rows}");
    assert_eq!(row.target.as_deref(), Some("agent:audited"));
    assert_eq!(row.after.as_ref().unwrap()["id"], "audited");

    // Paging: before the only row there is nothing; with the id too, rows sharing that instant
    // are not skipped.
    let at = rows[0]["at"].as_str().unwrap();
    let page = |query: String| {
        let memory = &memory;
        async move {
            memory
                .root()
                .get(&format!("/v1/audit?action=agent.create&{query}"))
                .await
                .body
        }
    };
    assert_eq!(
        page(format!("before={at}")).await,
        json!([]),
        "paging past the only row"
    );
    let same = page(format!(
        "before={at}&before_id=ffffffff-ffff-ffff-ffff-ffffffffffff"
    ))
    .await;
    assert_eq!(same[0]["id"], row.id.to_string(), "{same}");
    assert_eq!(
        page(format!("before={at}&before_id={}", row.id)).await,
        json!([])
    );

    let reader = memory.token(&["memory:read"]).await;
    memory
        .with_token(&reader)
        .get("/v1/audit")
        .await
        .expect(403);
    let admin = memory.token(&["admin"]).await;
    memory.with_token(&admin).get("/v1/audit").await.expect(200);
    memory.root().get("/v1/audit?limit=0").await.expect(422);
    memory.stop().await;
}

//! First-run defaults against the real PostgreSQL and NATS: the default agent is added once, on
//! an appliance without agents, audited as `system`; its policy admits administrators and
//! approved users and refuses strangers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use daarion_control_plane::defaults::{AGENT, Defaults};
use daarion_control_plane::testing::Plane;
use serde_json::{Value, json};

/// A manifests directory with one chat and one embedding model, as the installer lays it out.
fn manifests() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("daarion-manifests-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for (id, kind) in [("smollm2", "chat"), ("minilm", "embedding")] {
        std::fs::write(
            dir.join(format!("{id}.toml")),
            format!("id = \"{id}\"\nkind = \"{kind}\"\nfile = \"{id}.gguf\"\nestimate_mb = 100\n"),
        )
        .unwrap();
    }
    dir
}

async fn first_run(manifests: &Path) -> Plane {
    let dir = manifests.to_owned();
    Plane::start_configured(Defaults::Apply, move |config| {
        config.models.manifests_dir = dir;
    })
    .await
}

/// What the defaults touch, counted: a second start must leave every figure as it was.
async fn footprint(plane: &Plane) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "agents",
        "prompt_versions",
        "policy_versions",
        "config_versions",
        "control_defaults",
    ] {
        counts.push(plane.count(&format!("SELECT count(*) FROM {table}")).await);
    }
    counts
}

/// Every event on the AUDIT stream, once at least `count` are there.
async fn audit_events(plane: &Plane, count: usize) -> Vec<Value> {
    let js = plane.bus.bus.jetstream();
    let name = plane.bus.bus.naming().stream("AUDIT");
    for _ in 0..100 {
        if let Ok(mut stream) = js.get_stream(&name).await {
            let stored = stream.info().await.unwrap().state.messages;
            if stored as usize >= count {
                let mut events = Vec::new();
                for seq in 1..=stored {
                    let m = stream.get_raw_message(seq).await.unwrap();
                    events.push(serde_json::from_slice(&m.payload).unwrap());
                }
                return events;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Vec::new()
}

async fn ok(plane: &Plane, path: &str) -> Value {
    let (status, body) = plane.get(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn a_first_start_adds_the_default_agent_once() {
    let models = manifests();
    let mut plane = first_run(&models).await;

    let agents = ok(&plane, "/agents").await;
    assert_eq!(agents.as_array().unwrap().len(), 1, "{agents}");
    let agent = &agents[0];
    assert_eq!(agent["id"], AGENT);
    assert_eq!(agent["name"], "Assistant");
    assert_eq!(agent["default_model"], "smollm2");
    assert_eq!(agent["active_prompt"], 1);
    let prompt = ok(&plane, "/prompts/assistant/active").await;
    let content = prompt["content"].as_str().unwrap();
    for words in [
        "Ukrainian",
        "Russian",
        "search_memory",
        "cite",
        "start_crew_run",
    ] {
        assert!(
            content.contains(words),
            "the prompt names {words}: {content}"
        );
    }
    let routing = ok(&plane, "/config/routing.main").await;
    assert_eq!(routing["value"]["default_agent"], AGENT, "{routing}");
    assert_eq!(routing["author"], "system");
    let settings = ok(&plane, "/config/agents.assistant").await;
    assert_eq!(settings["value"]["models"], json!(["local/smollm2"]));
    let policy = ok(&plane, "/policy/assistant").await;
    assert_eq!(policy["version"], 1);
    assert_eq!(policy["document"]["roles"]["user"]["use"], true);

    // Five changes, each audited by `system` through the outbox.
    let events = audit_events(&plane, 5).await;
    let actions: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["payload"]["actor"].as_str().unwrap_or_default(),
                e["payload"]["action"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("system", "agent.create"),
            ("system", "prompt.create"),
            ("system", "policy.update"),
            ("system", "config.set"),
            ("system", "config.set"),
        ],
        "{events:?}"
    );

    let before = footprint(&plane).await;
    assert_eq!(before, [1, 1, 1, 2, 1]);
    plane.restart(Defaults::Apply).await;
    assert_eq!(
        footprint(&plane).await,
        before,
        "a second start changes nothing"
    );
    assert_eq!(ok(&plane, "/agents").await.as_array().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        audit_events(&plane, 5).await.len(),
        5,
        "nothing more audited"
    );
    plane.stop().await;
    std::fs::remove_dir_all(models).unwrap();
}

#[tokio::test]
async fn a_removed_default_agent_does_not_come_back() {
    let models = manifests();
    let mut plane = first_run(&models).await;
    plane.halt().await;
    // Versions are append-only and agents have no DELETE route in this build; an operator
    // who removes the agent by hand (triggers and foreign keys off for the session) is the
    // case to prove.
    let mut tx = plane.db.pool.begin().await.unwrap();
    for sql in [
        "SET LOCAL session_replication_role = replica",
        "DELETE FROM policy_versions WHERE agent_id = 'assistant'",
        "DELETE FROM prompt_versions WHERE agent_id = 'assistant'",
        "DELETE FROM config_versions WHERE key IN ('agents.assistant', 'routing.main')",
        "DELETE FROM agents WHERE id = 'assistant'",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    plane.restart(Defaults::Apply).await;
    assert_eq!(ok(&plane, "/agents").await, json!([]));
    assert_eq!(plane.get("/config/routing.main").await.0, 404);
    assert_eq!(footprint(&plane).await, [0, 0, 0, 0, 1]);
    plane.stop().await;
    std::fs::remove_dir_all(models).unwrap();
}

#[tokio::test]
async fn an_appliance_with_agents_gets_no_defaults() {
    let mut plane = Plane::start().await;
    let (status, body) = plane
        .post("/agents", json!({"id": "helper", "name": "Helper"}))
        .await;
    assert_eq!(status, 201, "{body}");
    for _ in 0..2 {
        plane.restart(Defaults::Apply).await;
        let agents = ok(&plane, "/agents").await;
        assert_eq!(agents.as_array().unwrap().len(), 1, "{agents}");
        assert_eq!(agents[0]["id"], "helper");
        assert_eq!(plane.get("/config/routing.main").await.0, 404);
        assert_eq!(
            plane
                .count("SELECT count(*) FROM control_defaults WHERE NOT seeded")
                .await,
            1,
            "considered once, nothing added"
        );
    }
    plane.stop().await;
}

#[tokio::test]
async fn the_default_policy_admits_admins_and_approved_users_and_refuses_strangers() {
    let models = manifests();
    let plane = first_run(&models).await;
    for (user, roles) in [("root-admin", json!(["admin"])), ("olena", json!(["user"]))] {
        let (status, body) = plane
            .put(&format!("/users/{user}/roles"), json!({"roles": roles}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    for (user, action, resource, allow) in [
        ("root-admin", "use", "", true),
        ("olena", "use", "", true),
        ("olena", "mode", "private", true),
        ("olena", "mode", "group", true),
        ("olena", "model", "local/smollm2", true),
        ("olena", "tool", "search_memory", true),
        ("olena", "tool", "start_crew_run", true),
        ("stranger", "use", "", false),
        ("stranger", "model", "local/smollm2", false),
    ] {
        let (status, body) = plane
            .post(
                "/policy/assistant/decide",
                json!({"user_id": user, "action": action, "resource": resource}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["allow"], allow, "{user} {action} {resource}: {body}");
    }
    plane.stop().await;
    std::fs::remove_dir_all(models).unwrap();
}

//! The knowledge graph: the same contract on PostgreSQL and on a Bolt server.

use daarion_memory_client::{Edge, Related, Subgraph};
use serde_json::{Value, json};

use crate::helpers::falkor::Falkor;
use crate::helpers::memory::{Memory, strings};

#[tokio::test]
async fn the_graph_in_postgres_relates_walks_and_keeps_ended_relations() {
    let memory = Memory::start().await;
    graph_contract(&memory).await;
    assert_eq!(
        memory.count("SELECT count(*) FROM graph_edges").await,
        4,
        "nothing deleted: three relations, and the one renewed after it ended"
    );
    memory.stop().await;
}

#[tokio::test]
async fn the_graph_on_a_bolt_server_keeps_the_same_contract_and_its_outage_is_a_503() {
    let Some(falkor) = Falkor::start().await else {
        return;
    };
    let memory = Memory::start_with(|config| {
        config.memory.graph.url = falkor.url();
        config.memory.graph.database = "contract".into();
        config.memory.graph.timeout_secs = 2;
    })
    .await;
    graph_contract(&memory).await;
    assert_eq!(
        memory.count("SELECT count(*) FROM graph_edges").await,
        0,
        "the graph went to the Bolt server, not to PostgreSQL"
    );

    // The server gone: a clear 503, and the rest of memory keeps answering.
    let user = memory.user("graph-outage").await;
    drop(falkor);
    let outage = memory
        .root()
        .post(
            "/v1/graph/relations",
            json!({"user_id": user, "from": {"kind": "person", "name": "A"},
                   "relation": "knows", "to": {"kind": "person", "name": "B"}}),
        )
        .await
        .expect(503);
    assert_eq!(
        outage["error"]["message"],
        "the knowledge graph is not available"
    );
    memory
        .root()
        .get(&format!("/v1/users/{user}"))
        .await
        .expect(200);
    memory.stop().await;
}

/// The node names of a subgraph, sorted.
fn names(subgraph: &Subgraph) -> Vec<&str> {
    let mut names: Vec<&str> = subgraph.nodes.iter().map(|n| n.name.as_str()).collect();
    names.sort();
    names
}

/// What every graph backend must do, through the API.
async fn graph_contract(memory: &Memory) {
    let ann = memory.user("graph-ann").await;
    let bob = memory.user("graph-bob").await;
    let root = &memory.root();
    let relation = |from: (&str, &str), relation: &str, to: (&str, &str)| {
        json!({"user_id": ann, "from": {"kind": from.0, "name": from.1}, "relation": relation,
               "to": {"kind": to.0, "name": to.1}})
    };
    let relate = move |body: Value| root.post("/v1/graph/relations", body);
    let get = move |path: String| async move { root.get(&path).await.body };

    let first: Related = relate(relation(
        ("person", "Olena"),
        "sister_of",
        ("person", "Ann"),
    ))
    .await
    .expect_as(201);
    let ann_node = first.to.id;
    let again: Related = relate(relation(
        ("person", " olena "),
        "sister_of",
        ("person", "ANN"),
    ))
    .await
    .expect_as(200);
    assert_eq!(
        again.edge.id, first.edge.id,
        "the same relation, differently written, is not stored twice"
    );
    let lives: Related = relate(relation(("person", "Olena"), "lives_in", ("place", "Lviv")))
        .await
        .expect_as(201);
    relate(relation(
        ("place", "Lviv"),
        "located_in",
        ("place", "Ukraine"),
    ))
    .await;
    let ukraine = get(format!("/v1/graph/nodes?user_id={ann}&q=ukr")).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let near: Subgraph = serde_json::from_value(
        get(format!("/v1/graph/nodes/{ann_node}/neighbourhood?depth=1")).await,
    )
    .unwrap();
    assert_eq!(names(&near), ["Ann", "Olena"]);
    let far: Subgraph = serde_json::from_value(
        get(format!("/v1/graph/nodes/{ann_node}/neighbourhood?depth=3")).await,
    )
    .unwrap();
    assert_eq!(names(&far), ["Ann", "Lviv", "Olena", "Ukraine"]);
    assert_eq!(far.edges.len(), 3);
    let path_to_ukraine = format!("/v1/graph/path?from={ann_node}&to={ukraine}");
    let path = get(path_to_ukraine.clone()).await;
    assert_eq!(
        strings(&path["nodes"], "name"),
        ["Ann", "Olena", "Lviv", "Ukraine"]
    );

    // Ending a relation cuts the path; the relation itself stays, ended.
    let end_lives = format!("/v1/graph/relations/{}/end", lives.edge.id);
    let ended: Edge = root
        .post(&end_lives, json!({"reason": "moved to Kyiv"}))
        .await
        .expect_as(200);
    assert!(ended.ended_at.is_some());
    assert_eq!(get(path_to_ukraine.clone()).await, Value::Null);
    // Ending it again changes nothing: the first end, and its reason, stand.
    let again: Edge = root
        .post(&end_lives, json!({"reason": "another reason"}))
        .await
        .expect_as(200);
    assert_eq!(again.ended_at, ended.ended_at);
    assert_eq!(again.relation, "lives_in");
    // The same relation again is a new one; the ended one stays ended.
    let renewed: Related = relate(relation(("person", "Olena"), "lives_in", ("place", "Lviv")))
        .await
        .expect_as(201);
    assert_ne!(renewed.edge.id, lives.edge.id);
    let back = get(path_to_ukraine).await;
    assert_eq!(back["edges"].as_array().map(Vec::len), Some(3));
    let ended = root
        .post(
            &format!("/v1/graph/relations/{}/end", renewed.edge.id),
            json!({"reason": "moved again"}),
        )
        .await
        .body;
    assert!(ended["ended_at"].is_string());

    // Each user's graph is their own.
    let token = memory.plane.user_token(&ann, &[]).await;
    let around_ann = format!("/v1/graph/nodes/{ann_node}/neighbourhood");
    let as_user = |user: &str| memory.with_token(&token).acting_for(user);
    as_user(&bob).get(&around_ann).await.expect(403);
    as_user(&ann).get(&around_ann).await.expect(200);

    // Bad input.
    let from_nowhere = {
        let mut body = relation(("person", "Ann"), "knows", ("person", "Taras"));
        body["source_message_id"] = json!(uuid::Uuid::new_v4());
        body
    };
    let nobody = {
        let mut body = relation(("person", "Ann"), "knows", ("person", "Taras"));
        body["user_id"] = json!(uuid::Uuid::new_v4());
        body
    };
    for (why, body) in [
        (
            "a kind is a lowercase word",
            relation(("Person!", "x"), "knows", ("person", "y")),
        ),
        (
            "a relation joins two different things",
            relation(("person", "Ann"), "is", ("person", "ann")),
        ),
        ("the source message must exist", from_nowhere),
        ("the user must exist", nobody),
    ] {
        let answer = relate(body).await;
        assert_eq!(answer.status, 422, "{why}: {}", answer.body);
    }
    for (path, expected) in [
        (
            format!("/v1/graph/nodes/{}/neighbourhood", uuid::Uuid::nil()),
            404,
        ),
        (
            format!("/v1/graph/nodes/{ann_node}/neighbourhood?depth=9"),
            422,
        ),
    ] {
        root.get(&path).await.expect(expected);
    }
    let taras = get(format!("/v1/graph/nodes?user_id={ann}&q=taras")).await;
    assert_eq!(taras, json!([]), "nothing of a refused relation is stored");
}

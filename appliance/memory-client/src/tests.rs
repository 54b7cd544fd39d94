//! The contract's shapes, and the client against a stand-in memory API.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::*;

/// The query string `query` becomes on a request.
fn query_of<T: serde::Serialize>(query: &T) -> String {
    let client = MemoryClient::new("http://127.0.0.1:1", "t");
    client
        .request(Method::GET, "/x")
        .query(query)
        .build()
        .unwrap()
        .url()
        .query()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn queries_carry_what_was_set_and_nothing_else() {
    let user = Uuid::from_u128(7);
    for (query, expected) in [
        (
            query_of(&SearchQuery {
                user_id: user,
                q: "tea & cake?".into(),
                limit: 3,
            }),
            format!("user_id={user}&q=tea+%26+cake%3F&limit=3"),
        ),
        (
            query_of(&FindQuery {
                user_id: None,
                q: "ol".into(),
                limit: 1,
            }),
            "q=ol&limit=1".into(),
        ),
        (query_of(&UsageQuery::default()), "bucket=day".into()),
        (
            query_of(&AuditQuery {
                action: Some("agent.create".into()),
                ..AuditQuery::default()
            }),
            "action=agent.create&limit=50".into(),
        ),
        (
            query_of(&FactsQuery { history: true }),
            "history=true".into(),
        ),
        (
            query_of(&AroundQuery::default()),
            "depth=2&limit=100".into(),
        ),
    ] {
        assert_eq!(query, expected);
    }
}

#[test]
fn request_bodies_leave_out_what_is_unset_and_refuse_unknown_fields() {
    let message = NewMessage::new("user", "hi");
    assert_eq!(
        serde_json::to_value(&message).unwrap(),
        json!({"role": "user", "content": "hi"})
    );
    let read: NewMessage =
        serde_json::from_value(json!({"role": "user", "content": "hi"})).unwrap();
    assert_eq!(read, message, "absent fields read back as unset");
    for (what, body) in [
        (
            "message",
            json!({"role": "user", "content": "hi", "colour": "red"}),
        ),
        ("message without content", json!({"role": "user"})),
    ] {
        assert!(
            serde_json::from_value::<NewMessage>(body).is_err(),
            "{what}"
        );
    }
    assert!(
        serde_json::from_value::<PutEntry>(json!({"ttl_secs": 1})).is_err(),
        "a value is required"
    );
    let document: NewDocument =
        serde_json::from_value(json!({"title": "t", "content": "x"})).unwrap();
    assert_eq!(
        document,
        NewDocument::new("t", "x"),
        "plain text upload by default"
    );
    let resolve: Resolve =
        serde_json::from_value(json!({"channel": "telegram", "external_id": "1"})).unwrap();
    assert_eq!(resolve.display_name, "");
    let relation = NewRelation {
        user_id: None,
        from: NodeRef::new("person", "Olena"),
        relation: "knows".into(),
        to: NodeRef::new("person", "Ann"),
        source_message_id: None,
    };
    assert_eq!(
        serde_json::to_value(&relation).unwrap(),
        json!({"from": {"kind": "person", "name": "Olena"}, "relation": "knows",
               "to": {"kind": "person", "name": "Ann"}})
    );
}

#[test]
fn answers_keep_their_nulls_and_times_read_back() {
    let session: Session = serde_json::from_value(json!({
        "id": Uuid::from_u128(1), "user_id": Uuid::from_u128(2), "agent_id": "helper",
        "chat": "tg:1", "started_at": "2026-11-27T10:00:00Z", "ended_at": null
    }))
    .unwrap();
    assert_eq!(session.started_at.year(), 2026);
    let written = serde_json::to_value(&session).unwrap();
    assert_eq!(written["ended_at"], Value::Null, "{written}");
    assert_eq!(written["started_at"], "2026-11-27T10:00:00Z");
    let fact = json!({
        "id": Uuid::from_u128(3), "user_id": Uuid::from_u128(2), "agent_id": null,
        "content": "likes tea", "valid_from": "2026-11-27T10:00:00Z", "valid_to": null,
        "supersedes": null, "reason": "", "source_message_id": null, "forgotten": false,
        "created_by": "admin"
    });
    let read: Fact = serde_json::from_value(fact.clone()).unwrap();
    assert_eq!(
        serde_json::to_value(read).unwrap(),
        fact,
        "the same JSON both ways"
    );
}

#[test]
fn client_errors_become_memory_errors() {
    let service = daarion_client::Service::new(
        MemoryClient::NAME,
        "http://127.0.0.1:1",
        None,
        daarion_client::http_client(daarion_client::Timeouts::streaming()),
    );
    let refused = service.refusal(
        daarion_client::reqwest::StatusCode::CONFLICT,
        r#"{"error":{"code":"conflict","message":"session x has ended"}}"#,
    );
    match MemoryError::from(refused) {
        MemoryError::Refused {
            status,
            code,
            message,
        } => assert_eq!(
            (status, code.as_str(), message.as_str()),
            (409, "conflict", "session x has ended")
        ),
        other => panic!("{other:?}"),
    }
    let down = MemoryError::from(service.refusal(
        daarion_client::reqwest::StatusCode::SERVICE_UNAVAILABLE,
        "busy",
    ));
    assert!(matches!(down, MemoryError::Unavailable(_)), "{down:?}");
    assert_eq!(down.status(), None);
}

/// What the stand-in saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    authorization: String,
    acting_for: String,
    body: Value,
}

/// A stand-in memory API answering every request with `answer(path)`, and what it saw.
async fn stand_in(
    answer: fn(&str) -> (StatusCode, Value),
) -> (MemoryClient, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                log.lock().unwrap().push(Seen {
                    method,
                    path: uri.path().to_owned(),
                    query: uri.query().unwrap_or("").to_owned(),
                    authorization: header("authorization"),
                    acting_for: header(ACTING_FOR),
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                let (status, body) = answer(uri.path());
                (status, axum::Json(body)).into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (
        MemoryClient::new(format!("http://{addr}"), "root-token"),
        seen,
    )
}

fn last(seen: &Arc<Mutex<Vec<Seen>>>) -> Seen {
    seen.lock().unwrap().last().unwrap().clone()
}

#[tokio::test]
async fn calls_carry_the_credential_the_user_acted_for_and_the_body() {
    let user = Uuid::from_u128(9);
    let (client, seen) = stand_in(|_| {
        (
            StatusCode::OK,
            json!({"user_id": Uuid::from_u128(9), "created": true}),
        )
    })
    .await;
    assert_eq!(client.resolve("telegram", "42", "Ann").await.unwrap(), user);
    let call = last(&seen);
    assert_eq!(
        (call.method, call.path.as_str()),
        (Method::POST, "/v1/identities/resolve")
    );
    assert_eq!(call.authorization, "Bearer root-token");
    assert_eq!(call.acting_for, "");
    assert_eq!(
        call.body,
        json!({"channel": "telegram", "external_id": "42", "display_name": "Ann"})
    );

    let _ = client.acting_for(user).history(Uuid::nil(), 100).await;
    let call = last(&seen);
    assert_eq!(call.acting_for, user.to_string());
    assert_eq!(call.query, "limit=100");
}

#[tokio::test]
async fn caller_text_stays_inside_its_path_segment() {
    let (client, seen) = stand_in(|_| (StatusCode::NO_CONTENT, Value::Null)).await;
    let session = Uuid::from_u128(5);
    client
        .delete_state(session, "../../users/x?y=1")
        .await
        .unwrap();
    assert_eq!(
        last(&seen).path,
        format!("/v1/sessions/{session}/state/%2E%2E%2F%2E%2E%2Fusers%2Fx%3Fy%3D1")
    );
    assert_eq!(last(&seen).query, "");
}

#[tokio::test]
async fn refusals_keep_status_and_code_and_bad_answers_are_protocol_errors() {
    let (client, _) = stand_in(|path| match path {
        "/v1/sessions/open" => (StatusCode::OK, json!({"id": "not a session"})),
        _ => (
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "not_found", "message": "no user 1"}}),
        ),
    })
    .await;
    match client.display_name(Uuid::nil()).await {
        Err(MemoryError::Refused {
            status: 404,
            code,
            message,
        }) => {
            assert_eq!(
                (code.as_str(), message.as_str()),
                ("not_found", "no user 1")
            );
        }
        other => panic!("{other:?}"),
    }
    let answer = client.open_session(Uuid::nil(), "a", "c").await;
    assert!(
        matches!(answer, Err(MemoryError::Protocol(_))),
        "{answer:?}"
    );
    let closed = MemoryClient::new("http://127.0.0.1:1", "t").ping().await;
    assert!(
        matches!(closed, Err(MemoryError::Unavailable(_))),
        "{closed:?}"
    );
}

#[tokio::test]
async fn explore_finds_the_best_match_then_its_neighbourhood() {
    let (client, seen) = stand_in(|path| match path {
        "/v1/graph/nodes" => (StatusCode::OK, json!([])),
        _ => (StatusCode::OK, json!({"nodes": [], "edges": []})),
    })
    .await;
    let user = Uuid::from_u128(4);
    assert_eq!(client.explore(user, "Olena K").await.unwrap(), None);
    let call = last(&seen);
    assert_eq!(call.path, "/v1/graph/nodes");
    assert_eq!(call.query, format!("user_id={user}&q=Olena+K&limit=1"));

    let (client, seen) = stand_in(|path| match path {
        "/v1/graph/nodes" => (
            StatusCode::OK,
            json!([{"id": Uuid::from_u128(8), "user_id": null, "kind": "person", "name": "Olena"}]),
        ),
        _ => (StatusCode::OK, json!({"nodes": [], "edges": []})),
    })
    .await;
    assert_eq!(
        client.explore(user, "Olena").await.unwrap(),
        Some(Subgraph::default())
    );
    let call = last(&seen);
    assert_eq!(
        call.path,
        format!("/v1/graph/nodes/{}/neighbourhood", Uuid::from_u128(8))
    );
    assert_eq!(call.query, "depth=2&limit=50");
}

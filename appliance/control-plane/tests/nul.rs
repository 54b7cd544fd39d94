//! NUL characters (found by the first fuzzing pass, issue #21): PostgreSQL refuses `\0` in text,
//! so each of these was a 500. Now a 422 naming the field, and nothing stored.

use daarion_control_plane::testing::Plane;
use serde_json::{Value, json};

#[track_caller]
fn refused(status: u16, body: &Value, field: &str) {
    assert_eq!(status, 422, "{field}: {body}");
    assert_eq!(body["error"]["code"], "invalid", "{body}");
    assert_eq!(
        body["error"]["message"],
        format!("{field}: must not contain a NUL character")
    );
}

#[tokio::test]
async fn a_nul_in_any_text_field_is_a_422_naming_it() {
    let plane = Plane::start().await;
    let (status, body) = plane
        .post("/agents", json!({"id": "helper", "name": "a\u{0}b"}))
        .await;
    refused(status, &body, "name");
    let (status, body) = plane
        .post(
            "/agents",
            json!({"id": "helper", "name": "Helper", "description": "x\u{0}"}),
        )
        .await;
    refused(status, &body, "description");
    assert_eq!(plane.count("SELECT count(*) FROM agents").await, 0);

    let (status, body) = plane
        .post("/agents", json!({"id": "helper", "name": "Helper"}))
        .await;
    assert_eq!(status, 201, "{body}");
    for field in ["name", "description"] {
        let (status, body) = plane
            .patch("/agents/helper", json!({ field: "a\u{0}b" }))
            .await;
        refused(status, &body, field);
    }
    let (status, body) = plane.get("/agents/helper").await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "Helper", "{body}");

    // Without a credential too: logging in with one in the name.
    let login = reqwest::Client::new()
        .post(plane.url("/auth/login"))
        .json(&json!({"username": "al\u{0}ice", "password": "whatever it is"}))
        .send()
        .await
        .unwrap();
    let status = login.status().as_u16();
    refused(status, &login.json().await.unwrap(), "username");
    plane.stop().await;
}

//! The control plane's matrix, read from its handlers (`principal.require(…)` in each): `read`
//! to look, a `*:write` scope per kind of thing to change, `quota:consume` for the data plane's
//! accounting, `admin` for tokens, accounts and introspection.
//!
//! The handlers read their body, query and path before they check the scope, so a request
//! that does not parse is a 400/422 to anyone: each row sends one that parses (names made up,
//! so nothing it changes is anyone's).

use serde_json::json;

use super::matrix::{Entry, Need, bare, json};

const READ: Need = Need::Scopes(&["read"]);
const ADMIN: Need = Need::Scopes(&[]);

pub fn table() -> Vec<Entry> {
    vec![
        Entry::new("get", "/agents", READ),
        Entry::new("post", "/agents", Need::Scopes(&["agents:write"]))
            .req(|_| json("/agents".into(), json!({"id": "matrix", "name": "Matrix"}))),
        Entry::new("get", "/agents/{id}", READ),
        Entry::new("patch", "/agents/{id}", Need::Scopes(&["agents:write"])),
        Entry::new("get", "/prompts/{agent_id}", READ),
        Entry::new(
            "post",
            "/prompts/{agent_id}",
            Need::Scopes(&["prompts:write"]),
        )
        .req(|_| json("/prompts/nobody".into(), json!({"content": "c"}))),
        Entry::new("get", "/prompts/{agent_id}/active", READ),
        Entry::new("get", "/prompts/{agent_id}/diff", READ)
            .req(|_| bare("/prompts/nobody/diff?from=1&to=2".into())),
        Entry::new("get", "/prompts/{agent_id}/{version}", READ)
            .req(|_| bare("/prompts/nobody/1".into())),
        Entry::new(
            "post",
            "/prompts/{agent_id}/{version}/activate",
            Need::Scopes(&["prompts:write"]),
        )
        .req(|_| json("/prompts/nobody/1/activate".into(), json!({}))),
        Entry::new("get", "/roles", READ),
        Entry::new("post", "/roles", Need::Scopes(&["policy:write"]))
            .req(|_| json("/roles".into(), json!({"name": "matrix"}))),
        Entry::new("get", "/users/{user_id}/roles", READ),
        Entry::new(
            "put",
            "/users/{user_id}/roles",
            Need::Scopes(&["policy:write"]),
        )
        .req(|_| json("/users/nobody/roles".into(), json!({"roles": []}))),
        Entry::new("get", "/policy/{agent_id}", READ),
        Entry::new("put", "/policy/{agent_id}", Need::Scopes(&["policy:write"]))
            .req(|_| json("/policy/nobody".into(), json!({"document": {}}))),
        Entry::new("get", "/policy/{agent_id}/versions", READ),
        // A question about the policy, not a change: `read`.
        Entry::new("post", "/policy/{agent_id}/decide", READ).req(|_| {
            json(
                "/policy/nobody/decide".into(),
                json!({"user_id": "u", "action": "chat", "resource": ""}),
            )
        }),
        Entry::new("get", "/config", READ),
        Entry::new("get", "/config/{key}", READ),
        Entry::new("put", "/config/{key}", Need::Scopes(&["config:write"]))
            .req(|_| json("/config/nothing.here".into(), json!({"value": 1}))),
        Entry::new("get", "/config/{key}/versions", READ),
        Entry::new("get", "/flags/{name}", READ).req(|_| bare("/flags/nothing?user_id=u".into())),
        Entry::new("get", "/quotas/{user_id}", READ),
        Entry::new(
            "post",
            "/quotas/{user_id}/consume",
            Need::Scopes(&["quota:consume"]),
        )
        .req(|_| json("/quotas/nobody/consume".into(), json!({"requests": 0}))),
        Entry::new(
            "post",
            "/quotas/{user_id}/settle",
            Need::Scopes(&["quota:consume"]),
        )
        .req(|_| {
            json(
                "/quotas/nobody/settle".into(),
                json!({"reserved": {"requests": 0}, "actual": {"requests": 0}}),
            )
        }),
        Entry::new(
            "put",
            "/quotas/limits/{kind}/{name}",
            Need::Scopes(&["quotas:write"]),
        )
        .req(|_| json("/quotas/limits/user/nobody".into(), json!({}))),
        Entry::new("get", "/auth/tokens", ADMIN),
        Entry::new("post", "/auth/tokens", ADMIN).req(|_| {
            let name = format!("matrix-{}", uuid::Uuid::new_v4().simple());
            json(
                "/auth/tokens".into(),
                json!({"name": name, "scopes": ["read"]}),
            )
        }),
        Entry::new("delete", "/auth/tokens/{id}", ADMIN),
        Entry::new("post", "/auth/introspect", ADMIN)
            .req(|_| json("/auth/introspect".into(), json!({"token": "dcp_nothing"}))),
        // Any credential may ask who it is.
        Entry::new("post", "/auth/whoami", Need::Any),
        Entry::new("get", "/auth/admins", ADMIN),
        Entry::new("post", "/auth/admins", ADMIN).req(|_| {
            let name = format!("m{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            json(
                "/auth/admins".into(),
                json!({"username": name, "password": "a long enough password"}),
            )
        }),
        Entry::new("post", "/auth/admins/{username}/disable", ADMIN),
        Entry::new("post", "/auth/admins/{username}/enable", ADMIN),
        Entry::new("delete", "/auth/admins/{username}/sessions", ADMIN),
        // An admin's own account: a token passes the gate and is refused by the handler (422:
        // a token has no account of its own).
        Entry::new("post", "/auth/password", Need::Any).req(|_| {
            json(
                "/auth/password".into(),
                json!({"current_password": "not it", "new_password": "not it either at all"}),
            )
        }),
        Entry::new("post", "/auth/signout-everywhere", Need::Any),
        Entry::new("post", "/auth/login", Need::Open),
        Entry::new("post", "/auth/logout", Need::OpenSessionCsrf),
    ]
}

//! Memory's matrix, read from its handlers (`caller.read/write/read_all/admin/service_write` in
//! each, `src/api/auth.rs`): `memory:read` and `memory:write` reach every user (write does not
//! imply read), a `memory:user` token only the user it was minted for (`own`), data across
//! users needs an unconfined reader, the audit log and index retries need `admin`, and
//! resolving identities (no user yet) is for unconfined writers (the services).
//!
//! Every request is aimed at a fresh user's real data: most handlers load the row before they
//! know whose it is, so a made-up id would answer 404 to anyone and prove nothing.

use serde_json::json;

use super::matrix::{Entry, Need, bare, json};

const READ: Need = Need::Scopes(&["memory:read"]);
const WRITE: Need = Need::Scopes(&["memory:write"]);
const ADMIN: Need = Need::Scopes(&[]);

pub fn table() -> Vec<Entry> {
    vec![
        Entry::new("post", "/v1/identities/resolve", WRITE).req(|_| {
            json(
                "/v1/identities/resolve".into(),
                json!({"channel": "telegram", "external_id": uuid::Uuid::new_v4().to_string(), "display_name": "x"}),
            )
        }),
        Entry::new("get", "/v1/users", READ),
        Entry::new("get", "/v1/users/{id}", READ)
            .own()
            .req(|o| bare(format!("/v1/users/{}", o.user))),
        Entry::new("post", "/v1/sessions", WRITE)
            .own()
            .req(|o| json("/v1/sessions".into(), json!({"user_id": o.user, "agent_id": "a"}))),
        Entry::new("post", "/v1/sessions/open", WRITE)
            .own()
            .req(|o| json("/v1/sessions/open".into(), json!({"user_id": o.user, "agent_id": "a"}))),
        Entry::new("get", "/v1/sessions/{id}", READ)
            .own()
            .req(|o| bare(format!("/v1/sessions/{}", o.session))),
        Entry::new("post", "/v1/sessions/{id}/end", WRITE)
            .own()
            .req(|o| bare(format!("/v1/sessions/{}/end", o.session))),
        Entry::new("get", "/v1/sessions/{id}/messages", READ)
            .own()
            .req(|o| bare(format!("/v1/sessions/{}/messages", o.session))),
        Entry::new("post", "/v1/sessions/{id}/messages", WRITE)
            .own()
            .req(|o| {
                json(
                    format!("/v1/sessions/{}/messages", o.session),
                    json!({"role": "user", "content": "hello"}),
                )
            }),
        Entry::new("get", "/v1/sessions/{id}/state", READ)
            .own()
            .req(|o| bare(format!("/v1/sessions/{}/state", o.session))),
        Entry::new("get", "/v1/sessions/{id}/state/{key}", READ)
            .own()
            .req(|o| bare(format!("/v1/sessions/{}/state/k", o.session))),
        Entry::new("put", "/v1/sessions/{id}/state/{key}", WRITE)
            .own()
            .req(|o| json(format!("/v1/sessions/{}/state/k", o.session), json!({"value": 1}))),
        Entry::new("delete", "/v1/sessions/{id}/state/{key}", WRITE)
            .own()
            .req(|o| bare(format!("/v1/sessions/{}/state/k", o.session))),
        Entry::new("get", "/v1/users/{id}/facts", READ)
            .own()
            .req(|o| bare(format!("/v1/users/{}/facts", o.user))),
        Entry::new("post", "/v1/users/{id}/facts", WRITE)
            .own()
            .req(|o| json(format!("/v1/users/{}/facts", o.user), json!({"content": "c"}))),
        Entry::new("post", "/v1/facts/{id}/supersede", WRITE)
            .own()
            .req(|o| {
                json(
                    format!("/v1/facts/{}/supersede", o.fact),
                    json!({"content": "d", "reason": "r"}),
                )
            }),
        Entry::new("post", "/v1/facts/{id}/forget", WRITE)
            .own()
            .req(|o| json(format!("/v1/facts/{}/forget", o.fact), json!({"reason": "r"}))),
        Entry::new("get", "/v1/facts/{id}/history", READ)
            .own()
            .req(|o| bare(format!("/v1/facts/{}/history", o.fact))),
        Entry::new("post", "/v1/users/{id}/documents", WRITE)
            .own()
            .req(|o| {
                json(
                    format!("/v1/users/{}/documents", o.user),
                    json!({"title": "t", "content": "c"}),
                )
            }),
        Entry::new("get", "/v1/users/{id}/documents", READ)
            .own()
            .req(|o| bare(format!("/v1/users/{}/documents", o.user))),
        Entry::new("get", "/v1/documents/{id}", READ)
            .own()
            .req(|o| bare(format!("/v1/documents/{}", o.document))),
        Entry::new("post", "/v1/attachments", WRITE).own().req(|o| {
            json(
                "/v1/attachments".into(),
                json!({"user_id": o.user, "name": "a.pdf", "format": "pdf", "mime": "application/pdf",
                       "bytes": 10, "sha256": "ab".repeat(32)}),
            )
        }),
        Entry::new("get", "/v1/attachments", READ)
            .own()
            .req(|o| bare(format!("/v1/attachments?user_id={}", o.user))),
        Entry::new("get", "/v1/attachments/{id}", READ)
            .own()
            .req(|o| bare(format!("/v1/attachments/{}", o.attachment))),
        Entry::new("delete", "/v1/attachments/{id}", WRITE)
            .own()
            .req(|o| bare(format!("/v1/attachments/{}", o.attachment))),
        Entry::new("post", "/v1/attachments/{id}/retry", WRITE)
            .own()
            .req(|o| json(format!("/v1/attachments/{}/retry", o.attachment), json!({}))),
        // The parser's reports: services only, never a user's own token.
        Entry::new("post", "/v1/attachments/{id}/progress", WRITE)
            .req(|o| {
                json(
                    format!("/v1/attachments/{}/progress", o.attachment),
                    json!({"attempt": 1, "done": 1}),
                )
            }),
        Entry::new("post", "/v1/attachments/{id}/sections", WRITE)
            .req(|o| {
                json(
                    format!("/v1/attachments/{}/sections", o.attachment),
                    json!({"attempt": 1, "first_ordinal": 0,
                           "sections": [{"locator": {"kind": "whole"}, "text": "t"}]}),
                )
            }),
        Entry::new("post", "/v1/attachments/{id}/parsed", WRITE)
            .req(|o| {
                json(
                    format!("/v1/attachments/{}/parsed", o.attachment),
                    json!({"attempt": 1, "pages": 1}),
                )
            }),
        Entry::new("post", "/v1/attachments/{id}/failed", WRITE)
            .req(|o| {
                json(
                    format!("/v1/attachments/{}/failed", o.attachment),
                    json!({"attempt": 1, "reason": "r"}),
                )
            }),
        Entry::new("get", "/v1/search", READ)
            .own()
            .req(|o| bare(format!("/v1/search?user_id={}&q=tea", o.user))),
        Entry::new("get", "/v1/index/status", READ),
        Entry::new("post", "/v1/index/retry", ADMIN),
        Entry::new("get", "/v1/usage", READ)
            .own()
            .req(|o| bare(format!("/v1/usage?user_id={}", o.user))),
        Entry::new("get", "/v1/audit", ADMIN),
        Entry::new("post", "/v1/graph/relations", WRITE).own().req(|o| {
            json(
                "/v1/graph/relations".into(),
                json!({"user_id": o.user, "from": {"kind": "person", "name": "C"},
                       "relation": "knows", "to": {"kind": "person", "name": "D"}}),
            )
        }),
        Entry::new("post", "/v1/graph/relations/{id}/end", WRITE)
            .own()
            .req(|o| {
                json(
                    format!("/v1/graph/relations/{}/end", o.relation),
                    json!({"reason": "r"}),
                )
            }),
        Entry::new("get", "/v1/graph/nodes", READ)
            .own()
            .req(|o| bare(format!("/v1/graph/nodes?user_id={}&q=Ann", o.user))),
        Entry::new("get", "/v1/graph/nodes/{id}/neighbourhood", READ)
            .own()
            .req(|o| bare(format!("/v1/graph/nodes/{}/neighbourhood", o.node))),
        Entry::new("get", "/v1/graph/path", READ)
            .own()
            .req(|o| bare(format!("/v1/graph/path?from={}&to={}", o.node, o.node))),
    ]
}

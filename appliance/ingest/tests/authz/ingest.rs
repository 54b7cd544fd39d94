//! Ingest's matrix. Ingest authorises nothing itself (`src/auth.rs`): it identifies the caller
//! (any memory scope) and does every read and write on memory with the caller's own
//! credential, so the rows are memory's rules for attachments.

use super::matrix::{Body, Entry, Need, Req, bare};

const READ: Need = Need::Scopes(&["memory:read"]);
const WRITE: Need = Need::Scopes(&["memory:write"]);

pub fn table() -> Vec<Entry> {
    vec![
        Entry::new("post", "/v1/attachments", WRITE)
            .own()
            .req(|o| Req {
                path: format!("/v1/attachments?user_id={}", o.user),
                body: Body::Raw(b"plain words, nothing more\n", "text/plain"),
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
            .req(|o| bare(format!("/v1/attachments/{}/retry", o.attachment))),
        Entry::new("get", "/v1/attachments/{id}/content", READ)
            .own()
            .req(|o| bare(format!("/v1/attachments/{}/content", o.attachment))),
    ]
}

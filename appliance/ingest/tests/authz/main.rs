//! The authorisation matrix (issue #21, "Proof"): every route of the control plane, memory and
//! ingest, read from each service's own `/openapi.json`, called with no credential, a wrong
//! token, a logged-out session, an admin session with and without its CSRF token, the root
//! token, a token of each scope, and a `memory:user` token on its own user's data and on
//! another's; each answer is judged against one table per service (`control_plane.rs`,
//! `memory.rs`, `ingest.rs`) written from the handlers. A route the document has and the
//! table does not fails the test, and so does a row the document lacks.
//!
//! It lives in ingest's tests because ingest's dev-dependencies start all three services
//! in-process. The swapper, router, gateway and parser serve no OpenAPI document yet.

mod control_plane;
mod ingest;
mod matrix;
mod memory;
mod run;
mod stack;

use matrix::{Expect, Findings};
use run::{Credentials, Service};
use stack::Stack;

/// Every scope a token can be minted with, `memory:user` apart (it needs a user).
const SCOPES: [&str; 12] = [
    "admin",
    "read",
    "agents:write",
    "prompts:write",
    "policy:write",
    "config:write",
    "quotas:write",
    "quota:consume",
    "memory:read",
    "memory:write",
    "models:use",
    "agents:use",
];

#[tokio::test]
async fn every_route_of_every_service_lets_in_exactly_whom_its_table_says() {
    let stack = Stack::start().await;
    let mut scopes = Vec::new();
    for scope in SCOPES {
        scopes.push((scope, stack.plane.token(&[scope]).await));
    }
    let users = (stack.user().await, stack.user().await);
    let credentials = Credentials {
        scopes,
        confined: stack
            .plane
            .user_token(&users.0.to_string(), &["memory:user"])
            .await,
        users,
        dead_session: stack.dead_session().await,
    };
    let control = stack.control();
    let services = [
        Service {
            name: "control plane",
            base: &control,
            table: control_plane::table(),
            users: false,
            session_without_csrf: Expect::Forbidden,
        },
        Service {
            name: "memory",
            base: &stack.memory,
            table: memory::table(),
            users: true,
            session_without_csrf: Expect::Refused,
        },
        Service {
            name: "ingest",
            base: &stack.ingest,
            table: ingest::table(),
            users: true,
            session_without_csrf: Expect::Refused,
        },
    ];
    let mut reports = String::new();
    let mut failed = false;
    for service in &services {
        let findings: Findings = run::run(&stack, service, &credentials).await;
        failed |= !findings.mismatches.is_empty();
        reports.push_str(&findings.report(service.name));
    }
    println!("{reports}");
    assert!(!failed, "authorisation matrix mismatches:\n{reports}");
    stack.stop().await;
}

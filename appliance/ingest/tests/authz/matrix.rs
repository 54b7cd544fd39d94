//! The authorisation matrix engine: a service's routes read from its own `/openapi.json`,
//! checked against a hand-written table (route → what grants it), and every route called with
//! every kind of credential, each answer compared with what the table says it should be.
//!
//! Only the gate is judged: 401 (who are you?) and 403 (not you) against "anything else". A 404
//! for a made-up id or a 422 for an empty body means the caller got past authorisation.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;
use uuid::Uuid;

use super::stack::{Owned, Stack};

/// What a route needs.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// Nothing: it is how a credential is obtained (login) or looked up (the document).
    Open,
    /// Open, but a browser session ending itself must show its CSRF token (logout).
    OpenSessionCsrf,
    /// Any valid credential (the handler itself answers for what it does).
    Any,
    /// One of these scopes (`admin` always grants; it is left out of the lists).
    Scopes(&'static [&'static str]),
}

/// A request to make: the path with its ids (and query) filled in, and its body.
pub struct Req {
    pub path: String,
    pub body: Body,
}

pub enum Body {
    None,
    Json(Value),
    /// Bytes as they are, with their content type (an upload to ingest, named `notes.txt`).
    Raw(&'static [u8], &'static str),
}

/// One row of a service's table.
pub struct Entry {
    pub method: &'static str,
    /// As the OpenAPI document spells it (`/agents/{id}`).
    pub path: &'static str,
    pub need: Need,
    /// A `memory:user` token may call it for the user it was minted for (and only that user).
    pub own: bool,
    /// The request for one user's data (`Owned`): that user's ids in the path, query and body.
    pub req: fn(&Owned) -> Req,
}

impl Entry {
    /// A row whose request is the default one (see [`request`]).
    pub fn new(method: &'static str, path: &'static str, need: Need) -> Entry {
        Entry {
            method,
            path,
            need,
            own: false,
            req: |_| Req {
                path: String::new(),
                body: Body::None,
            },
        }
    }

    /// The same row, open to a `memory:user` token for its own user.
    pub fn own(mut self) -> Entry {
        self.own = true;
        self
    }

    /// The same row with its own request.
    pub fn req(mut self, req: fn(&Owned) -> Req) -> Entry {
        self.req = req;
        self
    }
}

/// A request with a JSON body.
pub fn json(path: String, body: Value) -> Req {
    Req {
        path,
        body: Body::Json(body),
    }
}

/// A request without a body.
pub fn bare(path: String) -> Req {
    Req {
        path,
        body: Body::None,
    }
}

/// The request an entry makes: its own, or fresh UUIDs for path parameters and `{}` for a body.
pub fn request(entry: &Entry, owned: &Owned) -> Req {
    let built = (entry.req)(owned);
    if !built.path.is_empty() {
        return built;
    }
    let mut path = String::new();
    let mut rest = entry.path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("a closed parameter") + open;
        path.push_str(&rest[..open]);
        path.push_str(&Uuid::new_v4().to_string());
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    let body = if matches!(entry.method, "get" | "delete") {
        Body::None
    } else {
        Body::Json(serde_json::json!({}))
    };
    Req { path, body }
}

/// What a call should get past or be stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Unauthenticated,
    Forbidden,
    /// Stopped, 401 or 403: see `session_without_csrf` in [`run`].
    Refused,
    Authorised,
}

impl Expect {
    pub fn holds(self, status: u16) -> bool {
        match self {
            Expect::Unauthenticated => status == 401,
            Expect::Forbidden => status == 403,
            Expect::Refused => status == 401 || status == 403,
            Expect::Authorised => status != 401 && status != 403,
        }
    }
}

/// The (method, path) pairs a service documents at `/openapi.json` (open, no credential).
pub async fn documented(stack: &Stack, base: &str) -> BTreeSet<(String, String)> {
    let doc: Value = stack
        .http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("an OpenAPI document") {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                routes.insert((method.to_owned(), path.clone()));
            }
        }
    }
    routes
}

/// Every documented route is in the table and every table row is documented.
pub fn compare(service: &str, documented: &BTreeSet<(String, String)>, table: &[Entry]) {
    let tabled: BTreeSet<(String, String)> = table
        .iter()
        .map(|e| (e.method.to_owned(), e.path.to_owned()))
        .collect();
    assert_eq!(
        tabled.len(),
        table.len(),
        "{service}: a route twice in the table"
    );
    let new: Vec<_> = documented.difference(&tabled).collect();
    let gone: Vec<_> = tabled.difference(documented).collect();
    assert!(
        new.is_empty(),
        "{service}: routes in /openapi.json but not in the matrix (add them to the matrix with the scope that grants them): {new:?}"
    );
    assert!(
        gone.is_empty(),
        "{service}: matrix rows for routes /openapi.json does not have: {gone:?}"
    );
}

/// What one service's run found: the calls made and the ones that did not hold.
#[derive(Default)]
pub struct Findings {
    pub calls: usize,
    pub routes: usize,
    pub credentials: BTreeSet<&'static str>,
    pub mismatches: Vec<String>,
    /// 5xx answers: not an authorisation failure, but no answer a caller should get.
    pub errors: Vec<String>,
}

impl Findings {
    pub fn report(&self, service: &str) -> String {
        let mut out = format!(
            "{service}: {} routes × {} credentials, {} calls\n",
            self.routes,
            self.credentials.len(),
            self.calls
        );
        for m in &self.mismatches {
            let _ = writeln!(out, "  MISMATCH {m}");
        }
        for e in &self.errors {
            let _ = writeln!(out, "  5xx {e}");
        }
        out
    }
}

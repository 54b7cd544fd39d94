//! Running a service through the matrix: the credentials, the calls each route gets, and their
//! order.

use reqwest::Method;
use uuid::Uuid;

use super::matrix::{Entry, Expect, Findings, Need, Req, compare, documented, request};
use super::stack::{Credential, Owned, Stack};

/// A token of the right shape that no one minted.
const WRONG_TOKEN: &str = "dcp_00000000000000000000000000000000000000000000000000000000deadbeef";

/// The credentials every service is called with, minted once.
pub struct Credentials {
    /// One API token per scope (`admin` included, `memory:user` apart).
    pub scopes: Vec<(&'static str, String)>,
    /// A `memory:user` token minted for `users.0`.
    pub confined: String,
    /// Two users of memory: the confined token's own, and another.
    pub users: (Uuid, Uuid),
    /// A session that logged out.
    pub dead_session: String,
}

/// Whether a route lets `scope` through.
fn grants(entry: &Entry, scope: &str) -> bool {
    match entry.need {
        Need::Open | Need::OpenSessionCsrf | Need::Any => true,
        Need::Scopes(scopes) => scope == "admin" || scopes.contains(&scope),
    }
}

fn judged(granted: bool) -> Expect {
    if granted {
        Expect::Authorised
    } else {
        Expect::Forbidden
    }
}

/// How a service is run through the matrix.
pub struct Service<'a> {
    pub name: &'a str,
    pub base: &'a str,
    pub table: Vec<Entry>,
    /// It keeps users' data: the calls are aimed at a user's own fresh data, and the confined
    /// token is tried on its own user's and on another's.
    pub users: bool,
    /// What a session without its CSRF token gets on a state-changing route. The control
    /// plane answers 403; memory and ingest ask it through `daarion_control_client::identify`,
    /// which reads the refusal as "no session" and so answers 401 (refused either way; the
    /// status is reported to the lead).
    pub session_without_csrf: Expect,
}

/// Every route of the service's table (checked against its document) with every credential.
pub async fn run(stack: &Stack, service: &Service<'_>, credentials: &Credentials) -> Findings {
    let (base, table) = (service.base, &service.table);
    compare(service.name, &documented(stack, base).await, table);
    let mut findings = Findings {
        routes: table.len(),
        ..Findings::default()
    };
    for entry in table {
        let (mine, theirs) = if service.users {
            (
                stack.owned(credentials.users.0).await,
                stack.owned(credentials.users.1).await,
            )
        } else {
            (Owned::none(), Owned::none())
        };
        let (mine, theirs) = (request(entry, &mine), request(entry, &theirs));
        let open = matches!(entry.need, Need::Open | Need::OpenSessionCsrf);
        let unauthenticated = if open {
            Expect::Authorised
        } else {
            Expect::Unauthenticated
        };
        let (cookie, csrf) = stack.session().await;
        let session = |csrf: Option<String>| Credential::Session {
            cookie: cookie.clone(),
            csrf,
        };
        let call = |label, credential, req, expect| Call {
            label,
            credential,
            req,
            expect,
        };
        let mut calls = vec![
            call("no credential", Credential::None, &mine, unauthenticated),
            call(
                "wrong token",
                // One wrong token throughout: a service remembers a refusal for a few seconds,
                // and a flood of different unknown tokens is answered 503 on purpose (each
                // would cost the control plane a question).
                Credential::Bearer(WRONG_TOKEN.to_owned()),
                &mine,
                unauthenticated,
            ),
            call(
                "logged-out session",
                Credential::Session {
                    cookie: credentials.dead_session.clone(),
                    csrf: None,
                },
                &mine,
                unauthenticated,
            ),
            call(
                "root token",
                Credential::Bearer(stack.plane.root.clone()),
                &mine,
                Expect::Authorised,
            ),
            // The session last of all (see the sort below): a route may end it.
            call(
                "admin session",
                session(Some(csrf)),
                &mine,
                Expect::Authorised,
            ),
        ];
        if entry.method != "get" {
            // A cross-site page can make the browser send the cookie, never the CSRF token.
            let expect = match entry.need {
                Need::Open => Expect::Authorised,
                Need::OpenSessionCsrf => Expect::Forbidden,
                _ => service.session_without_csrf,
            };
            calls.push(call("session without CSRF", session(None), &mine, expect));
        }
        for (scope, token) in &credentials.scopes {
            let expect = judged(grants(entry, scope));
            calls.push(call(
                scope,
                Credential::Bearer(token.clone()),
                &mine,
                expect,
            ));
        }
        let confined = Credential::Bearer(credentials.confined.clone());
        let own = grants(entry, "memory:user") || entry.own;
        calls.push(call(
            "memory:user (own user)",
            confined.clone(),
            &mine,
            judged(own),
        ));
        if service.users {
            // Another user's data: never, whatever the route.
            let any = open || matches!(entry.need, Need::Any);
            calls.push(call(
                "memory:user (other user)",
                confined,
                &theirs,
                judged(any),
            ));
        }
        // Refusals first: an authorised call may delete what a later one is aimed at, and a
        // 404 would hide a missing check.
        calls.sort_by_key(|c| (c.expect == Expect::Authorised, c.label == "admin session"));
        for c in &calls {
            check(stack, base, entry, c, &mut findings).await;
        }
    }
    findings
}

/// One call to make: who makes it, what it sends, what it should get.
struct Call<'a> {
    label: &'static str,
    credential: Credential,
    req: &'a Req,
    expect: Expect,
}

/// One call and its judgement.
async fn check(stack: &Stack, base: &str, entry: &Entry, call: &Call<'_>, findings: &mut Findings) {
    let Call {
        label,
        credential,
        req,
        expect,
    } = call;
    let (label, expect) = (*label, *expect);
    let method = Method::from_bytes(entry.method.to_uppercase().as_bytes()).unwrap();
    let (status, body) = stack.send(base, method, req, credential).await;
    findings.calls += 1;
    findings.credentials.insert(label);
    let what = format!(
        "{} {} ({}) as {label}: expected {expect:?}, got {status} {}",
        entry.method.to_uppercase(),
        entry.path,
        req.path,
        body.chars().take(200).collect::<String>()
    );
    if !expect.holds(status) {
        findings.mismatches.push(what);
    } else if status >= 500 {
        findings.errors.push(what);
    }
}

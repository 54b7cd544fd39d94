//! Admin login and sessions against a real control plane (issue #21, item 4 and the session and
//! token items of its Low list). Each test reproduces what the review found: unlimited password
//! guessing, a 25 MiB login body, no way to end other sessions or disable an account, logout
//! without CSRF, sessions without an idle limit that were never purged, tokens that never expire.

use std::time::Duration;

use daarion_control_plane::testing::Plane;
use reqwest::{Method, Response};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

/// A browser talking to the plane: logs in from a chosen address and calls with a session.
struct Browser<'a> {
    plane: &'a Plane,
    http: reqwest::Client,
}

/// A logged-in session: its cookie and CSRF token.
#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

impl<'a> Browser<'a> {
    fn new(plane: &'a Plane) -> Self {
        Browser {
            plane,
            http: reqwest::Client::new(),
        }
    }

    /// `POST /auth/login` as if from `source` (the address the admin port's proxy saw).
    async fn login(&self, username: &str, password: &str, source: &str) -> Response {
        self.http
            .post(self.plane.url("/auth/login"))
            .header("x-forwarded-for", source)
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    async fn session(&self, username: &str, password: &str) -> Session {
        let r = self.login(username, password, "192.0.2.1").await;
        assert_eq!(r.status(), 200, "{username} logs in");
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let body: Value = r.json().await.unwrap();
        Session {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A call with `session`'s cookie, and its CSRF token when `csrf`.
    async fn call(
        &self,
        session: &Session,
        csrf: bool,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, self.plane.url(path))
            .header("cookie", &session.cookie);
        if csrf {
            request = request.header("x-csrf-token", &session.csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Whether `session` still opens the API.
    async fn alive(&self, session: &Session) -> bool {
        match self
            .call(session, false, Method::GET, "/agents", None)
            .await
            .0
        {
            200 => true,
            401 => false,
            other => panic!("GET /agents with a session: {other}"),
        }
    }
}

async fn admin(plane: &Plane, username: &str) {
    let (status, body) = plane
        .post(
            "/auth/admins",
            json!({"username": username, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[track_caller]
fn throttled(r: &Response, why: &str) -> u64 {
    assert_eq!(r.status(), 429, "{why}");
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn failed_logins_back_off_per_account_and_per_address() {
    let plane = Plane::start().await;
    admin(&plane, "alice").await;
    admin(&plane, "bob").await;
    let browser = Browser::new(&plane);

    for _ in 0..5 {
        let r = browser
            .login("alice", "wrong password!!", "192.0.2.10")
            .await;
        assert_eq!(r.status(), 401);
    }
    // Now even the right password waits, from any address: the account is what is guessed.
    for source in ["192.0.2.10", "198.51.100.7"] {
        let r = browser.login("alice", PASSWORD, source).await;
        let after = throttled(&r, source);
        assert!((1..=2).contains(&after), "{after}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "login_throttled", "{body}");
    }
    // Another account from the same address is not held back by alice's failures.
    assert_eq!(
        browser.login("bob", PASSWORD, "192.0.2.10").await.status(),
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        browser
            .login("alice", PASSWORD, "192.0.2.10")
            .await
            .status(),
        200
    );

    // One address guessing many names is held back as an address: 20 failures spread over
    // names none of which reaches its own limit.
    for i in 0..20 {
        let r = browser
            .login(
                &format!("guess{}", i % 5),
                "wrong password!!",
                "203.0.113.5",
            )
            .await;
        assert_eq!(r.status(), 401, "guess {i}");
    }
    throttled(
        &browser.login("bob", PASSWORD, "203.0.113.5").await,
        "address",
    );
    assert_eq!(
        browser.login("bob", PASSWORD, "203.0.113.6").await.status(),
        200
    );
    plane.stop().await;
}

#[tokio::test]
async fn a_big_login_body_is_a_413_in_json() {
    let plane = Plane::start().await;
    let big = json!({"username": "alice", "password": "x".repeat(1 << 20)});
    for path in ["/auth/login", "/auth/logout"] {
        let r = reqwest::Client::new()
            .post(plane.url(path))
            .json(&big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    }
    plane.stop().await;
}

#[tokio::test]
async fn a_password_change_needs_the_current_one_and_ends_the_other_sessions() {
    let plane = Plane::start().await;
    admin(&plane, "alice").await;
    let browser = Browser::new(&plane);
    let here = browser.session("alice", PASSWORD).await;
    let elsewhere = browser.session("alice", PASSWORD).await;
    let change =
        |current: &str, new: &str| Some(json!({"current_password": current, "new_password": new}));

    for (csrf, body, status, why) in [
        (
            false,
            change(PASSWORD, "a brand new password"),
            403,
            "no CSRF token",
        ),
        (
            true,
            change("not the password", "a brand new password"),
            422,
            "wrong current",
        ),
        (true, change(PASSWORD, "short"), 422, "too short"),
    ] {
        let (got, answer) = browser
            .call(&here, csrf, Method::POST, "/auth/password", body)
            .await;
        assert_eq!(got, status, "{why}: {answer}");
    }
    assert!(browser.alive(&elsewhere).await, "nothing changed yet");

    let (status, body) = browser
        .call(
            &here,
            true,
            Method::POST,
            "/auth/password",
            change(PASSWORD, "a brand new password"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sessions_ended"], 1);
    assert!(
        browser.alive(&here).await,
        "the session that changed it stays"
    );
    assert!(!browser.alive(&elsewhere).await, "the other one ended");
    assert_eq!(
        browser.login("alice", PASSWORD, "192.0.2.1").await.status(),
        401
    );
    assert_eq!(
        browser
            .login("alice", "a brand new password", "192.0.2.1")
            .await
            .status(),
        200
    );
    // A token has no password of its own to change.
    let (status, _) = plane
        .post(
            "/auth/password",
            json!({"current_password": PASSWORD, "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(status, 422);
    plane.stop().await;
}

#[tokio::test]
async fn a_disabled_account_cannot_log_in_and_its_sessions_end_at_once() {
    let plane = Plane::start().await;
    admin(&plane, "alice").await;
    admin(&plane, "bob").await;
    let browser = Browser::new(&plane);
    let alice = browser.session("alice", PASSWORD).await;
    let bob = browser.session("bob", PASSWORD).await;

    let (status, _) = browser
        .call(
            &alice,
            true,
            Method::POST,
            "/auth/admins/alice/disable",
            None,
        )
        .await;
    assert_eq!(status, 409, "not one's own account");
    let reader = plane.token(&["agents:write"]).await;
    let (status, _) = plane
        .call(
            Method::POST,
            "/auth/admins/alice/disable",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(status, 403, "admin only");
    let (status, _) = browser
        .call(
            &bob,
            true,
            Method::POST,
            "/auth/admins/nobody/disable",
            None,
        )
        .await;
    assert_eq!(status, 422, "no such admin");

    let (status, body) = browser
        .call(&bob, true, Method::POST, "/auth/admins/alice/disable", None)
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(!browser.alive(&alice).await);
    assert_eq!(
        browser.login("alice", PASSWORD, "192.0.2.1").await.status(),
        401
    );
    let (_, admins) = plane.get("/auth/admins").await;
    let listed = admins
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == "alice")
        .unwrap();
    assert!(listed["disabled_at"].is_string(), "{listed}");

    let (status, _) = plane.post("/auth/admins/alice/enable", json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(
        browser.login("alice", PASSWORD, "192.0.2.1").await.status(),
        200
    );
    plane.stop().await;
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_of_the_account() {
    let plane = Plane::start().await;
    admin(&plane, "alice").await;
    admin(&plane, "bob").await;
    let browser = Browser::new(&plane);
    let (one, two, bob) = (
        browser.session("alice", PASSWORD).await,
        browser.session("alice", PASSWORD).await,
        browser.session("bob", PASSWORD).await,
    );
    let (status, _) = browser
        .call(&one, false, Method::POST, "/auth/signout-everywhere", None)
        .await;
    assert_eq!(status, 403, "needs the CSRF token");
    let (status, _) = browser
        .call(&one, true, Method::POST, "/auth/signout-everywhere", None)
        .await;
    assert_eq!(status, 204);
    assert!(!browser.alive(&one).await);
    assert!(!browser.alive(&two).await);
    assert!(browser.alive(&bob).await, "another account is untouched");

    // An admin can do it for another account.
    let (status, body) = plane.delete("/auth/admins/bob/sessions").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sessions_ended"], 1);
    assert!(!browser.alive(&bob).await);
    plane.stop().await;
}

#[tokio::test]
async fn logout_needs_the_sessions_csrf_token() {
    let plane = Plane::start().await;
    admin(&plane, "alice").await;
    let browser = Browser::new(&plane);
    let session = browser.session("alice", PASSWORD).await;
    let (status, body) = browser
        .call(&session, false, Method::POST, "/auth/logout", None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "csrf");
    assert!(
        browser.alive(&session).await,
        "a cross-site page cannot sign the admin out"
    );
    let (status, _) = browser
        .call(&session, true, Method::POST, "/auth/logout", None)
        .await;
    assert_eq!(status, 204);
    assert!(!browser.alive(&session).await);
    plane.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused_and_marked_revoked() {
    let plane = Plane::start().await;
    let token = plane.token(&["read"]).await;
    let (status, _) = plane.call(Method::GET, "/agents", Some(&token), None).await;
    assert_eq!(status, 200);
    // As if minted with an expiry that has now passed.
    sqlx::query("UPDATE api_tokens SET expires_at = now() - interval '1 second'")
        .execute(&plane.db.pool)
        .await
        .unwrap();
    let (status, _) = plane.call(Method::GET, "/agents", Some(&token), None).await;
    assert_eq!(status, 401);
    assert_eq!(
        plane
            .count("SELECT count(*) FROM api_tokens WHERE revoked_at IS NOT NULL")
            .await,
        1,
        "introspection and the token list see it ended too"
    );
    plane.stop().await;
}

#[tokio::test]
async fn a_token_minted_with_an_expiry_stops_working_then_and_bad_expiries_are_refused() {
    let plane = Plane::start().await;
    let root = plane.root.as_str();
    let mint = |body: serde_json::Value| {
        let plane = &plane;
        async move {
            plane
                .call(Method::POST, "/auth/tokens", Some(root), Some(body))
                .await
        }
    };
    let (status, minted) =
        mint(serde_json::json!({"name": "short", "scopes": ["read"], "expires_in": 2})).await;
    assert_eq!(status, 201, "{minted}");
    assert!(minted["info"]["expires_at"].is_string(), "{minted}");
    let token = minted["token"].as_str().unwrap().to_owned();
    let (status, _) = plane.call(Method::GET, "/agents", Some(&token), None).await;
    assert_eq!(status, 200, "alive before its expiry");
    // Past the expiry, even before the sweep marks it revoked.
    sqlx::query(
        "UPDATE api_tokens SET expires_at = now() - interval '1 millisecond' WHERE name = 'short'",
    )
    .execute(&plane.db.pool)
    .await
    .unwrap();
    let (status, answer) = plane
        .call(
            Method::POST,
            "/auth/introspect",
            Some(root),
            Some(serde_json::json!({"token": token})),
        )
        .await;
    assert_eq!(
        (status, &answer["active"]),
        (200, &serde_json::json!(false)),
        "{answer}"
    );
    let (status, _) = plane.call(Method::GET, "/agents", Some(&token), None).await;
    assert_eq!(status, 401);
    for (body, field) in [
        (
            serde_json::json!({"name": "a", "scopes": ["read"], "expires_in": 0}),
            "expires_in",
        ),
        (
            serde_json::json!({"name": "b", "scopes": ["read"], "expires_in": 5, "expires_at": "2030-01-01T00:00:00Z"}),
            "expires_in",
        ),
        (
            serde_json::json!({"name": "c", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "expires_at",
        ),
    ] {
        let (status, error) = mint(body).await;
        assert_eq!(status, 422, "{error}");
        assert!(error.to_string().contains(field), "{error}");
    }
    plane.stop().await;
}

/// Seconds from now to the session's deadline.
async fn deadline_in(plane: &Plane) -> f64 {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM max(expires_at) - now())::float8 FROM admin_sessions",
    )
    .fetch_one(&plane.db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn sessions_end_when_idle_never_outlive_the_absolute_limit_and_are_purged() {
    let plane = Plane::start().await;
    admin(&plane, "alice").await;
    let browser = Browser::new(&plane);
    let session = browser.session("alice", PASSWORD).await;
    let hours = |s: f64| s / 3600.0;
    assert!((11.9..=12.0).contains(&hours(deadline_in(&plane).await)));

    // Nearly idle for 12 hours: a use moves the deadline 12 hours on again.
    sqlx::query("UPDATE admin_sessions SET expires_at = now() + interval '10 minutes'")
        .execute(&plane.db.pool)
        .await
        .unwrap();
    assert!(browser.alive(&session).await);
    assert!((11.9..=12.0).contains(&hours(deadline_in(&plane).await)));

    // Six days and 23 hours old: a use moves it no further than seven days from the login.
    sqlx::query(
        "UPDATE admin_sessions SET created_at = now() - interval '7 days' + interval '1 hour', \
         expires_at = now() + interval '10 minutes'",
    )
    .execute(&plane.db.pool)
    .await
    .unwrap();
    assert!(browser.alive(&session).await);
    assert!((0.9..=1.0).contains(&hours(deadline_in(&plane).await)));

    // Idle past its deadline: refused, and gone from the table at the next login.
    sqlx::query("UPDATE admin_sessions SET expires_at = now() - interval '1 second'")
        .execute(&plane.db.pool)
        .await
        .unwrap();
    assert!(!browser.alive(&session).await);
    browser.session("alice", PASSWORD).await;
    assert_eq!(
        plane
            .count("SELECT count(*) FROM admin_sessions WHERE expires_at <= now()")
            .await,
        0
    );
    assert_eq!(plane.count("SELECT count(*) FROM admin_sessions").await, 1);
    plane.stop().await;
}

//! The three services the matrix reaches in-process (control plane, memory, ingest) on the real
//! PostgreSQL, Redis and NATS, the credentials it calls them with, and one user's data to aim
//! the calls at.

use std::time::Duration;

use daarion_control_plane::testing::Plane;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::matrix::{Body, Req};

const PASSWORD: &str = "matrix password 1";
const ADMIN: &str = "matrix";
/// Ingest's header for an upload's file name (`src/upload.rs`, private there).
const FILE_NAME: &str = "x-daarion-file-name";

/// How a call presents itself.
#[derive(Clone)]
pub enum Credential {
    None,
    Bearer(String),
    /// A browser session's cookie, and its CSRF token when the call shows it.
    Session {
        cookie: String,
        csrf: Option<String>,
    },
}

/// One user's data, made afresh for every route (a route may delete or end what it is given).
pub struct Owned {
    pub user: Uuid,
    pub session: Uuid,
    pub fact: Uuid,
    pub document: Uuid,
    pub attachment: Uuid,
    pub node: Uuid,
    pub relation: Uuid,
}

impl Owned {
    /// For the control plane's rows, which take no user's data.
    pub fn none() -> Owned {
        Owned {
            user: Uuid::nil(),
            session: Uuid::nil(),
            fact: Uuid::nil(),
            document: Uuid::nil(),
            attachment: Uuid::nil(),
            node: Uuid::nil(),
            relation: Uuid::nil(),
        }
    }
}

pub struct Stack {
    pub plane: Plane,
    pub memory: String,
    pub ingest: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    for _ in 0..400 {
        if let Ok(r) = http.get(format!("{url}/ready")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} did not become ready");
}

impl Stack {
    pub async fn start() -> Stack {
        let plane = Plane::start().await;
        let http = reqwest::Client::new();
        let shutdown = CancellationToken::new();
        let mut config = plane.config.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.memory.listen = listener.local_addr().unwrap();
        let memory = format!("http://{}", config.memory.listen);
        tokio::spawn(daarion_memory::run(
            config.clone(),
            listener,
            shutdown.clone(),
        ));
        wait_ready(&http, &memory).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        config.ingest.enabled = true;
        config.ingest.listen = listener.local_addr().unwrap();
        let ingest = format!("http://{}", config.ingest.listen);
        tokio::spawn(daarion_ingest::run(config, listener, shutdown.clone()));
        wait_ready(&http, &ingest).await;
        let (status, body) = plane
            .post(
                "/auth/admins",
                json!({"username": ADMIN, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        Stack {
            plane,
            memory,
            ingest,
            http,
            shutdown,
        }
    }

    pub fn control(&self) -> String {
        self.plane.url("")
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.plane.stop().await;
    }

    /// A fresh admin browser session with its CSRF token.
    pub async fn session(&self) -> (String, String) {
        let r = self
            .http
            .post(self.plane.url("/auth/login"))
            .json(&json!({"username": ADMIN, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the matrix's admin logs in");
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let body: Value = r.json().await.unwrap();
        (cookie, body["csrf_token"].as_str().unwrap().to_owned())
    }

    /// A session's cookie after it logged out: it must open nothing any more.
    pub async fn dead_session(&self) -> String {
        let (cookie, csrf) = self.session().await;
        let r = self
            .http
            .post(self.plane.url("/auth/logout"))
            .header("cookie", &cookie)
            .header("x-csrf-token", csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "logout");
        cookie
    }

    /// A user of the memory service (a Telegram identity of its own).
    pub async fn user(&self) -> Uuid {
        let body = self
            .root_memory(
                Method::POST,
                "/v1/identities/resolve",
                json!({"channel": "telegram", "external_id": Uuid::new_v4().to_string(), "display_name": "matrix"}),
            )
            .await;
        body["user_id"].as_str().unwrap().parse().unwrap()
    }

    /// A session, a fact, a document, an attachment and a relation of `user`, made by root.
    pub async fn owned(&self, user: Uuid) -> Owned {
        let session = self
            .root_memory(
                Method::POST,
                "/v1/sessions",
                json!({"user_id": user, "agent_id": "matrix"}),
            )
            .await;
        let fact = self
            .root_memory(
                Method::POST,
                &format!("/v1/users/{user}/facts"),
                json!({"content": "likes tea"}),
            )
            .await;
        let document = self
            .root_memory(
                Method::POST,
                &format!("/v1/users/{user}/documents"),
                json!({"title": "Notes", "content": "some notes"}),
            )
            .await;
        // Through ingest, so that its bytes are in the blob store too (`/content` reads them).
        let r = self
            .http
            .post(format!("{}/v1/attachments?user_id={user}", self.ingest))
            .bearer_auth(&self.plane.root)
            .header("content-type", "text/plain")
            .header(FILE_NAME, "notes.txt")
            .body(format!("notes {}\n", Uuid::new_v4()))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let attachment: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "fixture upload: {status} {attachment}");
        let related = self
            .root_memory(
                Method::POST,
                "/v1/graph/relations",
                json!({"user_id": user, "from": {"kind": "person", "name": "Ann"},
                       "relation": "knows", "to": {"kind": "person", "name": "Bob"}}),
            )
            .await;
        let id = |v: &Value| -> Uuid {
            v.as_str()
                .unwrap_or_else(|| panic!("no id in a fixture: {v}"))
                .parse()
                .unwrap()
        };
        let attachment = if attachment["attachment"].is_object() {
            &attachment["attachment"]["id"]
        } else {
            &attachment["id"]
        };
        Owned {
            user,
            session: id(&session["id"]),
            fact: id(&fact["id"]),
            document: id(&document["id"]),
            attachment: id(attachment),
            node: id(&related["from"]["id"]),
            relation: id(&related["edge"]["id"]),
        }
    }

    async fn root_memory(&self, method: Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method, format!("{}{path}", self.memory))
            .bearer_auth(&self.plane.root)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "fixture {path}: {status} {body}");
        body
    }

    /// One call: its status and (the start of) its body.
    pub async fn send(
        &self,
        base: &str,
        method: Method,
        req: &Req,
        credential: &Credential,
    ) -> (u16, String) {
        let mut request = self.http.request(method, format!("{base}{}", req.path));
        match credential {
            Credential::None => {}
            Credential::Bearer(token) => request = request.bearer_auth(token),
            Credential::Session { cookie, csrf } => {
                request = request.header("cookie", cookie);
                if let Some(csrf) = csrf {
                    request = request.header("x-csrf-token", csrf);
                }
            }
        }
        request = match &req.body {
            Body::None => request,
            Body::Json(value) => request.json(value),
            Body::Raw(bytes, mime) => request
                .header("content-type", *mime)
                .header(FILE_NAME, "notes.txt")
                .body(bytes.to_vec()),
        };
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }
}

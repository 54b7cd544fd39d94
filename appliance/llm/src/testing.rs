//! For tests (feature `testing`): a local HTTP server that speaks the real OpenAI (SSE) and
//! Ollama (NDJSON) wire protocols, with a script of replies per request, recording what it was
//! sent. Used by this crate's tests and by the services that call models (the router).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde_json::Value;

/// One scripted reply.
#[derive(Clone)]
pub enum Reply {
    /// A streamed 200: each string is sent as its own chunk, `gap` apart; with `stall` the
    /// stream then stays open and silent.
    Stream {
        chunks: Vec<String>,
        gap: Duration,
        stall: bool,
    },
    Status {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// Never answers.
    Hang,
}

#[derive(Clone, Default)]
pub struct Fake {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    /// Used once the script runs out.
    fallback: Arc<Mutex<Option<Reply>>>,
    pub requests: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

impl Fake {
    pub fn then(&self, reply: Reply) -> &Self {
        self.replies.lock().unwrap().push_back(reply);
        self
    }

    pub fn always(&self, reply: Reply) -> &Self {
        *self.fallback.lock().unwrap() = Some(reply);
        self
    }

    /// The bodies received so far.
    pub fn bodies(&self) -> Vec<Value> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// Serves the OpenAI (`/v1/chat/completions`) and Ollama (`/api/chat`) paths.
    pub async fn serve(&self) -> SocketAddr {
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .route("/api/chat", post(handle))
            .route("/v1/images/generations", post(handle))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Like a real API server: each chunk leaves at once (no Nagle delay).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }
}

async fn handle(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    fake.requests.lock().unwrap().push((headers, json));
    let reply = fake
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| fake.fallback.lock().unwrap().clone())
        .expect("a scripted reply");
    match reply {
        Reply::Status {
            status,
            body,
            retry_after,
        } => {
            let mut response = (
                StatusCode::from_u16(status).unwrap(),
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, seconds.to_string().parse().unwrap());
            }
            response
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Reply::Stream { chunks, gap, stall } => {
            let sent = futures::stream::iter(chunks).then(move |chunk| async move {
                // Even a zero sleep waits for the next timer tick (1 ms).
                if !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
                Ok::<_, Infallible>(Bytes::from(chunk))
            });
            let body = if stall {
                Body::from_stream(sent.chain(futures::stream::pending()))
            } else {
                Body::from_stream(sent)
            };
            ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
        }
    }
}

/// SSE framing of OpenAI chunks.
pub fn sse(chunks: &[Value]) -> Vec<String> {
    chunks
        .iter()
        .map(|c| format!("data: {c}\n\n"))
        .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
        .collect()
}

pub fn stream(chunks: Vec<String>) -> Reply {
    Reply::Stream {
        chunks,
        gap: Duration::from_millis(1),
        stall: false,
    }
}

/// An OpenAI images answer holding `pictures`, base64-encoded.
pub fn openai_images(pictures: &[&[u8]]) -> Reply {
    use base64::Engine;
    let data: Vec<Value> = pictures
        .iter()
        .map(|p| serde_json::json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(p)}))
        .collect();
    Reply::Status {
        status: 200,
        body: serde_json::json!({"created": 0, "data": data}).to_string(),
        retry_after: None,
    }
}

/// A plain one-token OpenAI answer.
pub fn openai_answer(text: &str) -> Reply {
    stream(sse(&[
        serde_json::json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": null}]}),
        serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        serde_json::json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}),
    ]))
}

//! Calls to the router (`/v1/route`, `/v1/sessions/reset`) with the appliance's root token and
//! the current trace, and the events of a turn read back from its Server-Sent Events.

use std::time::Duration;

use daarion_telemetry::TraceContext;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde_json::Value;

use crate::GatewayError;

#[derive(Clone)]
pub struct RouterClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// Splits an SSE byte stream into the JSON of its `data:` fields.
pub fn sse_events<S, E>(bytes: S) -> BoxStream<'static, Value>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    futures::stream::unfold(
        (Box::pin(bytes), String::new(), Vec::<Value>::new()),
        |(mut bytes, mut buffer, mut ready)| async move {
            loop {
                if !ready.is_empty() {
                    let next = ready.remove(0);
                    return Some((next, (bytes, buffer, ready)));
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => {
                        buffer.push_str(&String::from_utf8_lossy(&chunk));
                        while let Some(end) = buffer.find("\n\n") {
                            let frame: String = buffer.drain(..end + 2).collect();
                            let data: String = frame
                                .lines()
                                .filter_map(|l| l.strip_prefix("data:"))
                                .map(str::trim_start)
                                .collect();
                            if let Ok(value) = serde_json::from_str(&data) {
                                ready.push(value);
                            }
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "router stream broke off");
                        return None;
                    }
                    None => return None,
                }
            }
        },
    )
    .boxed()
}

impl RouterClient {
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> RouterClient {
        RouterClient {
            base: base.into().trim_end_matches('/').to_owned(),
            token: token.into(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .no_proxy()
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header(
                "traceparent",
                TraceContext::current_or_new().child().to_header(),
            )
    }

    /// The raw response of `/v1/route`, for the web chat to pass through.
    pub async fn route_raw(&self, message: &Value) -> Result<reqwest::Response, GatewayError> {
        self.post("/v1/route")
            .json(message)
            .send()
            .await
            .map_err(|e| GatewayError::unavailable("the router", e))
    }

    /// A turn's events; an HTTP error from the router becomes one `error` event carrying its
    /// body, so the caller has one path for everything the user should hear about.
    pub async fn route(&self, message: &Value) -> Result<BoxStream<'static, Value>, GatewayError> {
        let response = self.route_raw(message).await?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let event = serde_json::json!({"type": "error", "code": body["error"]["code"], "message": body["error"]["message"], "status": status});
            return Ok(futures::stream::iter([event]).boxed());
        }
        Ok(sse_events(response.bytes_stream()))
    }

    pub async fn reset(&self, message: &Value) -> Result<Value, GatewayError> {
        let response = self
            .post("/v1/sessions/reset")
            .json(message)
            .send()
            .await
            .map_err(|e| GatewayError::unavailable("the router", e))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| GatewayError::unavailable("the router", e))?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(GatewayError::BadRequest(
                body["error"]["message"]
                    .as_str()
                    .unwrap_or("refused")
                    .to_owned(),
            ))
        }
    }
}

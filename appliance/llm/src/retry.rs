//! Timeouts for one call, and retries across calls.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rand::Rng;

use crate::LlmError;
use crate::types::{ChatRequest, EventStream, ImageRequest, Provider};

/// Per provider: how long to wait for a connection, for the response head, and between two
/// chunks of a streaming answer.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(60),
            stall: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// Only connecting is bounded by the client: the first byte and the stalls are timed per
    /// call, since a streamed answer may rightly take minutes in all.
    pub(crate) fn client(&self) -> reqwest::Client {
        daarion_client::http_client(daarion_client::Timeouts {
            connect: self.connect,
            total: None,
        })
    }
}

/// Sends a request and turns every failure before the body into an [`LlmError`].
pub(crate) async fn send(
    provider: &str,
    request: reqwest::RequestBuilder,
    first_byte: Duration,
) -> Result<reqwest::Response, LlmError> {
    let response = match tokio::time::timeout(first_byte, request.send()).await {
        Err(_) => {
            return Err(LlmError::Timeout {
                provider: provider.to_owned(),
                after: first_byte,
            });
        }
        Ok(Err(e)) => {
            return Err(LlmError::Connect {
                provider: provider.to_owned(),
                message: e.to_string(),
            });
        }
        Ok(Ok(response)) => response,
    };
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    // OpenAI: {"error": {"message"}}; Ollama: {"error": "..."}.
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v["error"]["message"]
                .as_str()
                .or(v["error"].as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| text.chars().take(300).collect());
    Err(LlmError::Http {
        provider: provider.to_owned(),
        status,
        message,
        retry_after,
    })
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub base_delay: Duration,
    /// No wait is longer than this, whatever `Retry-After` asks.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    fn delay(&self, attempt: u32, error: &LlmError) -> Duration {
        let backoff = self
            .base_delay
            .saturating_mul(1 << attempt.min(16))
            .mul_f64(rand::rng().random_range(0.8..=1.2));
        error.retry_after().unwrap_or(backoff).min(self.max_delay)
    }
}

/// A provider with retries. Only the call is retried, never a stream that already produced
/// tokens: a half-told answer cannot be taken back.
pub struct Resilient {
    inner: Arc<dyn Provider>,
    policy: RetryPolicy,
}

impl Resilient {
    pub fn new(inner: Arc<dyn Provider>, policy: RetryPolicy) -> Self {
        Resilient { inner, policy }
    }
}

impl Resilient {
    /// `call` until it succeeds, fails for good, or runs out of retries.
    async fn retrying<'a, T>(
        &'a self,
        mut call: impl FnMut() -> BoxFuture<'a, Result<T, LlmError>>,
    ) -> Result<T, LlmError> {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(done) => return Ok(done),
                Err(e) if e.retryable() && attempt < self.policy.max_retries => {
                    let delay = self.policy.delay(attempt, &e);
                    tracing::warn!(provider = self.inner.name(), error = %e, retry_in_ms = delay.as_millis() as u64, "LLM call failed; retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Provider for Resilient {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn chat_stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<EventStream, LlmError>> {
        Box::pin(async move {
            self.retrying(|| self.inner.chat_stream(request.clone()))
                .await
        })
    }

    fn generate_images(
        &self,
        request: ImageRequest,
    ) -> BoxFuture<'_, Result<Vec<Vec<u8>>, LlmError>> {
        Box::pin(async move {
            self.retrying(|| self.inner.generate_images(request.clone()))
                .await
        })
    }
}

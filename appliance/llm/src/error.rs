use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LlmError {
    #[error("{provider}: HTTP {status}: {message}")]
    Http {
        provider: String,
        status: u16,
        message: String,
        /// From a `Retry-After` header, when the provider sent one.
        retry_after: Option<Duration>,
    },
    #[error("{provider}: cannot connect: {message}")]
    Connect { provider: String, message: String },
    #[error("{provider}: no answer within {after:?}")]
    Timeout { provider: String, after: Duration },
    #[error("{provider}: the stream stalled for {after:?}")]
    Stalled { provider: String, after: Duration },
    #[error("{provider}: unexpected answer: {message}")]
    Protocol { provider: String, message: String },
    #[error("every provider failed: {}", .0.join("; "))]
    Exhausted(Vec<String>),
}

impl LlmError {
    /// Worth another try at the same provider: rate limits, server errors, network trouble.
    pub fn retryable(&self) -> bool {
        match self {
            LlmError::Http { status, .. } => *status == 429 || *status >= 500,
            LlmError::Connect { .. } | LlmError::Timeout { .. } | LlmError::Stalled { .. } => true,
            LlmError::Protocol { .. } | LlmError::Exhausted(_) => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

//! Fallback from one provider to the next, e.g. a cloud API, then the local model.

use std::sync::Arc;

use crate::LlmError;
use crate::types::{ChatRequest, EventStream, Provider};

/// Which link answered, and why the ones before it did not.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainAttempt {
    pub provider: String,
    pub model: String,
    pub failures: Vec<String>,
}

pub struct Chain {
    links: Vec<(Arc<dyn Provider>, String)>,
}

impl Chain {
    /// Each link is a provider and the model to ask it for.
    pub fn new(links: Vec<(Arc<dyn Provider>, String)>) -> Self {
        Chain { links }
    }

    /// Tries each link in order until one accepts the request; `request.model` is replaced by
    /// each link's model.
    pub async fn chat_stream(
        &self,
        request: ChatRequest,
    ) -> Result<(EventStream, ChainAttempt), LlmError> {
        let mut failures = Vec::new();
        for (provider, model) in &self.links {
            let mut attempt = request.clone();
            attempt.model = model.clone();
            match provider.chat_stream(attempt).await {
                Ok(stream) => {
                    if !failures.is_empty() {
                        tracing::warn!(
                            provider = provider.name(),
                            ?failures,
                            "answered by a fallback provider"
                        );
                    }
                    return Ok((
                        stream,
                        ChainAttempt {
                            provider: provider.name().to_owned(),
                            model: model.clone(),
                            failures,
                        },
                    ));
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        Err(LlmError::Exhausted(failures))
    }
}

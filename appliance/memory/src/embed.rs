//! Embeddings from the swapper's OpenAI-compatible `/v1/embeddings` (MiniLM by default), for
//! the indexer and for the semantic half of search.

use daarion_client::ClientError;
use daarion_client::reqwest::StatusCode;
use daarion_swapper_client::SwapperClient;

#[derive(Clone)]
pub struct Embedder {
    swapper: SwapperClient,
    pub model: String,
}

impl Embedder {
    /// The swapper and model the configuration names; `None` without a root token to call with.
    pub fn from_config(config: &daarion_config::Config) -> Option<Embedder> {
        let token = config.supervisor.root_token()?;
        Some(Embedder {
            swapper: SwapperClient::new(format!("http://{}", config.swapper.dial()), Some(token)),
            model: config.models.embedding_model.clone(),
        })
    }

    /// One vector per text, in order. The error is a sentence for `index_state.error`, which
    /// operators read in `GET /v1/index/status`.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        self.swapper
            .embed(&self.model, texts)
            .await
            .map_err(|e| explain(&e))
    }
}

fn explain(error: &ClientError) -> String {
    match error {
        ClientError::Unavailable { status: None, .. } => {
            format!("the swapper is not reachable: {}", error.message())
        }
        ClientError::Unavailable {
            status: Some(status),
            detail,
            ..
        } => {
            let message = detail
                .strip_prefix(&format!("HTTP {status}: "))
                .unwrap_or(detail);
            answered(*status, message)
        }
        ClientError::Refused { status, body, .. } => answered(*status, &body.message),
        ClientError::Protocol { detail, .. } => {
            format!("the swapper's answer is not what was asked for: {detail}")
        }
    }
}

fn answered(status: u16, message: &str) -> String {
    match StatusCode::from_u16(status) {
        Ok(status) => format!("the swapper answered {status}: {message}"),
        Err(_) => format!("the swapper answered HTTP {status}: {message}"),
    }
}

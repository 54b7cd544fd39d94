//! Embeddings from the swapper's OpenAI-compatible `/v1/embeddings` (MiniLM by default), for
//! the indexer and for the semantic half of search.

use std::time::Duration;

use serde_json::json;

#[derive(Clone)]
pub struct Embedder {
    http: reqwest::Client,
    url: String,
    token: String,
    pub model: String,
}

impl Embedder {
    /// The swapper and model the configuration names; `None` without a root token to call with.
    pub fn from_config(config: &daarion_config::Config) -> Option<Embedder> {
        let token = config.supervisor.root_token()?;
        Some(Embedder {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .no_proxy()
                .build()
                .expect("a plain HTTP client builds"),
            url: format!("http://{}/v1/embeddings", config.swapper.dial()),
            token,
            model: config.models.embedding_model.clone(),
        })
    }

    /// One vector per text, in order.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .json(&json!({"model": self.model, "input": texts}))
            .send()
            .await
            .map_err(|e| format!("the swapper is not reachable: {e}"))?;
        let status = response.status();
        let body: serde_json::Value = response
            .json()
            .await
            .map_err(|e| format!("the swapper's answer is not JSON: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "the swapper answered {status}: {}",
                body["error"]["message"].as_str().unwrap_or("no message")
            ));
        }
        let mut rows: Vec<(usize, Vec<f32>)> = body["data"]
            .as_array()
            .ok_or("the swapper's answer has no data")?
            .iter()
            .map(|row| {
                let index = row["index"].as_u64().unwrap_or(0) as usize;
                let vector = row["embedding"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|x| x.as_f64())
                            .map(|x| x as f32)
                            .collect()
                    })
                    .unwrap_or_default();
                (index, vector)
            })
            .collect();
        rows.sort_by_key(|(i, _)| *i);
        if rows.len() != texts.len() || rows.iter().any(|(_, v)| v.is_empty()) {
            return Err(format!(
                "the swapper returned {} embeddings for {} texts",
                rows.len(),
                texts.len()
            ));
        }
        Ok(rows.into_iter().map(|(_, v)| v).collect())
    }
}

//! `providers.<name>`: the LLM APIs the router may call.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Price of one model, per million tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    pub input_per_million: f64,
    pub output_per_million: f64,
    #[serde(default = "usd")]
    pub currency: String,
}

fn usd() -> String {
    "USD".into()
}

/// `providers.<name>`: an LLM API. Secrets only by reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// `openai` (any OpenAI-compatible API) or `ollama`.
    pub kind: String,
    pub base_url: String,
    #[serde(default)]
    pub models: Vec<String>,
    /// `env:NAME` or `file:NAME` (a 0600 file in `general.secrets_dir`): the secret itself never
    /// enters the control plane.
    pub api_key_ref: Option<String>,
    /// How long to wait for the answer to start, and at most between two of its chunks.
    pub timeout_secs: Option<u64>,
    /// Per model; a model without a price costs nothing (but still counts its tokens).
    #[serde(default)]
    pub prices: BTreeMap<String, ModelPrice>,
}

impl ProviderSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !["openai", "ollama"].contains(&self.kind.as_str()) {
            return Err(format!("kind `{}` is not openai or ollama", self.kind));
        }
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err("base_url must be an http(s) URL".into());
        }
        if let Some(r) = &self.api_key_ref
            && !crate::secret_reference(r)
        {
            return Err(format!("api_key_ref {}", crate::SECRET_REFERENCE));
        }
        for (model, price) in &self.prices {
            let ok = |v: f64| v.is_finite() && v >= 0.0;
            if !ok(price.input_per_million) || !ok(price.output_per_million) {
                return Err(format!("prices.{model}: prices must be non-negative"));
            }
        }
        Ok(())
    }
}

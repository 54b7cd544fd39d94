//! `POST /v1/embeddings`: one vector per input text (MiniLM by default, for memory's search).

use serde::{Deserialize, Serialize};

/// The most inputs one request may carry.
pub const MAX_EMBEDDING_INPUTS: usize = 256;

/// `I` is how `input` is held: [`EmbeddingInput`] for callers; the swapper reads raw JSON
/// (`serde_json::Value`) first so that a wrong input gets its own explanation (a 400).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest<I = EmbeddingInput> {
    pub model: String,
    pub input: I,
}

impl EmbeddingsRequest {
    pub fn new(model: impl Into<String>, texts: &[String]) -> EmbeddingsRequest {
        EmbeddingsRequest {
            model: model.into(),
            input: EmbeddingInput::Many(texts.to_vec()),
        }
    }
}

/// One text, or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
}

impl EmbeddingInput {
    pub fn into_texts(self) -> Vec<String> {
        match self {
            EmbeddingInput::One(text) => vec![text],
            EmbeddingInput::Many(texts) => texts,
        }
    }
}

pub const LIST: &str = "list";
pub const EMBEDDING: &str = "embedding";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    /// [`LIST`].
    pub object: String,
    /// In input order; `index` says which input each is.
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

impl EmbeddingsResponse {
    /// The vectors in input order, whatever order `data` came in.
    pub fn into_vectors(self) -> Vec<Vec<f32>> {
        let mut data = self.data;
        data.sort_by_key(|e| e.index);
        data.into_iter().map(|e| e.embedding).collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// [`EMBEDDING`].
    pub object: String,
    pub index: usize,
    /// Unit length (normalised by the worker), so a dot product is the cosine.
    pub embedding: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_is_one_text_or_many_and_vectors_come_back_in_input_order() {
        let one: EmbeddingsRequest =
            serde_json::from_value(json!({"model": "m", "input": "a"})).unwrap();
        assert_eq!(one.input.into_texts(), vec!["a".to_owned()]);
        let many = EmbeddingsRequest::new("m", &["a".into(), "b".into()]);
        assert_eq!(
            serde_json::to_value(&many).unwrap(),
            json!({"model": "m", "input": ["a", "b"]})
        );
        let answer: EmbeddingsResponse = serde_json::from_value(json!({
            "object": "list", "model": "m", "usage": {"prompt_tokens": 2, "total_tokens": 2},
            "data": [{"object": "embedding", "index": 1, "embedding": [0.5]},
                     {"object": "embedding", "index": 0, "embedding": [0.25]}],
        }))
        .unwrap();
        assert_eq!(answer.into_vectors(), vec![vec![0.25], vec![0.5]]);
    }
}

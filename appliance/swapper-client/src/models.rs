//! `GET /v1/models` and the answer of the admin actions on one model.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    /// `list`.
    pub object: String,
    pub data: Vec<ModelEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The manifest's id: what requests name as `model`.
    pub id: String,
    /// `model`.
    pub object: String,
    pub created: i64,
    /// `daarion`.
    pub owned_by: String,
    /// Not OpenAI's: `chat`, `vision`, `embedding`, `stt`, `tts` or `image`.
    pub kind: String,
}

/// `POST /v1/swapper/models/{id}/{load|unload|pin|unpin|pull}` (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelAction {
    pub model: String,
    /// The action done, or for a pull `pull started` / `pull already running`.
    pub done: String,
}

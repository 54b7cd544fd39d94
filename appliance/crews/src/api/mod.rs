//! The HTTP handlers: definitions, runs, and the worker's journal.

pub mod defs;
pub mod runs;
pub mod worker;

use axum::body::Bytes;
use serde::de::DeserializeOwned;

use crate::CrewsError;

/// A JSON body read here rather than by axum's extractor, so a bad one is a 422 naming what is
/// wrong in this service's error shape. An empty body reads as `{}`.
pub fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, CrewsError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| CrewsError::invalid("body", e.to_string()))
}

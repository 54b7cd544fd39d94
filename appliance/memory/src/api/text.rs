//! Bounds on the text and JSON fields a caller stores (message metadata, fact reasons): each
//! refused with a 422 naming the field, against the limits `daarion-memory-client` publishes.

use serde_json::Value;

use super::error::ApiError;

/// A string field of at most `max` bytes.
pub(crate) fn bounded(field: &'static str, text: Option<&str>, max: usize) -> Result<(), ApiError> {
    match text.and_then(|t| daarion_memory_client::limits::text_too_long(t, max)) {
        Some(problem) => Err(ApiError::invalid(field, problem)),
        None => Ok(()),
    }
}

/// A JSON field of at most `max` bytes serialized.
pub(crate) fn bounded_json(
    field: &'static str,
    value: Option<&Value>,
    max: usize,
) -> Result<(), ApiError> {
    match value.and_then(|v| daarion_memory_client::limits::json_too_large(v, max)) {
        Some(problem) => Err(ApiError::invalid(field, problem)),
        None => Ok(()),
    }
}

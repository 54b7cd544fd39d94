//! The largest value each free-form field of a request body may hold. Without them a single
//! message could carry 25 MiB of `versions` or `tool_calls` into every later prompt, cache entry
//! and history page; the service answers 422 naming the field, and callers can check first.

/// `versions` and `tool_calls` of a message, measured as serialized JSON.
pub const MAX_JSON_FIELD_BYTES: usize = 64 * 1024;
/// An agent id (as a session's `agent_id` already is).
pub const MAX_AGENT_ID_BYTES: usize = 64;
/// A model name, as `provider/model@revision`.
pub const MAX_MODEL_BYTES: usize = 256;
/// A trace id (W3C trace ids are 32 hex digits; room for a span id and a prefix).
pub const MAX_TRACE_ID_BYTES: usize = 128;
/// Why a fact changed or was forgotten (as a relation's end reason already is).
pub const MAX_REASON_BYTES: usize = 500;

/// Why `value` exceeds `max_bytes` serialized, or `None` when it fits.
pub fn json_too_large(value: &serde_json::Value, max_bytes: usize) -> Option<String> {
    let size = serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len());
    (size > max_bytes).then(|| format!("{size} bytes of JSON; at most {max_bytes}"))
}

/// Why `text` exceeds `max_bytes`, or `None` when it fits.
pub fn text_too_long(text: &str, max_bytes: usize) -> Option<String> {
    (text.len() > max_bytes).then(|| format!("{} bytes; at most {max_bytes}", text.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive() {
        assert_eq!(text_too_long(&"a".repeat(5), 5), None);
        assert!(text_too_long(&"a".repeat(6), 5).is_some());
        let big = serde_json::json!({"k": "x".repeat(MAX_JSON_FIELD_BYTES)});
        assert!(json_too_large(&big, MAX_JSON_FIELD_BYTES).is_some());
        assert_eq!(json_too_large(&serde_json::json!({}), 2), None);
    }
}

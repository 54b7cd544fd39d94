//! The HTTP conventions every DAARION service shares: one JSON error shape with a stable code,
//! trace propagation and request metrics, a request timeout, a body size limit, the
//! observability routes, each process's part of a trace (`/internal/traces/{trace_id}`), and a
//! server loop that drains on shutdown.

mod error;
mod metrics;
mod middleware;
mod nul;
pub mod openapi;
mod serve;
mod traces;

pub use error::{ErrorBody, ErrorEnvelope, ErrorResponse};
pub use middleware::{REQUEST_ID, json_errors, trace_requests};
pub use nul::refuse_nul;
pub use serve::{ServeError, build_app, serve, serve_app};
pub use traces::{TRACE_ROUTE, set_root_token_file};

/// Compares a presented credential with the expected one in time that does not depend on where
/// they differ, so a wrong token reveals nothing byte by byte.
pub fn secret_eq(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token of an `Authorization: Bearer <token>` header; `None` without one (or an empty one).
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn bearer_tokens() {
        let with = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(axum::http::header::AUTHORIZATION, value.parse().unwrap());
            headers
        };
        assert_eq!(super::bearer(&with("Bearer abc ")), Some("abc"));
        assert_eq!(super::bearer(&with("Bearer ")), None);
        assert_eq!(super::bearer(&with("Basic abc")), None);
        assert_eq!(super::bearer(&axum::http::HeaderMap::new()), None);
    }

    #[test]
    fn secret_comparison() {
        assert!(super::secret_eq(b"abc", b"abc"));
        assert!(!super::secret_eq(b"abc", b"abd"));
        assert!(!super::secret_eq(b"abc", b"ab"));
        assert!(!super::secret_eq(b"abc", b""));
    }
}

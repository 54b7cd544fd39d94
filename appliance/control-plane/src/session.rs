//! The admin browser session as it travels: the cookie that names it and the header that
//! echoes its CSRF token. Shared by the login that sets them, the authentication that reads
//! them and the OpenAPI document that describes them.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "daarion_session";

/// The same header the services that forward a session send ([`daarion_control_client`]).
pub const CSRF_HEADER: &str = daarion_control_client::CSRF_HEADER;

/// Only this hash of a session id is stored: a leaked table opens no session.
pub fn session_hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// The session id from the `Cookie` header, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parsing() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "theme=dark; daarion_session=abc123; other=1"
                .parse()
                .unwrap(),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc123"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }
}

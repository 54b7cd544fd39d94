//! Text PostgreSQL cannot store, refused before any handler runs: `text` and `jsonb` both
//! refuse a NUL character, so an agent named "a\u0000b" or a fact "a\u0000b" was a 500 from the
//! INSERT. Refused (not stripped) with a 422 naming the field, so the caller learns its data was
//! not what it meant. Every service that stores caller text puts [`refuse_nul`] on its routes.

use crate::ErrorResponse;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The middleware: a JSON body or a query parameter holding a NUL is answered 422.
pub async fn refuse_nul(request: Request, next: Next) -> Response {
    if let Some(field) = request.uri().query().and_then(nul_in_query) {
        return refused(&field);
    }
    let (parts, body) = request.into_parts();
    // The serve layer's body limit still applies: the body arrives wrapped in it.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return ErrorResponse::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is too large",
        )
        .into_response();
    };
    if let Some(field) = nul_in_json(&bytes) {
        return refused(&field);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refused(field: &str) -> Response {
    ErrorResponse::invalid(format!("{field}: must not contain a NUL character")).into_response()
}

/// The first query parameter whose (percent-encoded) name or value holds a NUL.
fn nul_in_query(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (name.contains("%00") || value.contains("%00")).then(|| name.replace("%00", ""))
    })
}

/// Where in a JSON body a NUL sits (`name`, `rules[2].agent`), if anywhere. Bodies without the
/// escape pass unparsed; a raw NUL byte is not valid JSON and is refused by the extractor.
fn nul_in_json(bytes: &Bytes) -> Option<String> {
    if !bytes.windows(6).any(|w| w == b"\\u0000") {
        return None;
    }
    let value: Value = serde_json::from_slice(bytes).ok()?;
    nul_at(&value, "body")
}

fn nul_at(value: &Value, at: &str) -> Option<String> {
    let inside = |name: &str| {
        if at == "body" {
            name.to_owned()
        } else {
            format!("{at}.{name}")
        }
    };
    match value {
        Value::String(s) if s.contains('\0') => Some(at.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(inside(&key.replace('\0', "")))
            } else {
                nul_at(item, &inside(key))
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_holding_a_nul() {
        let at = |text: &str| nul_in_json(&Bytes::from(text.to_owned()));
        assert_eq!(at(r#"{"name":"a\u0000b"}"#).as_deref(), Some("name"));
        assert_eq!(
            at(r#"{"rules":[{"agent":"x"},{"agent":"\u0000"}]}"#).as_deref(),
            Some("rules[1].agent")
        );
        assert_eq!(at(r#"["\u0000"]"#).as_deref(), Some("body[0]"));
        assert_eq!(at(r#"{"name":"a\\u0000b"}"#), None);
        assert_eq!(
            at(r#"{"a":{"b":["x","\u0000"]}}"#).as_deref(),
            Some("a.b[1]")
        );
        assert_eq!(at(r#"{"content":"ab"}"#), None);
        assert_eq!(nul_in_query("q=a%00b&limit=3").as_deref(), Some("q"));
        assert_eq!(nul_in_query("agent=a%00b").as_deref(), Some("agent"));
        assert_eq!(nul_in_query("agent=ab"), None);
    }
}

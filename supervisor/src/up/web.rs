//! The admin web UI: the files `web-ui/` builds, embedded in the binary and served on the admin
//! port. Hashed assets are cached for a year, `index.html` never (it names the current assets);
//! the build leaves a `.br` and `.gz` beside each compressible file, and the one the browser
//! accepts is sent. Every path that is not a file or an API route is the single-page app.

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use daarion_http::ErrorResponse;

#[derive(rust_embed::RustEmbed)]
#[folder = "../web-ui/dist"]
struct Assets;

/// Strict enough that an injected script cannot run or phone home; styles inline for the
/// charts' and graph's computed attributes.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path == "api" || path.starts_with("api/") {
        return ErrorResponse::not_found("no such endpoint").into_response();
    }
    let (name, file) = match Assets::get(path).filter(|_| !path.is_empty()) {
        Some(file) => (path, file),
        None if path.starts_with("assets/") => {
            return ErrorResponse::not_found("no such file").into_response();
        }
        None => match Assets::get("index.html") {
            Some(file) => ("index.html", file),
            None => return ErrorResponse::internal().into_response(),
        },
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response_headers = HeaderMap::new();
    let mime = file.metadata.mimetype();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type(mime))
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response_headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    response_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response_headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response_headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response_headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| given.split(',').any(|t| t.trim() == etag))
    {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    let accepted = accepted_encodings(&headers);
    for (encoding, suffix) in [("br", ".br"), ("gzip", ".gz")] {
        if !accepted.contains(&encoding) {
            continue;
        }
        if let Some(packed) = Assets::get(&format!("{name}{suffix}")) {
            response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            return (response_headers, packed.data.into_owned()).into_response();
        }
    }
    (response_headers, file.data.into_owned()).into_response()
}

fn content_type(mime: &str) -> String {
    if mime.starts_with("text/") || mime == "application/javascript" || mime == "image/svg+xml" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

/// The codings the client accepts, ignoring those it ranks `q=0`.
fn accepted_encodings(headers: &HeaderMap) -> Vec<&'static str> {
    let given = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut out = Vec::new();
    for part in given.split(',') {
        let mut fields = part.split(';').map(str::trim);
        let coding = fields.next().unwrap_or("");
        let refused = fields.any(|f| {
            f.strip_prefix("q=")
                .and_then(|q| q.parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        if refused {
            continue;
        }
        match coding {
            "br" => out.push("br"),
            "gzip" => out.push("gzip"),
            "*" => out.extend(["br", "gzip"]),
            _ => {}
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn encodings() {
        assert_eq!(
            accepted_encodings(&with("gzip, deflate, br")),
            ["gzip", "br"]
        );
        assert_eq!(accepted_encodings(&with("br;q=0, gzip;q=0.5")), ["gzip"]);
        assert_eq!(accepted_encodings(&with("identity")), Vec::<&str>::new());
        assert_eq!(accepted_encodings(&HeaderMap::new()), Vec::<&str>::new());
    }

    #[test]
    fn the_build_has_an_index_and_hashed_assets() {
        assert!(Assets::get("index.html").is_some());
        assert!(Assets::iter().any(|f| f.starts_with("assets/") && f.ends_with(".js")));
    }
}

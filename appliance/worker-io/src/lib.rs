//! The swapper's side of every model worker is the same: arguments on the command line, one
//! `{"event":"ready",…}` (or `{"event":"failed",…}`) line once the model is loaded, then
//! newline-delimited JSON requests on stdin answered by JSON events on stdout, until stdin
//! closes. Workers differ only in what they load and what they answer; this crate is the rest.
//! It is pure Rust, so each native worker (which must link its own ggml) can use it.

use std::io::{BufRead, Write};

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// One event line on stdout, flushed at once: the swapper waits for it.
pub fn reply(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Parses the arguments and loads the model, or exits: 2 for bad arguments (told on stderr),
/// 1 for a model that would not load (told as a `failed` event, which the swapper reports).
/// On success the `ready` event is sent.
pub fn start<A, E>(
    worker: &str,
    parse: impl FnOnce(std::iter::Skip<std::env::Args>) -> Result<A, String>,
    load: impl FnOnce(&A) -> Result<E, String>,
    ready: impl FnOnce(&E) -> Value,
) -> (A, E) {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{worker}: {e}");
            std::process::exit(2);
        }
    };
    let engine = match load(&args) {
        Ok(engine) => engine,
        Err(e) => {
            reply(&json!({"event": "failed", "message": e}));
            std::process::exit(1);
        }
    };
    reply(&ready(&engine));
    (args, engine)
}

/// The requests on stdin, in order, until it closes. A line that is no request is answered
/// with a `bad_request` error (carrying its `id` when it has one) and skipped.
pub fn requests<R: DeserializeOwned>() -> impl Iterator<Item = R> {
    std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| match parse(&line) {
            Ok(request) => Some(request),
            Err(error) => {
                reply(&error);
                None
            }
        })
}

/// A request, or the error event that answers a line that is none.
pub fn parse<R: DeserializeOwned>(line: &str) -> Result<R, Value> {
    serde_json::from_str(line).map_err(|e| {
        let id = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v["id"].as_u64());
        json!({"id": id, "event": "error", "code": "bad_request", "message": format!("unreadable request: {e}")})
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(tag = "op", rename_all = "lowercase")]
    enum Request {
        Ping { id: u64 },
    }

    #[test]
    fn a_bad_line_is_answered_with_its_id() {
        assert_eq!(
            parse::<Request>(r#"{"op":"ping","id":3}"#),
            Ok(Request::Ping { id: 3 })
        );
        let error = parse::<Request>(r#"{"op":"dance","id":4}"#).unwrap_err();
        assert_eq!(error["id"], 4);
        assert_eq!(error["code"], "bad_request");
        let error = parse::<Request>("not json").unwrap_err();
        assert_eq!(error["id"], Value::Null);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("unreadable request")
        );
    }
}

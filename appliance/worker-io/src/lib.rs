//! The swapper's side of every model worker is the same: arguments on the command line, one
//! `{"event":"ready",…}` (or `{"event":"failed",…}`) line once the model is loaded, then
//! newline-delimited JSON requests on stdin answered by JSON events on stdout, until stdin
//! closes. Workers differ only in what they load and what they answer; this crate is the rest,
//! with the messages themselves ([`Request`], [`Event`]) that the swapper and every worker
//! compile against. It is pure Rust, so each native worker (which must link its own ggml) can
//! use it.

pub mod image_header;
mod messages;

use std::io::{BufRead, Write};

use serde::de::DeserializeOwned;

pub use messages::{
    AudioFormat, Chat, ChatMessage, Embed, Event, Generate, Ready, Request, Segment, Speak,
    Transcribe, codes,
};

/// One event line on stdout, flushed at once: the swapper waits for it.
pub fn reply(event: &Event) {
    let mut out = std::io::stdout().lock();
    // An event always serialises (no maps with non-string keys, no failing Serialize impls).
    if let Ok(line) = serde_json::to_string(event) {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

/// Parses the arguments and loads the model, or exits: 2 for bad arguments (told on stderr),
/// 1 for a model that would not load (told as a `failed` event, which the swapper reports).
/// On success the `ready` event is sent.
pub fn start<A, E>(
    worker: &str,
    parse: impl FnOnce(std::iter::Skip<std::env::Args>) -> Result<A, String>,
    load: impl FnOnce(&A) -> Result<E, String>,
    ready: impl FnOnce(&E) -> Ready,
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
        Err(message) => {
            reply(&Event::Failed { message });
            std::process::exit(1);
        }
    };
    reply(&Event::Ready(Box::new(ready(&engine))));
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

/// Where a line that did not parse says it belongs, if anywhere.
#[derive(serde::Deserialize)]
struct IdOnly {
    id: Option<u64>,
}

/// The `id` of a JSON line whatever else it holds; `None` when it has none or is no JSON.
pub fn id_of(line: &str) -> Option<u64> {
    serde_json::from_str::<IdOnly>(line).ok().and_then(|l| l.id)
}

/// A request, or the error event that answers a line that is none.
pub fn parse<R: DeserializeOwned>(line: &str) -> Result<R, Event> {
    serde_json::from_str(line).map_err(|e| Event::Error {
        id: id_of(line),
        code: codes::BAD_REQUEST.to_owned(),
        message: format!("unreadable request: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(tag = "op", rename_all = "lowercase")]
    enum Ping {
        Ping { id: u64 },
    }

    fn as_json(event: &Event) -> Value {
        serde_json::to_value(event).unwrap()
    }

    #[test]
    fn a_bad_line_is_answered_with_its_id() {
        assert_eq!(
            parse::<Ping>(r#"{"op":"ping","id":3}"#),
            Ok(Ping::Ping { id: 3 })
        );
        let error = as_json(&parse::<Ping>(r#"{"op":"dance","id":4}"#).unwrap_err());
        assert_eq!(error["id"], 4);
        assert_eq!(error["code"], "bad_request");
        assert_eq!(error["event"], "error");
        let error = as_json(&parse::<Ping>("not json").unwrap_err());
        assert_eq!(error["id"], Value::Null);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("unreadable request")
        );
    }

    #[test]
    fn requests_carry_their_op_and_id() {
        let mut request = Request::Embed(Embed {
            id: 0,
            input: vec!["a cat".into()],
        });
        request.set_id(7);
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"op": "embed", "id": 7, "input": ["a cat"]})
        );
        let chat: Request =
            parse(r#"{"op":"chat","id":1,"messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        let Request::Chat(chat) = chat else {
            panic!("{chat:?}")
        };
        assert_eq!((chat.max_tokens, chat.temperature), (256, 0.0));
        assert!(chat.messages[0].images.is_empty());
        assert_eq!(
            parse::<Request>(r#"{"op":"cancel","id":9}"#),
            Ok(Request::Cancel { id: 9 })
        );
        // A picture request names every field it means: anything else is refused.
        assert!(parse::<Request>(r#"{"op":"generate","id":1,"prompt":"p","width":64,"height":64,"steps":1,"cfg_scale":1,"path":"/tmp/x","colour":"red"}"#).is_err());
        let unsupported = as_json(&Request::Cancel { id: 2 }.unsupported("this worker"));
        assert_eq!(unsupported["id"], 2);
        assert_eq!(unsupported["code"], "bad_request");
    }

    #[test]
    fn events_are_the_lines_the_swapper_reads() {
        let ready = Event::Ready(Box::new(Ready {
            model: Some("m.bin".into()),
            multilingual: Some(false),
            ..Ready::default()
        }));
        assert_eq!(
            as_json(&ready),
            json!({"event": "ready", "model": "m.bin", "multilingual": false})
        );
        assert_eq!(ready.id(), None);
        let token = Event::Token {
            id: 1,
            text: "Par".into(),
        };
        assert_eq!(
            as_json(&token),
            json!({"event": "token", "id": 1, "text": "Par"})
        );
        assert!(!token.is_last());
        let done: Event =
            serde_json::from_value(json!({"event": "done", "id": 1, "finish_reason": "stop",
            "prompt_tokens": 9, "completion_tokens": 2, "generation_ms": 12.5}))
            .unwrap();
        assert!(done.is_last());
        assert_eq!(done.id(), Some(1));
        let error = Event::error(3, codes::BAD_AUDIO, "not audio");
        assert_eq!(
            as_json(&error),
            json!({"event": "error", "id": 3, "code": "bad_audio", "message": "not audio"})
        );
        assert_eq!(
            serde_json::from_value::<Event>(as_json(&error)).unwrap(),
            error
        );
        assert_eq!(id_of(r#"{"id":5,"event":"dance"}"#), Some(5));
    }
}

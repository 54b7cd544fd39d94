//! `daarion-whisper-worker`: one whisper.cpp model in its own process, for the swapper.
//!
//! Protocol: newline-delimited JSON. `{"event":"ready",...}` once the model is loaded; then
//! `{"id":1,"op":"transcribe","path":"/…/audio.ogg","language":null}` →
//! `{"id":1,"event":"transcript","text":"…","language":"en","duration":11.0,"segments":[…]}`,
//! or `{"id":1,"event":"error","code":"bad_audio","message":"…"}`. The worker exits when its
//! stdin closes.

use std::io::BufRead;

use daarion_whisper_worker::engine::Engine;
use daarion_whisper_worker::protocol::{Args, Request, reply};

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("daarion-whisper-worker: {e}");
            std::process::exit(2);
        }
    };
    let engine = match Engine::load(&args) {
        Ok(engine) => engine,
        Err(e) => {
            reply(&serde_json::json!({"event": "failed", "message": e}));
            std::process::exit(1);
        }
    };
    reply(&engine.ready_event());
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Request>(&line) {
            Ok(Request::Transcribe(request)) => reply(&engine.transcribe(&request)),
            Ok(Request::Cancel { .. }) => {}
            Err(e) => reply(&serde_json::json!({
                "event": "error", "code": "bad_request", "message": format!("unreadable request: {e}")
            })),
        }
    }
}

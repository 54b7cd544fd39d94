//! `daarion-tts-worker`: text to speech for the swapper, one engine and voice per process.
//!
//! Protocol: newline-delimited JSON. `{"event":"ready",...}` once the engine answered a probe;
//! then `{"id":1,"op":"speak","text":"…","format":"opus","speed":1.0,"path":"/…/out"}` →
//! `{"id":1,"event":"audio","bytes":12345,"duration":2.1}` (the audio is in `path`), or
//! `{"id":1,"event":"error","code":"bad_request","message":"…"}`. Exits when stdin closes.

use std::io::BufRead;

use daarion_tts_worker::engine::Engine;
use daarion_tts_worker::protocol::{Args, Request, reply};

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("daarion-tts-worker: {e}");
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
            Ok(Request::Speak(request)) => reply(&engine.speak(&request)),
            Ok(Request::Cancel { .. }) => {}
            Err(e) => reply(&serde_json::json!({
                "event": "error", "code": "bad_request", "message": format!("unreadable request: {e}")
            })),
        }
    }
}

//! `daarion-tts-worker`: text to speech for the swapper, one engine and voice per process.
//!
//! Protocol: newline-delimited JSON. `{"event":"ready",...}` once the engine answered a probe;
//! then `{"id":1,"op":"speak","text":"…","format":"opus","speed":1.0,"path":"/…/out"}` →
//! `{"id":1,"event":"audio","bytes":12345,"duration":2.1}` (the audio is in `path`), or
//! `{"id":1,"event":"error","code":"bad_request","message":"…"}`. Exits when stdin closes.

use daarion_tts_worker::engine::Engine;
use daarion_tts_worker::protocol::{Args, Request};
use daarion_worker_io::{requests, start};

fn main() {
    let (_, engine) = start(
        "daarion-tts-worker",
        Args::parse,
        Engine::load,
        Engine::ready_event,
    );
    for request in requests::<Request>() {
        match request {
            Request::Speak(request) => daarion_worker_io::reply(&engine.speak(&request)),
            Request::Cancel { .. } => {}
            other => daarion_worker_io::reply(&other.unsupported("the text-to-speech worker")),
        }
    }
}

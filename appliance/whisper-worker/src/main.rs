//! `daarion-whisper-worker`: one whisper.cpp model in its own process, for the swapper.
//!
//! Protocol: newline-delimited JSON. `{"event":"ready",...}` once the model is loaded; then
//! `{"id":1,"op":"transcribe","path":"/…/audio.ogg","language":null}` →
//! `{"id":1,"event":"transcript","text":"…","language":"en","duration":11.0,"segments":[…]}`,
//! or `{"id":1,"event":"error","code":"bad_audio","message":"…"}`. The worker exits when its
//! stdin closes.

use daarion_whisper_worker::engine::Engine;
use daarion_whisper_worker::protocol::{Args, Request};
use daarion_worker_io::{requests, start};

fn main() {
    let (_, engine) = start(
        "daarion-whisper-worker",
        Args::parse,
        Engine::load,
        Engine::ready_event,
    );
    for request in requests::<Request>() {
        match request {
            Request::Transcribe(request) => daarion_worker_io::reply(&engine.transcribe(&request)),
            Request::Cancel { .. } => {}
            other => daarion_worker_io::reply(&other.unsupported("the whisper.cpp worker")),
        }
    }
}

//! `daarion-sd-worker`: one stable-diffusion.cpp model per process, for the swapper.
//!
//! Protocol: newline-delimited JSON. `{"event":"ready",...}` once the model is loaded; then
//! `{"id":1,"op":"generate","prompt":"…","width":1024,"height":1024,"steps":4,"cfg_scale":1.0,
//! "seed":42,"n":1,"path":"/…/out"}` → `{"id":1,"event":"images","paths":["/…/out-0.png"],
//! "seed":42,"seconds":3.2}`, or `{"id":1,"event":"error","code":"bad_request","message":"…"}`.
//! Exits when stdin closes.

use std::io::BufRead;

use daarion_sd_worker::engine::Engine;
use daarion_sd_worker::protocol::{Args, Request, reply};

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("daarion-sd-worker: {e}");
            std::process::exit(2);
        }
    };
    let mut engine = match Engine::load(&args) {
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
            Ok(Request::Generate(request)) => reply(&engine.generate(&request)),
            Ok(Request::Cancel { .. }) => {}
            Err(e) => reply(&serde_json::json!({
                "id": serde_json::from_str::<serde_json::Value>(&line).ok().and_then(|v| v["id"].as_u64()),
                "event": "error", "code": "bad_request", "message": format!("unreadable request: {e}")
            })),
        }
    }
}

//! `daarion-sd-worker`: one stable-diffusion.cpp model per process, for the swapper.
//!
//! Protocol: newline-delimited JSON. `{"event":"ready",...}` once the model is loaded; then
//! `{"id":1,"op":"generate","prompt":"…","width":1024,"height":1024,"steps":4,"cfg_scale":1.0,
//! "seed":42,"n":1,"path":"/…/out"}` → `{"id":1,"event":"images","paths":["/…/out-0.png"],
//! "seed":42,"seconds":3.2}`, or `{"id":1,"event":"error","code":"bad_request","message":"…"}`.
//! Exits when stdin closes.

use daarion_sd_worker::engine::Engine;
use daarion_sd_worker::protocol::{Args, Request};
use daarion_worker_io::{requests, start};

fn main() {
    let (_, mut engine) = start(
        "daarion-sd-worker",
        Args::parse,
        Engine::load,
        Engine::ready_event,
    );
    for request in requests::<Request>() {
        match request {
            Request::Generate(request) => daarion_worker_io::reply(&engine.generate(&request)),
            Request::Cancel { .. } => {}
            other => {
                daarion_worker_io::reply(&other.unsupported("the stable-diffusion.cpp worker"))
            }
        }
    }
}

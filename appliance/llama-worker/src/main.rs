//! `daarion-llama-worker`: one llama.cpp model in its own process, so that unloading it always
//! gives its memory back and a crash in native code never takes the swapper down.
//!
//! Protocol: newline-delimited JSON. The worker prints `{"event":"ready",...}` once the model is
//! loaded, then answers requests read from stdin, one at a time:
//! - `{"id":1,"op":"chat","messages":[{"role":"user","content":"..."}],"max_tokens":64,"temperature":0}`
//!   → `{"id":1,"event":"token","text":"..."}`… then `{"id":1,"event":"done",...}`
//! - `{"id":2,"op":"embed","input":["...","..."]}` → `{"id":2,"event":"embeddings","data":[[...]],...}`
//! - `{"op":"cancel","id":1}` stops a generation between two tokens.
//!
//! Any failure of one request is `{"id":N,"event":"error","code":"...","message":"..."}`; the
//! worker keeps serving. It exits when stdin closes (the swapper is gone or unloading it).

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use daarion_llama_worker::engine;
use daarion_llama_worker::protocol::{Args, Request};
use daarion_worker_io::{reply, start};

fn main() {
    let (_, mut engine) = start(
        "daarion-llama-worker",
        Args::parse,
        engine::Engine::load,
        engine::Engine::ready_event,
    );

    // stdin is read on its own thread so a cancel can arrive while a generation runs.
    let cancelled = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel::<Request>();
    {
        let cancelled = cancelled.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                match daarion_worker_io::parse::<Request>(&line) {
                    Ok(Request::Cancel { id }) => cancelled.store(id, Ordering::SeqCst),
                    Ok(request) => {
                        if tx.send(request).is_err() {
                            break;
                        }
                    }
                    Err(error) => reply(&error),
                }
            }
        });
    }
    for request in rx {
        match request {
            Request::Chat(chat) => engine.chat(&chat, &cancelled, &mut |event| reply(&event)),
            Request::Embed(embed) => engine.embed(&embed, &mut |event| reply(&event)),
            Request::Cancel { .. } => {}
            other => reply(&other.unsupported("the llama.cpp worker")),
        }
    }
    let _ = std::io::stdout().flush();
}

//! The worker's command line; its JSON-lines messages are the framing every worker shares
//! ([`daarion_worker_io`]), re-exported here.

pub use daarion_worker_io::{AudioFormat as Format, Request, Speak};

/// Which engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// espeak-ng, offline; `model` is its executable.
    Espeak,
    /// Microsoft Edge's online voices; `model` is the service's WebSocket URL.
    Edge,
}

#[derive(Debug)]
pub struct Args {
    pub engine: EngineKind,
    /// The espeak-ng executable, or the edge-tts endpoint.
    pub model: String,
    /// The engine's voice (`en-us`, `de`, `uk`…).
    pub voice: String,
}

impl Args {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            engine: EngineKind::Espeak,
            model: String::new(),
            voice: "en-us".into(),
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--model" => parsed.model = value()?,
                "--voice" => parsed.voice = value()?,
                "--engine" => {
                    parsed.engine = match value()?.as_str() {
                        "espeak-ng" => EngineKind::Espeak,
                        "edge-tts" => EngineKind::Edge,
                        other => return Err(format!("--engine {other}: espeak-ng or edge-tts")),
                    }
                }
                "--mode" => {
                    let mode = value()?;
                    if mode != "tts" {
                        return Err(format!("--mode {mode}: this worker only does tts"));
                    }
                }
                // Common to every worker; nothing to tune here.
                "--ctx" | "--threads" | "--gpu-layers" => {
                    value()?;
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if parsed.model.is_empty() {
            return Err("--model is required".into());
        }
        if !parsed
            .voice
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_+".contains(c))
        {
            return Err(format!("--voice {}: not a voice name", parsed.voice));
        }
        Ok(parsed)
    }
}

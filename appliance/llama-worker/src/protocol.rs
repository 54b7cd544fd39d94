//! The worker's command line; its JSON-lines messages are the framing's own
//! ([`daarion_worker_io`]), re-exported here.

pub use daarion_worker_io::{Chat, ChatMessage, Embed, Request};

#[derive(Debug)]
pub struct Args {
    pub model: String,
    /// `chat` or `embed`.
    pub mode: String,
    pub ctx: u32,
    pub threads: i32,
    pub gpu_layers: u32,
    /// A vision model's projector (llama.cpp's mmproj GGUF); images need it.
    pub mmproj: Option<String>,
}

impl Args {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            model: String::new(),
            mode: "chat".into(),
            ctx: 2048,
            threads: std::thread::available_parallelism()
                .map(|n| n.get() as i32)
                .unwrap_or(2),
            gpu_layers: 0,
            mmproj: None,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--model" => parsed.model = value()?,
                "--mode" => parsed.mode = value()?,
                "--ctx" => parsed.ctx = value()?.parse().map_err(|e| format!("--ctx: {e}"))?,
                "--threads" => {
                    parsed.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?
                }
                "--gpu-layers" => {
                    parsed.gpu_layers =
                        value()?.parse().map_err(|e| format!("--gpu-layers: {e}"))?
                }
                "--mmproj" => parsed.mmproj = Some(value()?),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if parsed.model.is_empty() {
            return Err("--model is required".into());
        }
        if parsed.mode != "chat" && parsed.mode != "embed" {
            return Err("--mode is chat or embed".into());
        }
        Ok(parsed)
    }
}

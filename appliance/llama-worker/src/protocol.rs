//! The worker's command line and its JSON-lines messages.

use serde::Deserialize;

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

#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    /// Images this message shows, base64 (PNG, JPEG, GIF, BMP…), before its text.
    #[serde(default)]
    pub images: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Chat {
    pub id: u64,
    pub messages: Vec<ChatMessage>,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    #[serde(default)]
    pub temperature: f32,
    #[serde(default)]
    pub seed: u32,
    /// Keep generating past end-of-generation tokens until `max_tokens` (llama.cpp's
    /// `ignore_eos`): fixed-length output for benchmarks and load tests.
    #[serde(default)]
    pub ignore_eos: bool,
}

fn default_max_tokens() -> u32 {
    256
}

#[derive(Debug, Deserialize)]
pub struct Embed {
    pub id: u64,
    pub input: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    Chat(Chat),
    Embed(Embed),
    Cancel { id: u64 },
}

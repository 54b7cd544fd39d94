//! Every line of the framing: the requests the swapper writes to a worker's stdin and the
//! events a worker writes to its stdout. The swapper serialises requests and reads events with
//! these types, and each worker reads requests and writes events with the same ones.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One request line: `{"op": "chat", "id": 1, …}`. Every op carries the id its events answer
/// with; the swapper numbers them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// llama.cpp, chat mode: `token` events, then `done`.
    Chat(Chat),
    /// llama.cpp, embedding mode: one `embeddings` event.
    Embed(Embed),
    /// whisper.cpp: one `transcript` event.
    Transcribe(Transcribe),
    /// The text-to-speech worker: one `audio` event.
    Speak(Speak),
    /// stable-diffusion.cpp: one `images` event.
    Generate(Generate),
    /// Stops the generation `id` between two tokens, where the worker can.
    Cancel { id: u64 },
}

impl Request {
    pub fn id(&self) -> u64 {
        match self {
            Request::Chat(r) => r.id,
            Request::Embed(r) => r.id,
            Request::Transcribe(r) => r.id,
            Request::Speak(r) => r.id,
            Request::Generate(r) => r.id,
            Request::Cancel { id } => *id,
        }
    }

    /// Numbers the request (the swapper, as it sends it).
    pub fn set_id(&mut self, id: u64) {
        match self {
            Request::Chat(r) => r.id = id,
            Request::Embed(r) => r.id = id,
            Request::Transcribe(r) => r.id = id,
            Request::Speak(r) => r.id = id,
            Request::Generate(r) => r.id = id,
            Request::Cancel { id: own } => *own = id,
        }
    }

    /// The op's name on the wire.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Chat(_) => "chat",
            Request::Embed(_) => "embed",
            Request::Transcribe(_) => "transcribe",
            Request::Speak(_) => "speak",
            Request::Generate(_) => "generate",
            Request::Cancel { .. } => "cancel",
        }
    }

    /// The answer of a worker that does not serve this op.
    pub fn unsupported(&self, worker: &str) -> Event {
        Event::error(
            self.id(),
            codes::BAD_REQUEST,
            format!("{worker} does not do `{}`", self.op()),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    /// Images this message shows, base64 (PNG, JPEG, GIF, BMP…), before its text.
    #[serde(default)]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embed {
    pub id: u64,
    pub input: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcribe {
    pub id: u64,
    /// The audio file, written by the swapper (WAV, MP3 or OGG/Opus).
    pub path: PathBuf,
    /// ISO 639-1; `None` detects it (multilingual models only).
    pub language: Option<String>,
    /// Translate to English instead of transcribing.
    #[serde(default)]
    pub translate: bool,
}

/// What speech is encoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioFormat {
    Wav,
    /// OGG/Opus, Telegram's voice format.
    Opus,
    /// Raw 16-bit little-endian mono at 24 kHz (as OpenAI's `pcm`).
    Pcm,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speak {
    pub id: u64,
    pub text: String,
    pub format: AudioFormat,
    /// 0.25 to 4.0; 1.0 is the engine's normal rate.
    #[serde(default = "normal_speed")]
    pub speed: f32,
    /// Where to write the audio; the swapper reads and removes it.
    pub path: PathBuf,
}

fn normal_speed() -> f32 {
    1.0
}

/// A picture request, every limit already checked by the swapper and checked again by the
/// worker (the library aborts on some bad values). Unknown fields are refused: a field the
/// worker would ignore is a field the swapper thinks it honours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    pub id: u64,
    pub prompt: String,
    #[serde(default)]
    pub negative_prompt: String,
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub cfg_scale: f32,
    #[serde(default = "default_guidance")]
    pub guidance: f32,
    /// None: a fresh seed, reported back so the picture can be made again.
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default = "one")]
    pub n: u32,
    /// The images are written to `<path>-0.png`, `<path>-1.png`…; the swapper reads and
    /// removes them.
    pub path: PathBuf,
}

impl Generate {
    /// Where the worker writes picture `index` of a request whose `path` is `base`.
    pub fn image_path(base: &Path, index: u32) -> PathBuf {
        let mut name = base.as_os_str().to_owned();
        name.push(format!("-{index}.png"));
        PathBuf::from(name)
    }
}

fn default_guidance() -> f32 {
    3.5
}

fn one() -> u32 {
    1
}

/// The error codes the swapper tells apart (anything else is the worker failing).
pub mod codes {
    /// A request the worker cannot read or will not do.
    pub const BAD_REQUEST: &str = "bad_request";
    pub const CONTEXT_LENGTH_EXCEEDED: &str = "context_length_exceeded";
    /// The chat template would not apply to these messages.
    pub const TEMPLATE: &str = "template";
    /// Audio that cannot be decoded.
    pub const BAD_AUDIO: &str = "bad_audio";
    /// An image that cannot be decoded.
    pub const BAD_IMAGE: &str = "bad_image";
    /// Images sent to a model without a vision projector.
    pub const NO_VISION: &str = "no_vision";
    /// A chat request to an embedding model or the reverse.
    pub const WRONG_MODE: &str = "wrong_mode";
    pub const INTERNAL: &str = "internal";
    /// Said by the swapper, not a worker: the process died with the request in flight.
    pub const WORKER_EXITED: &str = "worker_exited";
    /// Said by the swapper: a line from the worker that is no event.
    pub const PROTOCOL: &str = "protocol";
}

/// One event line: `{"event": "token", "id": 1, …}`. `ready` or `failed` comes first, once,
/// without an id; every other event answers the request with its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// The model is loaded; what the worker says about it (boxed: it is the largest event
    /// and comes once).
    Ready(Box<Ready>),
    /// The model would not load; the worker exits.
    Failed { message: String },
    /// A piece of generated text (whole UTF-8 characters).
    Token { id: u64, text: String },
    /// The generation ended.
    Done {
        id: u64,
        /// `stop`, `length` or `cancelled`.
        finish_reason: String,
        prompt_tokens: u64,
        completion_tokens: u64,
        /// From the first generated token to the last (the prompt excluded).
        generation_ms: f64,
    },
    /// One unit-length vector per input, in order.
    Embeddings {
        id: u64,
        data: Vec<Vec<f32>>,
        prompt_tokens: u64,
    },
    Transcript {
        id: u64,
        text: String,
        /// ISO 639-1, as asked or as detected.
        language: String,
        /// Seconds of audio.
        duration: f32,
        segments: Vec<Segment>,
    },
    /// The speech is in the request's `path`.
    Audio { id: u64, bytes: u64, duration: f32 },
    Images {
        id: u64,
        /// One PNG per picture asked for.
        paths: Vec<PathBuf>,
        /// The seed used: the request's, or the fresh one chosen.
        seed: i64,
        seconds: f64,
    },
    /// The request failed; the worker carries on. `id` is absent only for a line that could
    /// not be read at all.
    Error {
        id: Option<u64>,
        /// One of [`codes`].
        code: String,
        message: String,
    },
}

impl Event {
    pub fn error(id: u64, code: &str, message: impl std::fmt::Display) -> Event {
        Event::Error {
            id: Some(id),
            code: code.to_owned(),
            message: message.to_string(),
        }
    }

    /// The request this event answers; `None` for start-up events.
    pub fn id(&self) -> Option<u64> {
        match self {
            Event::Ready(_) | Event::Failed { .. } => None,
            Event::Token { id, .. }
            | Event::Done { id, .. }
            | Event::Embeddings { id, .. }
            | Event::Transcript { id, .. }
            | Event::Audio { id, .. }
            | Event::Images { id, .. } => Some(*id),
            Event::Error { id, .. } => *id,
        }
    }

    /// Whether more events follow for the same request (only after a `token`).
    pub fn is_last(&self) -> bool {
        !matches!(self, Event::Token { .. })
    }

    /// The event's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Ready(_) => "ready",
            Event::Failed { .. } => "failed",
            Event::Token { .. } => "token",
            Event::Done { .. } => "done",
            Event::Embeddings { .. } => "embeddings",
            Event::Transcript { .. } => "transcript",
            Event::Audio { .. } => "audio",
            Event::Images { .. } => "images",
            Event::Error { .. } => "error",
        }
    }
}

/// A transcript's timed piece.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Seconds from the start.
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// What a worker reports once loaded; each fills what applies to it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Ready {
    /// The model file (whisper.cpp, stable-diffusion.cpp) or engine (text to speech).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// llama.cpp: `chat` or `embed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// llama.cpp: the context in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_ctx: Option<u32>,
    /// llama.cpp: the embedding width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_embd: Option<i32>,
    /// llama.cpp: a vision projector is loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<bool>,
    /// llama.cpp: the weights' size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_bytes: Option<u64>,
    /// whisper.cpp: the model knows more languages than English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multilingual: Option<bool>,
    /// Text to speech: `espeak-ng` or `edge-tts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Text to speech: the voice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
}

//! Talking to language models.
//!
//! One [`Provider`] trait with two wire protocols: any OpenAI-compatible API (DeepSeek, Mistral,
//! Grok/xAI, the appliance's own swapper) and Ollama's native `/api/chat`. Both stream; both
//! report token usage from the provider itself. [`Resilient`] adds per-provider timeouts
//! (connect, first byte, stall between chunks) and retries with backoff that honour
//! `Retry-After`; [`Chain`] falls back from one provider to the next (cloud → local); [`Prices`]
//! turns usage into cost.

mod chain;
mod error;
mod ollama;
mod openai;
mod price;
mod retry;
mod sse;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

pub use chain::{Chain, ChainAttempt};
pub use error::LlmError;
pub use ollama::Ollama;
pub use openai::OpenAiCompatible;
pub use price::{Price, Prices};
pub use retry::{Resilient, RetryPolicy, Timeouts};
pub use types::{
    ChatEvent, ChatRequest, ChatResponse, EventStream, ImageRequest, Message, Provider, Role,
    ToolCall, Usage, collect,
};

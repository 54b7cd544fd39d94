//! The swapper's wire types and its client.
//!
//! The swapper (`daarion-swapper`) reads its requests and writes its answers with these types,
//! and every caller (router, gateway, memory) sends and reads them through [`SwapperClient`],
//! so the two ends cannot drift apart: a renamed field fails to compile on both sides. The
//! shapes are OpenAI's (`/v1/chat/completions`, `/v1/embeddings`, `/v1/audio/*`,
//! `/v1/images/generations`), with the swapper's few extensions marked where they are.

pub mod audio;
pub mod chat;
mod client;
pub mod embeddings;
pub mod error;
pub mod images;
pub mod models;

pub use audio::{
    SpeechFormat, SpeechRequest, Transcript, TranscriptFormat, TranscriptSegment, TranscriptText,
};
pub use chat::{
    ChatCompletion, ChatCompletionChunk, ChatMessage, ChatRequest, Content, ImageUrl, Part, Usage,
};
pub use client::{CallTimeouts, SwapperClient};
pub use daarion_client::ClientError;
pub use embeddings::{EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse};
pub use error::{ApiError, ApiErrorBody};
pub use images::{ImageData, ImageRequest, ImageResponse};
pub use models::{ModelAction, ModelEntry, ModelList};

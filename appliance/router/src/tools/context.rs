//! What a tool may touch on behalf of one turn (or one step of a crew run).

use std::sync::{Arc, Mutex};

use daarion_bus::Bus;
use daarion_bus::events::AttachmentOrigin;
use daarion_control_client::Usage;
use daarion_memory_client::{MemoryClient, MemoryError};
use daarion_router_client::Picture;
use daarion_swapper_client::SwapperClient;
use uuid::Uuid;

use crate::gpu::GpuMeter;
use crate::providers::Providers;

#[derive(Clone)]
pub struct ToolContext {
    pub memory: MemoryClient,
    pub bus: Bus,
    pub user_id: Uuid,
    pub agent_id: String,
    /// The conversation, when there is one (a crew step may have none).
    pub session_id: Option<Uuid>,
    /// The user message that started the turn: facts remembered now point back to it.
    pub source_message: Option<Uuid>,
    /// The chat the turn came from, so what a tool starts can answer there.
    pub origin: Option<AttachmentOrigin>,
    /// The swapper, for tools that use its models (speech, vision, pictures).
    pub swapper: SwapperClient,
    /// The text-to-speech model the `speak` tool uses.
    pub tts_model: String,
    /// Audio and other media a tool made, sent to the user with the answer.
    pub media: Arc<Mutex<Vec<Media>>>,
    /// Pictures the user sent with this message.
    pub images: Arc<Vec<Picture>>,
    /// The agent's swapper vision model, for `describe_image`.
    pub vision_model: Option<String>,
    /// The agent's `provider/model` for `generate_image`.
    pub image_model: Option<String>,
    pub providers: Arc<Providers>,
    pub control: daarion_control_client::ControlClient,
    /// Local models' speed, for the GPU-seconds a tool's model use reserves.
    pub gpu: Arc<GpuMeter>,
    /// What the tools' own model use was charged (settled), added up.
    pub charged: Arc<Mutex<Usage>>,
}

/// Media a tool produced for the user.
#[derive(Debug, Clone)]
pub struct Media {
    pub mime: &'static str,
    pub bytes: Vec<u8>,
}

impl ToolContext {
    /// Keeps media for the user; a tool that panicked holding the lock loses nothing.
    pub fn add_media(&self, media: Media) {
        self.media
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(media);
    }

    /// What the tools' model use was charged so far.
    pub fn charged(&self) -> Usage {
        *self.charged.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The media made since the last call, to send now.
    pub fn take_media(&self) -> Vec<Media> {
        std::mem::take(&mut *self.media.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A memory failure, logged with its details and told to the model in general words.
pub fn memory_unavailable(e: MemoryError) -> String {
    tracing::warn!(error = %e, "tool could not reach memory");
    "memory is unavailable right now".into()
}

/// A swapper failure, logged with its details and told to the model only as "<what> is
/// unavailable right now".
pub fn swapper_unavailable(what: &str, e: &daarion_swapper_client::ClientError) -> String {
    tracing::warn!(error = %e, what, "the swapper could not help");
    format!("{what} is unavailable right now")
}

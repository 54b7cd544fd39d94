//! What admission hands the rest of the turn.

use daarion_bus::events::AttachmentOrigin;
use daarion_control_client::{Agent, Usage};
use daarion_llm::Message;
use daarion_memory_client::Session;
use daarion_router_client::Picture;
use daarion_settings::AgentSettings;
use serde_json::Value;
use uuid::Uuid;

use crate::providers::Link;

/// A turn that passed admission.
pub struct Admitted {
    pub trace_id: String,
    pub user_id: Uuid,
    pub user_name: String,
    pub agent: Agent,
    pub settings: AgentSettings,
    pub links: Vec<Link>,
    /// The tools offered to the model: configured for the agent and allowed for this user.
    pub tools: Vec<&'static str>,
    pub session: Session,
    pub system_prompt: String,
    pub versions: Value,
    pub text: String,
    /// The text is a voice message's transcript.
    pub voice: bool,
    /// Pictures sent with the message, for the `describe_image` tool.
    pub images: Vec<Picture>,
    /// The conversation as an OpenAI client sent it, used instead of the stored session.
    pub history: Option<Vec<Message>>,
    /// The chat the message came from (for what a tool starts to answer there).
    pub origin: AttachmentOrigin,
    /// Quota held for this turn so far; settled against what was used when it ends.
    pub(super) reserved: Usage,
}

pub enum Admission {
    Go(Box<Admitted>),
    /// Not for this agent to answer (a group message not addressed to it).
    Ignored(String),
}

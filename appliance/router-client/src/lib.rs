//! The router's contract with its callers (the gateway, the web chat, any channel): the
//! normalised message it takes ([`Inbound`]), the events of a turn it streams back ([`Event`]),
//! the session reset ([`ResetResponse`]), and [`RouterClient`] to call it. The router's handlers
//! and its callers compile against these same types, so a renamed field breaks the build at both
//! ends instead of a conversation at run time.

mod client;
mod event;
mod inbound;
mod reset;
mod sse;
mod step;

pub use client::RouterClient;
pub use daarion_client::ClientError;
pub use event::Event;
pub use inbound::{
    ChatKind, Inbound, InboundError, MAX_PICTURE_BYTES, MAX_PICTURES, MAX_TEXT_BYTES,
    PICTURE_TYPES, Picture, UserRef,
};
pub use reset::ResetResponse;
pub use sse::sse_events;
pub use step::{
    MAX_IDEMPOTENCY_KEY, MAX_STEP_MESSAGES, MAX_STEP_TEXT_BYTES, StepMessage, StepRequest,
    StepResponse, StepToolCall, StepUsage, ToolRequest, ToolResponse,
};

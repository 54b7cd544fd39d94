//! `POST /v1/sessions/reset`: the request is an [`crate::Inbound`] (the message whose session
//! would continue), the answer says which session ended.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetResponse {
    /// The agent the chat was talking to.
    pub agent: String,
    /// Its display name, for telling the user.
    pub agent_name: String,
    /// The session that ended.
    pub ended: Uuid,
}

use daarion_client::ClientError;

/// Why a call to the memory API did not give the answer asked for.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// Not reachable, timed out, or it failed on its side (5xx): worth retrying later.
    #[error("memory API unreachable: {0}")]
    Unavailable(String),
    /// The memory API refused the request (4xx): `code` is its stable error code (`not_found`,
    /// `invalid`, `other_user`…), `message` its reason in words.
    #[error("memory API answered HTTP {status}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// A success whose body is not what this contract says.
    #[error("unexpected answer from the memory API: {0}")]
    Protocol(String),
}

impl MemoryError {
    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            MemoryError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<ClientError> for MemoryError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Unavailable { detail, .. } => MemoryError::Unavailable(detail),
            ClientError::Refused { status, body, .. } => MemoryError::Refused {
                status,
                code: body.code,
                message: body.message,
            },
            ClientError::Protocol { detail, .. } => MemoryError::Protocol(detail),
        }
    }
}

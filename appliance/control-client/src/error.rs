//! How a call to the control plane fails, as the data plane tells the cases apart.

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("control plane refused the token (HTTP {0})")]
    Unauthorized(u16),
    #[error("control plane unreachable and nothing cached: {0}")]
    Unavailable(String),
    #[error("unexpected answer from the control plane: {0}")]
    Protocol(String),
    /// A stored config document that is not of the type its key says: misconfigured, not down.
    #[error("config `{key}` is not valid: {message}")]
    Invalid { key: String, message: String },
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("cannot watch for changes: {0}")]
    Watch(String),
}

impl From<daarion_client::ClientError> for ClientError {
    fn from(e: daarion_client::ClientError) -> ClientError {
        use daarion_client::ClientError as Call;
        match e {
            Call::Unavailable { detail, .. } => ClientError::Unavailable(detail),
            Call::Protocol { detail, .. } => ClientError::Protocol(detail),
            Call::Refused { status, body, .. } => match status {
                404 => ClientError::NotFound(body.message),
                401 | 403 => ClientError::Unauthorized(status),
                429 => ClientError::QuotaExceeded(body.message),
                _ => ClientError::Protocol(format!("HTTP {status}: {}", body.message)),
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("JetStream is not enabled on the NATS server: {0}")]
    NoJetStream(String),
    #[error("stream {stream}: {message}")]
    Stream { stream: String, message: String },
    #[error("consumer {consumer}: {message}")]
    Consumer { consumer: String, message: String },
    #[error("publish to {subject} failed: {message}")]
    Publish { subject: String, message: String },
    /// The message never holds the password, only why its file could not be used.
    #[error("NATS credentials {}: {message}", path.display())]
    Credentials {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

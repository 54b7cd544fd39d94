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
    #[error("event could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

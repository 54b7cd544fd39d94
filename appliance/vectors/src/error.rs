#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("vector store at {path}: {message}")]
    Open { path: String, message: String },
    #[error(
        "collection `{collection}` holds {expected}-dimensional vectors, not {given}: the embedding model changed; re-index"
    )]
    Dimension {
        collection: &'static str,
        expected: usize,
        given: usize,
    },
    #[error("vector store: {0}")]
    Engine(String),
}

/// Why the memory service could not start, or stopped: a store, the bus or the server failed
/// (the client side of the memory API has its own `daarion_memory_client::MemoryError`).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Db(#[from] daarion_db::DbError),
    #[error(transparent)]
    Bus(#[from] daarion_bus::BusError),
    #[error(transparent)]
    Serve(#[from] daarion_http::ServeError),
    #[error("background task failed: {0}")]
    Task(String),
    #[error(transparent)]
    Vectors(#[from] daarion_vectors::VectorError),
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
}

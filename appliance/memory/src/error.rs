#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
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

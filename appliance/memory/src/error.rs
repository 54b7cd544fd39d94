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
}

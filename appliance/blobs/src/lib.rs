//! The blob store: file contents kept once each, under their SHA-256.
//!
//! A put streams the body to a temporary file while hashing it, refuses it the moment it
//! passes the size limit, fsyncs it, and only then moves it to `sha256/ab/cd/<hex>`: a rename
//! on the local disk (atomic, so a reader never sees half a file), an upload to an
//! S3-compatible bucket. Whole files are never held in memory. The same content put twice is
//! stored once; concurrent puts of it race harmlessly, as both write the same bytes.
//!
//! The store knows nothing of who refers to a blob: the memory API keeps the attachments and
//! says when the last one of some content is gone ([`BlobStore::delete`] is the caller's call).

mod key;
mod store;

pub use key::{Sha256Hex, object_path};
pub use store::{BlobStore, Stored};

/// Why a blob could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The body went past the limit; nothing of it was kept.
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The body could not be read to its end (the sender went away).
    #[error("the upload was cut off: {0}")]
    Body(String),
    #[error("not a SHA-256 in hex: {0:?}")]
    BadKey(String),
    #[error("no blob {0}")]
    NotFound(String),
    /// The disk or the bucket failed.
    #[error("blob store: {0}")]
    Store(String),
}

impl From<std::io::Error> for BlobError {
    fn from(e: std::io::Error) -> Self {
        BlobError::Store(e.to_string())
    }
}

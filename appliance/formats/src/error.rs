//! Why a file could not be read, worded for the person who sent it.

use std::time::Duration;

/// Every way extraction fails. `Display` is the reason shown to people; [`ExtractError::permanent`]
/// tells the caller whether retrying the same file can help.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("encrypted PDF: remove the password and send it again")]
    Encrypted,
    #[error(transparent)]
    Detect(#[from] crate::DetectError),
    #[error("the file is damaged or not a valid {format}: {detail}")]
    Corrupt {
        format: &'static str,
        detail: String,
    },
    #[error("no text found")]
    NoText,
    #[error("too many pages: {pages} > {max}")]
    TooManyPages { pages: u32, max: u32 },
    #[error("image too large: {width}×{height} pixels > {max} pixels")]
    TooManyPixels { width: u64, height: u64, max: u64 },
    #[error("archive unpacks to more than {max_mib} MiB")]
    Bomb { max_mib: u64 },
    #[error("archive has too many files: {entries} > {max}")]
    TooManyEntries { entries: usize, max: usize },
    #[error("recording too long: {seconds} s > {max} s")]
    TooLong { seconds: u64, max: u32 },
    #[error("{tool} took longer than {} s", .limit.as_secs())]
    Timeout { tool: &'static str, limit: Duration },
    #[error("{tool} failed: {reason}")]
    ToolFailed { tool: &'static str, reason: String },
    #[error("{tool} is not installed (Debian package {package})")]
    MissingTool {
        tool: &'static str,
        package: &'static str,
    },
    #[error("{0} files are not read by the parser")]
    Unsupported(&'static str),
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

impl ExtractError {
    /// Whether the same file will fail the same way again. Only a tool running out of time (the
    /// machine may be loaded) and I/O errors are worth a retry; a missing tool needs an operator,
    /// not a retry loop.
    pub fn permanent(&self) -> bool {
        !matches!(self, ExtractError::Timeout { .. } | ExtractError::Io(_))
    }

    pub(crate) fn corrupt(format: &'static str, detail: impl std::fmt::Display) -> Self {
        ExtractError::Corrupt {
            format,
            detail: detail.to_string(),
        }
    }
}

//! Files users send through Telegram: `getFile`, then the download, within the Bot API's limit.

use futures::stream::BoxStream;
use teloxide_core::net::Download;
use teloxide_core::requests::{Request, Requester};
use teloxide_core::types::FileId;

use crate::bots::ConfiguredBot;

/// The Bot API serves files up to 20 MB.
pub const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is larger than Telegram lets bots download")]
    TooLarge,
    #[error("{0}")]
    Unavailable(String),
}

/// A file Telegram is ready to serve.
pub struct Located {
    pub path: String,
}

/// `getFile`: where to download `file_id` from, refused past [`MAX_FILE_BYTES`].
pub async fn locate(bot: &ConfiguredBot, file_id: &str) -> Result<Located, FileError> {
    let file = bot
        .api
        .get_file(FileId(file_id.to_owned()))
        .send()
        .await
        .map_err(|e| FileError::Unavailable(format!("getFile: {e}")))?;
    let size = u64::from(file.meta.size);
    if size > MAX_FILE_BYTES {
        return Err(FileError::TooLarge);
    }
    Ok(Located { path: file.path })
}

/// The file's bytes as they come, so a document goes on to ingest without being held whole.
pub fn stream(
    bot: &ConfiguredBot,
    located: &Located,
) -> BoxStream<'static, Result<bytes::Bytes, reqwest::Error>> {
    bot.api.download_file_stream(&located.path)
}

/// The whole file (a voice message or a photo, which are read at once anyway).
pub async fn fetch(bot: &ConfiguredBot, file_id: &str) -> Result<Vec<u8>, FileError> {
    let located = locate(bot, file_id).await?;
    let mut bytes: Vec<u8> = Vec::new();
    bot.api
        .download_file(&located.path, &mut bytes)
        .await
        .map_err(|e| FileError::Unavailable(format!("download: {e}")))?;
    Ok(bytes)
}

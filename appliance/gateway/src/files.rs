//! Files users send through Telegram: `getFile`, then the download, within the Bot API's limit.

use teloxide_core::net::Download;
use teloxide_core::requests::{Request, Requester};
use teloxide_core::types::FileId;

use crate::bots::ConfiguredBot;

/// The Bot API serves files up to 20 MB.
const MAX_FILE_BYTES: u32 = 20 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is larger than Telegram lets bots download")]
    TooLarge,
    #[error("{0}")]
    Unavailable(String),
}

pub async fn fetch(bot: &ConfiguredBot, file_id: &str) -> Result<Vec<u8>, FileError> {
    let file = bot
        .api
        .get_file(FileId(file_id.to_owned()))
        .send()
        .await
        .map_err(|e| FileError::Unavailable(format!("getFile: {e}")))?;
    if file.meta.size > MAX_FILE_BYTES {
        return Err(FileError::TooLarge);
    }
    let mut bytes: Vec<u8> = Vec::new();
    bot.api
        .download_file(&file.path, &mut bytes)
        .await
        .map_err(|e| FileError::Unavailable(format!("download: {e}")))?;
    Ok(bytes)
}

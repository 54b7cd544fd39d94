//! Voice in both directions: a voice message fetched from Telegram (getFile, then download) and
//! transcribed by the swapper's speech-to-text model, then answered like typed text; and, where a
//! chat asked for it with `/voice on`, the answer spoken by the swapper's text-to-speech model
//! and sent as a voice message (OGG/Opus).

use daarion_swapper_client::{ClientError, SpeechFormat};

use crate::App;
use crate::bots::ConfiguredBot;
use crate::files::{self, FileError};

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error("not audio the swapper can read: {0}")]
    NotAudio(String),
    #[error("the file is larger than Telegram lets bots download")]
    TooLarge,
    #[error("{0}")]
    Unavailable(String),
}

impl From<FileError> for VoiceError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::TooLarge => VoiceError::TooLarge,
            FileError::Unavailable(why) => VoiceError::Unavailable(why),
        }
    }
}

/// A swapper's refusal with 400 means the upload itself cannot be read; anything else is the
/// swapper's trouble, not the user's.
impl From<ClientError> for VoiceError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Refused {
                status: 400, body, ..
            } => VoiceError::NotAudio(body.message),
            other => VoiceError::Unavailable(other.to_string()),
        }
    }
}

/// What was said in a voice message, by the bot's speech-to-text model.
pub async fn transcribe(
    app: &App,
    bot: &ConfiguredBot,
    file_id: &str,
) -> Result<String, VoiceError> {
    let audio = files::fetch(bot, file_id).await?;
    let transcript = app
        .swapper
        .transcribe(&bot.settings.stt_model, audio, "voice.oga", None)
        .await?;
    Ok(transcript.text.trim().to_owned())
}

/// The longest answer spoken aloud; a longer one is sent as text only.
pub const MAX_SPOKEN_CHARS: usize = 4000;

/// The answer as a Telegram voice file (OGG/Opus).
pub async fn speak(app: &App, bot: &ConfiguredBot, text: &str) -> Result<Vec<u8>, VoiceError> {
    app.swapper
        .speak(&bot.settings.tts_model, text, SpeechFormat::Opus)
        .await
        .map_err(|e| VoiceError::Unavailable(e.to_string()))
}

//! Voice in both directions: a voice message fetched from Telegram (getFile, then download) and
//! transcribed by the swapper's speech-to-text model, then answered like typed text; and, where a
//! chat asked for it with `/voice on`, the answer spoken by the swapper's text-to-speech model
//! and sent as a voice message (OGG/Opus).

use crate::App;
use crate::bots::BotHandle;
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

pub async fn transcribe(
    app: &App,
    handle: &BotHandle,
    file_id: &str,
) -> Result<String, VoiceError> {
    let bytes = files::fetch(handle, file_id).await?;
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name("voice.oga"),
        )
        .text("model", handle.settings.stt_model.clone())
        .text("response_format", "json");
    let response = app
        .http
        .post(format!("{}/v1/audio/transcriptions", app.swapper_url))
        .bearer_auth(app.root_token.as_ref())
        .timeout(std::time::Duration::from_secs(300))
        .multipart(form)
        .send()
        .await
        .map_err(|e| VoiceError::Unavailable(format!("swapper: {e}")))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| VoiceError::Unavailable(format!("swapper: {e}")))?;
    let message = || body["error"]["message"].as_str().unwrap_or("").to_owned();
    match status.as_u16() {
        200 => Ok(body["text"].as_str().unwrap_or_default().trim().to_owned()),
        400 => Err(VoiceError::NotAudio(message())),
        s => Err(VoiceError::Unavailable(format!(
            "swapper HTTP {s}: {}",
            message()
        ))),
    }
}

/// The longest answer spoken aloud; a longer one is sent as text only.
pub const MAX_SPOKEN_CHARS: usize = 4000;

/// The answer as a Telegram voice file (OGG/Opus).
pub async fn speak(app: &App, handle: &BotHandle, text: &str) -> Result<Vec<u8>, VoiceError> {
    let response = app
        .http
        .post(format!("{}/v1/audio/speech", app.swapper_url))
        .bearer_auth(app.root_token.as_ref())
        .timeout(std::time::Duration::from_secs(120))
        .json(&serde_json::json!({"model": handle.settings.tts_model, "input": text, "response_format": "opus"}))
        .send()
        .await
        .map_err(|e| VoiceError::Unavailable(format!("swapper: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(VoiceError::Unavailable(format!(
            "swapper HTTP {status}: {body}"
        )));
    }
    response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| VoiceError::Unavailable(format!("swapper: {e}")))
}

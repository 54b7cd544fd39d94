//! OpenAI's audio API: `POST /v1/audio/speech` on the text-to-speech models, and
//! `POST /v1/audio/transcriptions` and `/v1/audio/translations` on the speech-to-text models (multipart: `file`, `model`, optional `language` and
//! `response_format` of `json`, `text` or `verbose_json`). The upload is written to a file the
//! worker decodes (WAV, MP3, OGG/Opus), removed when the request ends.

use axum::Json;
use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::api::{ask_once, check_kind};
use crate::manifest::Kind;
use crate::{App, SwapError};

/// Removes the file however the request ends.
pub(crate) struct TempFile(pub(crate) std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct Upload {
    file: Vec<u8>,
    model: String,
    language: Option<String>,
    format: String,
}

async fn read_form(mut form: Multipart) -> Result<Upload, SwapError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        SwapError::BadRequest(format!("unreadable form: {e}"))
    };
    let (mut file, mut model, mut language, mut format) = (None, None, None, "json".to_owned());
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            "file" => file = Some(field.bytes().await.map_err(bad)?.to_vec()),
            "model" => model = Some(field.text().await.map_err(bad)?),
            "language" => {
                language = Some(field.text().await.map_err(bad)?).filter(|l| !l.is_empty())
            }
            "response_format" => format = field.text().await.map_err(bad)?,
            // prompt, temperature, timestamp_granularities: not used by this backend.
            _ => {}
        }
    }
    let file = file.ok_or_else(|| SwapError::BadRequest("the form has no `file`".into()))?;
    if file.is_empty() {
        return Err(SwapError::BadRequest("the audio file is empty".into()));
    }
    let model = model.ok_or_else(|| SwapError::BadRequest("the form has no `model`".into()))?;
    if !["json", "text", "verbose_json"].contains(&format.as_str()) {
        return Err(SwapError::BadRequest(format!(
            "response_format `{format}`: json, text or verbose_json"
        )));
    }
    if let Some(l) = &language
        && !(l.len() == 2 && l.bytes().all(|b| b.is_ascii_lowercase()))
    {
        return Err(SwapError::BadRequest(format!(
            "language `{l}`: an ISO 639-1 code such as en"
        )));
    }
    Ok(Upload {
        file,
        model,
        language,
        format,
    })
}

/// A fresh path under the swapper's scratch directory.
pub(crate) fn scratch(app: &App) -> Result<TempFile, SwapError> {
    let dir = app.config.general.data_dir.join("swapper").join("uploads");
    std::fs::create_dir_all(&dir)
        .map_err(|e| SwapError::WorkerFailed(format!("cannot use {}: {e}", dir.display())))?;
    Ok(TempFile(
        dir.join(uuid::Uuid::new_v4().simple().to_string()),
    ))
}

async fn run(app: App, form: Multipart, translate: bool) -> Result<Response, SwapError> {
    let upload = read_form(form).await?;
    check_kind(&app, &upload.model, Kind::Stt)?;
    let temp = scratch(&app)?;
    tokio::fs::write(&temp.0, &upload.file)
        .await
        .map_err(|e| SwapError::WorkerFailed(format!("cannot store the upload: {e}")))?;
    let event = ask_once(
        &app,
        &upload.model,
        json!({"op": "transcribe", "path": temp.0, "language": upload.language, "translate": translate}),
        "transcript",
    )
    .await?;
    let text = event["text"].as_str().unwrap_or_default().to_owned();
    Ok(match upload.format.as_str() {
        "text" => text.into_response(),
        "verbose_json" => {
            let segments: Vec<Value> = event["segments"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(id, s)| json!({"id": id, "start": s["start"], "end": s["end"], "text": s["text"]}))
                .collect();
            Json(json!({
                "task": if translate { "translate" } else { "transcribe" },
                "language": event["language"],
                "duration": event["duration"],
                "text": text,
                "segments": segments,
            }))
            .into_response()
        }
        _ => Json(json!({"text": text})).into_response(),
    })
}

type Form = Result<Multipart, axum::extract::multipart::MultipartRejection>;

/// A body that is not a multipart form gets OpenAI's error shape like every other mistake.
fn form_or_error(form: Form) -> Result<Multipart, SwapError> {
    form.map_err(|e| {
        SwapError::BadRequest(format!(
            "expected a multipart/form-data body with `file` and `model`: {e}"
        ))
    })
}

pub async fn transcriptions(State(app): State<App>, form: Form) -> Result<Response, SwapError> {
    run(app, form_or_error(form)?, false).await
}

pub async fn translations(State(app): State<App>, form: Form) -> Result<Response, SwapError> {
    run(app, form_or_error(form)?, true).await
}

#[derive(Debug, serde::Deserialize)]
pub struct SpeechRequest {
    model: String,
    input: String,
    /// OpenAI's voices name timbres; each model here is one voice (set in its manifest).
    #[serde(default)]
    #[allow(dead_code)]
    voice: Option<String>,
    #[serde(default = "default_format")]
    response_format: String,
    #[serde(default = "one")]
    speed: f32,
}

fn default_format() -> String {
    "opus".into()
}

fn one() -> f32 {
    1.0
}

/// `POST /v1/audio/speech`: `opus` (OGG/Opus, the default: Telegram's voice format), `wav` or
/// `pcm` (16-bit, 24 kHz); the formats that need an encoder this build lacks are refused.
pub async fn speech(
    State(app): State<App>,
    Json(request): Json<SpeechRequest>,
) -> Result<Response, SwapError> {
    let content_type = match request.response_format.as_str() {
        "opus" => "audio/ogg",
        "wav" => "audio/wav",
        "pcm" => "audio/pcm",
        other => {
            return Err(SwapError::BadRequest(format!(
                "response_format `{other}` is not available here: opus, wav or pcm"
            )));
        }
    };
    if request.input.trim().is_empty() {
        return Err(SwapError::BadRequest("input must not be empty".into()));
    }
    if request.input.chars().count() > 4096 {
        return Err(SwapError::BadRequest(
            "input must be at most 4096 characters".into(),
        ));
    }
    check_kind(&app, &request.model, Kind::Tts)?;
    let temp = scratch(&app)?;
    ask_once(
        &app,
        &request.model,
        json!({"op": "speak", "text": request.input, "format": request.response_format,
               "speed": request.speed, "path": temp.0}),
        "audio",
    )
    .await?;
    let audio = tokio::fs::read(&temp.0)
        .await
        .map_err(|e| SwapError::WorkerFailed(format!("cannot read the audio: {e}")))?;
    Ok(([(axum::http::header::CONTENT_TYPE, content_type)], audio).into_response())
}

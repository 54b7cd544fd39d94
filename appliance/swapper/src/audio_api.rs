//! OpenAI's audio API: `POST /v1/audio/speech` on the text-to-speech models, and
//! `POST /v1/audio/transcriptions` and `/v1/audio/translations` on the speech-to-text models (multipart: `file`, `model`, optional `language` and
//! `response_format` of `json`, `text` or `verbose_json`). The upload is written to a file the
//! worker decodes (WAV, MP3, OGG/Opus), removed when the request ends.

use axum::Json;
use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Response};
use daarion_swapper_client::audio::{
    MAX_SPEECH_CHARS, SpeechFormat, SpeechRequest, Transcript, TranscriptFormat, TranscriptSegment,
    TranscriptText, form as field,
};
use daarion_worker_io::{AudioFormat, Event, Request, Speak, Transcribe};

use crate::api::{ask_once, check_kind, worker_error};
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
    format: TranscriptFormat,
}

async fn read_form(mut form: Multipart) -> Result<Upload, SwapError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        SwapError::BadRequest(format!("unreadable form: {e}"))
    };
    let (mut file, mut model, mut language) = (None, None, None);
    let mut format = TranscriptFormat::default().as_str().to_owned();
    while let Some(part) = form.next_field().await.map_err(bad)? {
        match part.name().unwrap_or_default() {
            field::FILE => file = Some(part.bytes().await.map_err(bad)?.to_vec()),
            field::MODEL => model = Some(part.text().await.map_err(bad)?),
            field::LANGUAGE => {
                language = Some(part.text().await.map_err(bad)?).filter(|l| !l.is_empty())
            }
            field::RESPONSE_FORMAT => format = part.text().await.map_err(bad)?,
            // prompt, temperature, timestamp_granularities: not used by this backend.
            _ => {}
        }
    }
    let file = file.ok_or_else(|| SwapError::BadRequest("the form has no `file`".into()))?;
    if file.is_empty() {
        return Err(SwapError::BadRequest("the audio file is empty".into()));
    }
    let model = model.ok_or_else(|| SwapError::BadRequest("the form has no `model`".into()))?;
    let format = TranscriptFormat::from_name(&format).ok_or_else(|| {
        SwapError::BadRequest(format!(
            "response_format `{format}`: json, text or verbose_json"
        ))
    })?;
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
    let request = Request::Transcribe(Transcribe {
        id: 0,
        path: temp.0.clone(),
        language: upload.language,
        translate,
    });
    let event = ask_once(&app, &upload.model, request).await?;
    let Event::Transcript {
        text,
        language,
        duration,
        segments,
        ..
    } = event
    else {
        return Err(worker_error(&event));
    };
    Ok(match upload.format {
        TranscriptFormat::Text => text.into_response(),
        TranscriptFormat::VerboseJson => Json(Transcript {
            task: if translate { "translate" } else { "transcribe" }.into(),
            language,
            duration,
            text,
            segments: segments
                .into_iter()
                .enumerate()
                .map(|(id, s)| TranscriptSegment {
                    id,
                    start: s.start,
                    end: s.end,
                    text: s.text,
                })
                .collect(),
        })
        .into_response(),
        TranscriptFormat::Json => Json(TranscriptText { text }).into_response(),
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

/// `POST /v1/audio/speech`: `opus` (OGG/Opus, the default: Telegram's voice format), `wav` or
/// `pcm` (16-bit, 24 kHz); the formats that need an encoder this build lacks are refused.
pub async fn speech(
    State(app): State<App>,
    Json(request): Json<SpeechRequest>,
) -> Result<Response, SwapError> {
    let format = SpeechFormat::from_name(&request.response_format).ok_or_else(|| {
        SwapError::BadRequest(format!(
            "response_format `{}` is not available here: opus, wav or pcm",
            request.response_format
        ))
    })?;
    if request.input.trim().is_empty() {
        return Err(SwapError::BadRequest("input must not be empty".into()));
    }
    if request.input.chars().count() > MAX_SPEECH_CHARS {
        return Err(SwapError::BadRequest(format!(
            "input must be at most {MAX_SPEECH_CHARS} characters"
        )));
    }
    check_kind(&app, &request.model, Kind::Tts)?;
    let temp = scratch(&app)?;
    let speak = Request::Speak(Speak {
        id: 0,
        text: request.input,
        format: match format {
            SpeechFormat::Opus => AudioFormat::Opus,
            SpeechFormat::Wav => AudioFormat::Wav,
            SpeechFormat::Pcm => AudioFormat::Pcm,
        },
        speed: request.speed,
        path: temp.0.clone(),
    });
    let event = ask_once(&app, &request.model, speak).await?;
    if !matches!(event, Event::Audio { .. }) {
        return Err(worker_error(&event));
    }
    let audio = tokio::fs::read(&temp.0)
        .await
        .map_err(|e| SwapError::WorkerFailed(format!("cannot read the audio: {e}")))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, format.content_type())],
        audio,
    )
        .into_response())
}

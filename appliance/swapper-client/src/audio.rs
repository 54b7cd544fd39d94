//! OpenAI's audio API: `POST /v1/audio/speech` (JSON in, audio out) and
//! `POST /v1/audio/transcriptions` / `/v1/audio/translations` (a multipart form in, text out).

use serde::{Deserialize, Serialize};

/// The longest text one speech request may carry, in characters.
pub const MAX_SPEECH_CHARS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechRequest {
    pub model: String,
    pub input: String,
    /// OpenAI's voices name timbres; each model here is one voice (set in its manifest), so
    /// this is accepted and not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// A [`SpeechFormat`] by name. Held as text so that a format this build cannot make
    /// (`mp3`…) is refused by the swapper in its own words.
    #[serde(default = "default_speech_format")]
    pub response_format: String,
    /// 0.25 to 4; 1 is the voice's normal rate.
    #[serde(default = "normal_speed")]
    pub speed: f32,
}

impl SpeechRequest {
    pub fn new(model: impl Into<String>, input: impl Into<String>, format: SpeechFormat) -> Self {
        SpeechRequest {
            model: model.into(),
            input: input.into(),
            voice: None,
            response_format: format.as_str().to_owned(),
            speed: normal_speed(),
        }
    }
}

fn default_speech_format() -> String {
    SpeechFormat::Opus.as_str().to_owned()
}

fn normal_speed() -> f32 {
    1.0
}

/// What speech is encoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpeechFormat {
    /// OGG/Opus, Telegram's voice format (the default).
    Opus,
    Wav,
    /// Raw 16-bit little-endian mono at 24 kHz.
    Pcm,
}

impl SpeechFormat {
    pub const ALL: [SpeechFormat; 3] = [SpeechFormat::Opus, SpeechFormat::Wav, SpeechFormat::Pcm];

    pub fn as_str(self) -> &'static str {
        match self {
            SpeechFormat::Opus => "opus",
            SpeechFormat::Wav => "wav",
            SpeechFormat::Pcm => "pcm",
        }
    }

    pub fn from_name(name: &str) -> Option<SpeechFormat> {
        SpeechFormat::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The `Content-Type` the swapper answers with.
    pub fn content_type(self) -> &'static str {
        match self {
            SpeechFormat::Opus => "audio/ogg",
            SpeechFormat::Wav => "audio/wav",
            SpeechFormat::Pcm => "audio/pcm",
        }
    }
}

/// The fields of the transcription form, as OpenAI names them.
pub mod form {
    /// The audio (WAV, MP3 or OGG/Opus, told apart by content).
    pub const FILE: &str = "file";
    pub const MODEL: &str = "model";
    /// ISO 639-1 (`en`); absent: detected (multilingual models only).
    pub const LANGUAGE: &str = "language";
    /// A [`super::TranscriptFormat`] by name; `json` when absent.
    pub const RESPONSE_FORMAT: &str = "response_format";
}

/// How a transcription is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptFormat {
    /// [`TranscriptText`].
    #[default]
    Json,
    /// The text alone, as `text/plain`.
    Text,
    /// [`Transcript`]: language, duration and timed segments too.
    VerboseJson,
}

impl TranscriptFormat {
    pub const ALL: [TranscriptFormat; 3] = [
        TranscriptFormat::Json,
        TranscriptFormat::Text,
        TranscriptFormat::VerboseJson,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TranscriptFormat::Json => "json",
            TranscriptFormat::Text => "text",
            TranscriptFormat::VerboseJson => "verbose_json",
        }
    }

    pub fn from_name(name: &str) -> Option<TranscriptFormat> {
        TranscriptFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
    }
}

/// `response_format=json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptText {
    pub text: String,
}

/// `response_format=verbose_json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// `transcribe` or `translate`.
    pub task: String,
    /// ISO 639-1, as given or as detected.
    pub language: String,
    /// Seconds of audio.
    pub duration: f32,
    pub text: String,
    pub segments: Vec<TranscriptSegment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranscriptSegment {
    pub id: usize,
    /// Seconds from the start.
    pub start: f64,
    pub end: f64,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn speech_defaults_are_opus_at_normal_speed() {
        let r: SpeechRequest =
            serde_json::from_value(json!({"model": "espeak", "input": "hi"})).unwrap();
        assert_eq!(r, SpeechRequest::new("espeak", "hi", SpeechFormat::Opus));
        assert_eq!(
            serde_json::to_value(SpeechRequest::new("v", "hi", SpeechFormat::Wav)).unwrap(),
            json!({"model": "v", "input": "hi", "response_format": "wav", "speed": 1.0})
        );
        assert_eq!(SpeechFormat::from_name("mp3"), None);
        assert_eq!(SpeechFormat::from_name("pcm"), Some(SpeechFormat::Pcm));
    }

    #[test]
    fn transcript_formats_by_name() {
        for format in TranscriptFormat::ALL {
            assert_eq!(TranscriptFormat::from_name(format.as_str()), Some(format));
            assert_eq!(
                serde_json::to_value(format).unwrap(),
                json!(format.as_str())
            );
        }
        assert_eq!(TranscriptFormat::from_name("srt"), None);
    }
}

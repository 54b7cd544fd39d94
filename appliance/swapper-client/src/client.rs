//! [`SwapperClient`]: the swapper's API for the other services.

use std::time::Duration;

use daarion_client::reqwest::{Method, RequestBuilder};
use daarion_client::{ClientError, Service, Timeouts, http_client};

use crate::audio::{SpeechFormat, SpeechRequest, Transcript, TranscriptFormat, form};
use crate::chat::{ChatCompletion, ChatMessage, ChatRequest, Part};
use crate::embeddings::{EmbeddingsRequest, EmbeddingsResponse};
use crate::images::{ImageRequest, ImageResponse};
use crate::models::ModelList;

/// How long each kind of call may take, loading the model included (a cold load of a large
/// model takes most of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimeouts {
    pub embed: Duration,
    pub speech: Duration,
    pub transcribe: Duration,
    /// Chat, and describing an image.
    pub chat: Duration,
    pub images: Duration,
    /// `GET /v1/models`.
    pub list: Duration,
}

impl Default for CallTimeouts {
    fn default() -> CallTimeouts {
        CallTimeouts {
            embed: Duration::from_secs(60),
            speech: Duration::from_secs(120),
            transcribe: Duration::from_secs(300),
            chat: Duration::from_secs(300),
            // The swapper itself allows a request 600 s: pictures are slow on a CPU.
            images: Duration::from_secs(600),
            list: Duration::from_secs(10),
        }
    }
}

/// The swapper's OpenAI-compatible API. Errors are [`ClientError`]s: a 4xx is
/// [`ClientError::Refused`] (the request itself was wrong: audio that cannot be decoded, an
/// image that is not one, a model of another kind, an unknown model), everything else
/// unavailable or a protocol mismatch.
#[derive(Debug, Clone)]
pub struct SwapperClient {
    service: Service,
    timeouts: CallTimeouts,
}

impl SwapperClient {
    /// How errors name it.
    pub const NAME: &'static str = "the swapper";

    /// `base` like `http://127.0.0.1:8890` (no `/v1`); `token` the credential to call with
    /// (the root token, or an API token with `models:use`).
    pub fn new(base: impl Into<String>, token: Option<String>) -> SwapperClient {
        // Each call sets its own limit; the client's own bounds only connecting.
        let http = http_client(Timeouts::streaming());
        SwapperClient::from_service(Service::new(SwapperClient::NAME, base, token, http))
    }

    pub fn from_service(service: Service) -> SwapperClient {
        SwapperClient {
            service,
            timeouts: CallTimeouts::default(),
        }
    }

    pub fn with_timeouts(self, timeouts: CallTimeouts) -> SwapperClient {
        SwapperClient { timeouts, ..self }
    }

    pub fn timeouts(&self) -> CallTimeouts {
        self.timeouts
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    fn post(&self, path: &str, timeout: Duration) -> RequestBuilder {
        self.service.request(Method::POST, path).timeout(timeout)
    }

    /// One vector per text, in the order of `texts`.
    pub async fn embed(&self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, ClientError> {
        let answer = self
            .embeddings(&EmbeddingsRequest::new(model, texts))
            .await?;
        let vectors = answer.into_vectors();
        if vectors.len() != texts.len() || vectors.iter().any(Vec::is_empty) {
            return Err(self.service.protocol(format!(
                "{} embeddings for {} texts",
                vectors.len(),
                texts.len()
            )));
        }
        Ok(vectors)
    }

    pub async fn embeddings(
        &self,
        request: &EmbeddingsRequest,
    ) -> Result<EmbeddingsResponse, ClientError> {
        let call = self
            .post("/v1/embeddings", self.timeouts.embed)
            .json(request);
        self.service.json(call).await
    }

    /// `text` spoken by the text-to-speech `model`, encoded as `format`.
    pub async fn speak(
        &self,
        model: &str,
        text: &str,
        format: SpeechFormat,
    ) -> Result<Vec<u8>, ClientError> {
        self.speech(&SpeechRequest::new(model, text, format)).await
    }

    pub async fn speech(&self, request: &SpeechRequest) -> Result<Vec<u8>, ClientError> {
        let call = self
            .post("/v1/audio/speech", self.timeouts.speech)
            .json(request);
        let response = self.service.send(call).await?;
        let audio = response
            .bytes()
            .await
            .map_err(|e| self.service.unavailable(None, e))?;
        Ok(audio.to_vec())
    }

    /// The speech in `audio` (WAV, MP3 or OGG/Opus; `filename` is only a label) as text, by
    /// the speech-to-text `model`; `language` ISO 639-1, or `None` to detect it.
    pub async fn transcribe(
        &self,
        model: &str,
        audio: Vec<u8>,
        filename: &str,
        language: Option<&str>,
    ) -> Result<Transcript, ClientError> {
        self.audio_to_text("/v1/audio/transcriptions", model, audio, filename, language)
            .await
    }

    /// Like [`SwapperClient::transcribe`], translated to English.
    pub async fn translate(
        &self,
        model: &str,
        audio: Vec<u8>,
        filename: &str,
        language: Option<&str>,
    ) -> Result<Transcript, ClientError> {
        self.audio_to_text("/v1/audio/translations", model, audio, filename, language)
            .await
    }

    async fn audio_to_text(
        &self,
        path: &str,
        model: &str,
        audio: Vec<u8>,
        filename: &str,
        language: Option<&str>,
    ) -> Result<Transcript, ClientError> {
        use daarion_client::reqwest::multipart::{Form, Part};
        let mut upload = Form::new()
            .part(
                form::FILE,
                Part::bytes(audio).file_name(filename.to_owned()),
            )
            .text(form::MODEL, model.to_owned())
            .text(
                form::RESPONSE_FORMAT,
                TranscriptFormat::VerboseJson.as_str(),
            );
        if let Some(language) = language {
            upload = upload.text(form::LANGUAGE, language.to_owned());
        }
        let call = self.post(path, self.timeouts.transcribe).multipart(upload);
        self.service.json(call).await
    }

    /// A whole answer (`stream` must be off).
    pub async fn chat(&self, request: &ChatRequest) -> Result<ChatCompletion, ClientError> {
        let call = self
            .post("/v1/chat/completions", self.timeouts.chat)
            .json(request);
        self.service.json(call).await
    }

    /// What the vision `model` says about the image at `data_url` (`data:image/…;base64,…`)
    /// when asked `prompt`, in at most `max_tokens` tokens, trimmed.
    pub async fn describe_image(
        &self,
        model: &str,
        data_url: &str,
        prompt: &str,
        max_tokens: u32,
    ) -> Result<String, ClientError> {
        let mut request = ChatRequest::new(
            model,
            vec![ChatMessage::user(vec![
                Part::image_url(data_url),
                Part::text(prompt),
            ])],
        );
        request.max_tokens = Some(max_tokens);
        let answer = self.chat(&request).await?;
        answer
            .text()
            .map(|t| t.trim().to_owned())
            .ok_or_else(|| self.service.protocol("an answer without a choice"))
    }

    pub async fn generate_image(
        &self,
        request: &ImageRequest,
    ) -> Result<ImageResponse, ClientError> {
        let call = self
            .post("/v1/images/generations", self.timeouts.images)
            .json(request);
        self.service.json(call).await
    }

    pub async fn models(&self) -> Result<ModelList, ClientError> {
        let call = self
            .service
            .request(Method::GET, "/v1/models")
            .timeout(self.timeouts.list);
        self.service.json(call).await
    }
}

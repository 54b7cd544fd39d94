//! `POST /v1/chat/completions`: OpenAI's chat API as the swapper serves it, images included as
//! inline `image_url` parts (vision models).

use serde::{Deserialize, Serialize};

/// A chat request. `C` is how a message's content is held: [`Content`] for callers; the swapper
/// reads it as raw JSON (`serde_json::Value`) first, so that content it cannot use is answered
/// with its own explanation (a 400) rather than a parser's, and then through [`Part`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest<C = Content> {
    pub model: String,
    pub messages: Vec<ChatMessage<C>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// OpenAI's newer name for `max_tokens`; it wins when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// 0 (the default) is greedy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u32>,
    /// llama.cpp's extension: generate exactly `max_tokens`, past end-of-text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_eos: bool,
}

impl ChatRequest {
    /// A non-streamed request with the swapper's defaults for everything else.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> ChatRequest {
        ChatRequest {
            model: model.into(),
            messages,
            stream: false,
            stream_options: None,
            max_tokens: None,
            max_completion_tokens: None,
            temperature: None,
            seed: None,
            ignore_eos: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage<C = Content> {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    pub content: C,
}

impl ChatMessage {
    pub fn user(content: impl Into<Content>) -> ChatMessage {
        ChatMessage {
            role: "user".into(),
            content: content.into(),
        }
    }

    pub fn system(text: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: "system".into(),
            content: Content::Text(text.into()),
        }
    }
}

/// OpenAI's message content: a string, or a list of parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

impl From<String> for Content {
    fn from(text: String) -> Content {
        Content::Text(text)
    }
}

impl From<&str> for Content {
    fn from(text: &str) -> Content {
        Content::Text(text.to_owned())
    }
}

impl From<Vec<Part>> for Content {
    fn from(parts: Vec<Part>) -> Content {
        Content::Parts(parts)
    }
}

/// The names of [`Part`]'s `type`s, for a reader that looks at the tag before the rest.
pub const PART_TEXT: &str = "text";
pub const PART_IMAGE_URL: &str = "image_url";

/// One part of a message's content. A message's text parts are joined; its images are shown
/// to the model before its words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    /// The swapper takes images only inline, as `data:image/…;base64,…` URLs: it fetches
    /// nothing from the network.
    ImageUrl {
        image_url: ImageUrl,
    },
}

impl Part {
    pub fn text(text: impl Into<String>) -> Part {
        Part::Text { text: text.into() }
    }

    pub fn image_url(url: impl Into<String>) -> Part {
        Part::ImageUrl {
            image_url: ImageUrl { url: url.into() },
        }
    }
}

/// `{"url": …}`; the older bare string is read too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ImageUrlForms")]
pub struct ImageUrl {
    pub url: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ImageUrlForms {
    Object { url: String },
    Bare(String),
}

impl From<ImageUrlForms> for ImageUrl {
    fn from(form: ImageUrlForms) -> ImageUrl {
        match form {
            ImageUrlForms::Object { url } | ImageUrlForms::Bare(url) => ImageUrl { url },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamOptions {
    /// A last chunk with no choices and the request's token counts.
    #[serde(default)]
    pub include_usage: bool,
}

pub const CHAT_COMPLETION: &str = "chat.completion";
pub const CHAT_COMPLETION_CHUNK: &str = "chat.completion.chunk";

/// A whole (non-streamed) answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    pub id: String,
    /// [`CHAT_COMPLETION`].
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
}

impl ChatCompletion {
    /// The first choice's text, if there is one.
    pub fn text(&self) -> Option<&str> {
        self.choices.first().map(|c| c.message.content.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    /// `stop`, `length` or `cancelled`.
    pub finish_reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// `assistant`.
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// One server-sent event of a streamed answer (`data: {chunk}`), ended by `data: [DONE]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    pub id: String,
    /// [`CHAT_COMPLETION_CHUNK`].
    pub object: String,
    pub created: i64,
    pub model: String,
    /// Empty only in the usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// Only in the last chunk, and only with `stream_options.include_usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    /// Set in the chunk that ends the answer, `null` before.
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// What a stream that fails after it started sends in place of its next chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamError {
    pub error: StreamErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamErrorBody {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The model worker's code (`worker_exited`, `internal`…).
    pub code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_vision_request_is_openai_shaped() {
        let mut request = ChatRequest::new(
            "eyes",
            vec![ChatMessage::user(vec![
                Part::image_url("data:image/png;base64,AAAA"),
                Part::text("What is this?"),
            ])],
        );
        request.max_tokens = Some(64);
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"model": "eyes", "max_tokens": 64, "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "What is this?"},
            ]}]})
        );
        let back: ChatRequest =
            serde_json::from_value(serde_json::to_value(&request).unwrap()).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn content_is_a_string_or_parts_and_image_urls_come_in_both_forms() {
        let m: ChatMessage =
            serde_json::from_value(json!({"role": "user", "content": "hi"})).unwrap();
        assert_eq!(m.content, Content::Text("hi".into()));
        let bare: Part =
            serde_json::from_value(json!({"type": "image_url", "image_url": "data:x"})).unwrap();
        assert_eq!(bare, Part::image_url("data:x"));
        // The swapper's own reading: any JSON, explained by the swapper when it is no content.
        let raw: ChatRequest<serde_json::Value> = serde_json::from_value(
            json!({"model": "m", "messages": [{"role": "user", "content": 5}]}),
        )
        .unwrap();
        assert_eq!(raw.messages[0].content, json!(5));
    }

    #[test]
    fn chunks_keep_null_finish_reasons_and_leave_out_absent_usage() {
        let chunk = ChatCompletionChunk {
            id: "c".into(),
            object: CHAT_COMPLETION_CHUNK.into(),
            created: 1,
            model: "m".into(),
            choices: vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    role: None,
                    content: Some("Par".into()),
                },
                finish_reason: None,
            }],
            usage: None,
        };
        assert_eq!(
            serde_json::to_value(&chunk).unwrap(),
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {"content": "Par"}, "finish_reason": null}]})
        );
    }
}

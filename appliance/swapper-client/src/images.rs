//! `POST /v1/images/generations`: OpenAI's fields plus stable-diffusion.cpp's own; pictures come
//! back inline as base64 PNGs (the appliance keeps no images to serve by URL).

use serde::{Deserialize, Serialize};

/// The most pictures one request may ask for.
pub const MAX_IMAGES: u32 = 4;
/// The most sampling steps one request may ask for.
pub const MAX_STEPS: u32 = 150;
pub const MAX_PROMPT_CHARS: usize = 4000;

/// What is left out is the model's default (its manifest's `[image]` table).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ImageRequest {
    pub model: String,
    pub prompt: String,
    /// 1 to [`MAX_IMAGES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// `WIDTHxHEIGHT`, each a multiple of 64 up to 2048, or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Only `b64_json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<String>,
    /// Only `png`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfg_scale: Option<f32>,
    /// FLUX's distilled guidance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<f32>,
    /// Not negative; absent: a fresh one, told in the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    // quality, style, user, background, moderation: OpenAI's, with no meaning here.
}

impl ImageRequest {
    pub fn new(model: impl Into<String>, prompt: impl Into<String>) -> ImageRequest {
        ImageRequest {
            model: model.into(),
            prompt: prompt.into(),
            ..ImageRequest::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageResponse {
    /// Unix seconds.
    pub created: u64,
    pub data: Vec<ImageData>,
    /// `png`.
    pub output_format: String,
    /// Not OpenAI's: what makes the same picture again.
    pub seed: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageData {
    /// A PNG, base64 (standard alphabet, padded).
    pub b64_json: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_what_is_set_is_sent() {
        let mut request = ImageRequest::new("sketch", "a fox");
        request.seed = Some(42);
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"model": "sketch", "prompt": "a fox", "seed": 42})
        );
        let back: ImageRequest =
            serde_json::from_value(json!({"model": "sketch", "prompt": "a fox", "seed": 42}))
                .unwrap();
        assert_eq!(back, request);
    }
}

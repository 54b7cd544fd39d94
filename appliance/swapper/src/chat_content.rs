//! A chat message's content as the model gets it: its words, and its images checked.

use daarion_swapper_client::chat::{PART_IMAGE_URL, PART_TEXT, Part};
use serde::Deserialize;
use serde_json::Value;

use crate::error::SwapError;

/// The largest image a request may carry, decoded.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// A message's words and images: OpenAI content is a string, or a list of `text` parts (joined)
/// and `image_url` parts. Images come inline as `data:image/…;base64,…` URLs: the swapper
/// fetches nothing from the network. Each is checked to be base64 of a known image format.
///
/// The content arrives as raw JSON and each part is read through the callers' own [`Part`]
/// only once its `type` is known, so that what cannot be used gets an answer saying why.
pub fn content_of(content: &Value) -> Result<(String, Vec<String>), SwapError> {
    match content {
        Value::String(s) => Ok((s.clone(), Vec::new())),
        Value::Null => Ok((String::new(), Vec::new())),
        Value::Array(parts) => {
            let mut text = String::new();
            let mut images = Vec::new();
            for part in parts {
                match part["type"].as_str() {
                    Some(PART_TEXT) => {
                        // A text part without text (or with something else) adds nothing.
                        if let Ok(Part::Text { text: words }) = Part::deserialize(part) {
                            text.push_str(&words);
                        }
                    }
                    Some(PART_IMAGE_URL) => match Part::deserialize(part) {
                        Ok(Part::ImageUrl { image_url }) => {
                            images.push(inline_image(&image_url.url)?)
                        }
                        _ => {
                            return Err(SwapError::BadRequest(
                                "an image_url part needs its url".into(),
                            ));
                        }
                    },
                    Some(other) => {
                        return Err(SwapError::BadRequest(format!(
                            "content part `{other}` is not supported (text and image_url are)"
                        )));
                    }
                    None => {
                        return Err(SwapError::BadRequest("content part without a type".into()));
                    }
                }
            }
            Ok((text, images))
        }
        _ => Err(SwapError::BadRequest(
            "message content must be a string or a list of parts".into(),
        )),
    }
}

/// The base64 of an inline image, checked.
fn inline_image(url: &str) -> Result<String, SwapError> {
    use base64::Engine as _;
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(SwapError::BadRequest(
            "images must be inline data: URLs (data:image/png;base64,…); the swapper fetches nothing"
                .into(),
        ));
    };
    let (media, data) = rest
        .split_once(',')
        .ok_or_else(|| SwapError::BadRequest("a data: URL without its data".into()))?;
    if !media.ends_with(";base64") {
        return Err(SwapError::BadRequest(
            "an image data: URL must be base64-encoded".into(),
        ));
    }
    if data.len() > MAX_IMAGE_BYTES / 3 * 4 + 4 {
        return Err(SwapError::BadRequest(format!(
            "an image is larger than {} MiB",
            MAX_IMAGE_BYTES / (1024 * 1024)
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| SwapError::BadRequest(format!("the image is not valid base64: {e}")))?;
    if image_format(&bytes).is_none() {
        return Err(SwapError::BadRequest(
            "the image is not PNG, JPEG, GIF, BMP or WebP".into(),
        ));
    }
    // Before any decoder sees it: the header alone says how much memory decoding would take.
    if let Some(why) = daarion_worker_io::image_header::refusal(&bytes) {
        return Err(SwapError::BadRequest(why));
    }
    Ok(data.trim().to_owned())
}

/// The format an image's first bytes say it is.
pub fn image_format(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some("png"),
        [0xFF, 0xD8, 0xFF, ..] => Some("jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("gif"),
        [b'B', b'M', ..] => Some("bmp"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => Some("webp"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BMP: &str = "data:image/bmp;base64,Qk0=";

    #[test]
    fn words_are_joined_and_images_kept_in_both_url_forms() {
        let (text, images) = content_of(&json!([
            {"type": "text", "text": "What is "},
            {"type": "image_url", "image_url": {"url": BMP}},
            {"type": "image_url", "image_url": BMP},
            {"type": "text", "text": "this?"},
            {"type": "text"},
        ]))
        .unwrap();
        assert_eq!(text, "What is this?");
        assert_eq!(images, vec!["Qk0=".to_owned(), "Qk0=".to_owned()]);
        assert_eq!(content_of(&json!(null)).unwrap().0, "");
    }

    #[test]
    fn what_cannot_be_used_is_explained() {
        for (content, says) in [
            (json!(5), "a string or a list of parts"),
            (json!([{"text": "hi"}]), "without a type"),
            (
                json!([{"type": "input_audio"}]),
                "`input_audio` is not supported",
            ),
            (json!([{"type": "image_url"}]), "needs its url"),
            (
                json!([{"type": "image_url", "image_url": {"url": 3}}]),
                "needs its url",
            ),
            (
                json!([{"type": "image_url", "image_url": "https://x/cat.png"}]),
                "inline data: URLs",
            ),
        ] {
            let e = content_of(&content).unwrap_err().to_string();
            assert!(e.contains(says), "{content}: {e}");
        }
    }
}

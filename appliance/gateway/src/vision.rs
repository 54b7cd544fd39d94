//! Photos: fetched from Telegram and described by the swapper's vision model, so the agent (which
//! reads text) answers the photo and its caption as if the user had described the picture.

use base64::Engine as _;
use serde_json::json;

use crate::App;
use crate::bots::BotHandle;
use crate::files::{self, FileError};

/// What the vision model is asked; the answer goes to the agent in place of the picture.
const PROMPT: &str = "Describe this image in detail for an assistant that cannot see it: what is \
    in it, any text it shows, and anything unusual.";
const MAX_DESCRIPTION_TOKENS: u32 = 256;

#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("not an image the vision model can read: {0}")]
    NotImage(String),
    #[error("the file is larger than Telegram lets bots download")]
    TooLarge,
    #[error("{0}")]
    Unavailable(String),
}

impl From<FileError> for VisionError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::TooLarge => VisionError::TooLarge,
            FileError::Unavailable(why) => VisionError::Unavailable(why),
        }
    }
}

/// A photo and what the vision model saw in it.
#[derive(Debug)]
pub struct Described {
    pub description: String,
    /// The photo itself (JPEG, as Telegram sends photos), base64-encoded once for the vision
    /// model and again usable as is for the agent, whose `describe_image` tool asks its own
    /// questions about it.
    pub jpeg_base64: String,
}

/// The vision model's description of a photo (Telegram sends photos as JPEG).
pub async fn describe(
    app: &App,
    handle: &BotHandle,
    file_id: &str,
    model: &str,
) -> Result<Described, VisionError> {
    let jpeg_base64 =
        base64::engine::general_purpose::STANDARD.encode(files::fetch(handle, file_id).await?);
    let url = format!("data:image/jpeg;base64,{jpeg_base64}");
    let response = app
        .http
        .post(format!("{}/v1/chat/completions", app.swapper_url))
        .bearer_auth(app.root_token.as_ref())
        .timeout(std::time::Duration::from_secs(300))
        .json(&json!({
            "model": model,
            "max_tokens": MAX_DESCRIPTION_TOKENS,
            "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": url}},
                {"type": "text", "text": PROMPT},
            ]}],
        }))
        .send()
        .await
        .map_err(|e| VisionError::Unavailable(format!("swapper: {e}")))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| VisionError::Unavailable(format!("swapper: {e}")))?;
    let message = || body["error"]["message"].as_str().unwrap_or("").to_owned();
    match status.as_u16() {
        200 => Ok(Described {
            description: body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            jpeg_base64,
        }),
        400 => Err(VisionError::NotImage(message())),
        s => Err(VisionError::Unavailable(format!(
            "swapper HTTP {s}: {}",
            message()
        ))),
    }
}

/// What the agent reads for a photo: its description, then the caption the user wrote.
pub fn as_text(description: &str, caption: Option<&str>) -> String {
    match caption {
        Some(caption) => format!("[photo: {description}]\n{caption}"),
        None => format!("[photo: {description}]"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_description_stands_before_the_caption() {
        assert_eq!(
            super::as_text("a cat on a sofa", Some("whose cat is this?")),
            "[photo: a cat on a sofa]\nwhose cat is this?"
        );
        assert_eq!(super::as_text("a cat", None), "[photo: a cat]");
    }
}

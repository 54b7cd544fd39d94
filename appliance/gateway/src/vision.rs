//! Photos: fetched from Telegram and described by the swapper's vision model, so the agent (which
//! reads text) answers the photo and its caption as if the user had described the picture.

use base64::Engine as _;
use daarion_swapper_client::ClientError;

use crate::App;
use crate::bots::ConfiguredBot;
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

/// A swapper's refusal with 400 means the picture itself cannot be read; anything else is the
/// swapper's trouble, not the user's.
impl From<ClientError> for VisionError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Refused {
                status: 400, body, ..
            } => VisionError::NotImage(body.message),
            other => VisionError::Unavailable(other.to_string()),
        }
    }
}

/// The vision model's description of a photo (Telegram sends photos as JPEG).
pub async fn describe(
    app: &App,
    bot: &ConfiguredBot,
    file_id: &str,
    model: &str,
) -> Result<Described, VisionError> {
    let jpeg_base64 =
        base64::engine::general_purpose::STANDARD.encode(files::fetch(bot, file_id).await?);
    let url = format!("data:image/jpeg;base64,{jpeg_base64}");
    let description = app
        .swapper
        .describe_image(model, &url, PROMPT, MAX_DESCRIPTION_TOKENS)
        .await?;
    Ok(Described {
        description,
        jpeg_base64,
    })
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

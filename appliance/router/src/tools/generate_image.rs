//! `generate_image`: a picture made with the agent's image model, which goes to the user with
//! the answer. `local/<id>` is an image model in the swapper; any other provider's OpenAI
//! images API works too.

use daarion_settings::{LOCAL_PROVIDER, split_model};
use daarion_swapper_client::ImageRequest;
use serde_json::{Value, json};

use super::context::{Media, ToolContext};
use super::metered::{Work, metered};
use super::spec::{ToolResult, ToolSpec};
use crate::gpu::PICTURE_SECONDS;

pub const SPEC: ToolSpec = ToolSpec {
    name: "generate_image",
    description: "Draw a picture from a detailed description and send it to the user (when they ask for an image).",
    parameters,
    run: |ctx, args| Box::pin(run(ctx, args)),
};

fn parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "minLength": 3, "maxLength": 2000},
            "size": {"type": "string", "enum": ["512x512", "768x768", "1024x1024", "1024x768", "768x1024"]}
        },
        "required": ["prompt"],
        "additionalProperties": false
    })
}

async fn run(ctx: &ToolContext, args: Value) -> ToolResult {
    let Some(image_model) = &ctx.image_model else {
        return Err("this agent has no image model to draw with".into());
    };
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(model = %image_model, error = %e, "image generation failed");
        "image generation is unavailable right now".to_owned()
    };
    let prompt = args["prompt"].as_str().unwrap_or_default().to_owned();
    let size = args["size"].as_str().map(str::to_owned);
    let work = Work {
        link: image_model,
        units: 1.0,
        unit_seconds: PICTURE_SECONDS,
        tokens: 0,
    };
    let pictures = metered(ctx, work, async {
        draw(ctx, image_model, prompt, size)
            .await
            .map(|pictures| (pictures, 0))
            .map_err(|e| unavailable(&e))
    })
    .await?;
    let mut sent = 0;
    for bytes in pictures {
        let Some(mime) = picture_type(&bytes) else {
            tracing::warn!(model = %image_model, "the image model returned no picture");
            continue;
        };
        ctx.add_media(Media { mime, bytes });
        sent += 1;
    }
    if sent == 0 {
        return Err("the image model returned no picture".into());
    }
    Ok(json!({"sent_to_user": sent}))
}

/// The pictures of `image_model`: the swapper's for `local/…`, else the provider's images API.
async fn draw(
    ctx: &ToolContext,
    image_model: &str,
    prompt: String,
    size: Option<String>,
) -> Result<Vec<Vec<u8>>, String> {
    if let Some((LOCAL_PROVIDER, model)) = split_model(image_model) {
        return swapper_pictures(ctx, model, prompt, size).await;
    }
    let link = ctx
        .providers
        .links(&ctx.control, &[image_model.to_owned()])
        .await
        .map_err(|e| e.to_string())?
        .remove(0);
    link.provider
        .generate_images(daarion_llm::ImageRequest {
            model: link.model.clone(),
            prompt,
            size,
            n: 1,
        })
        .await
        .map_err(|e| e.to_string())
}

/// One picture from the swapper's image `model`, decoded.
async fn swapper_pictures(
    ctx: &ToolContext,
    model: &str,
    prompt: String,
    size: Option<String>,
) -> Result<Vec<Vec<u8>>, String> {
    use base64::Engine;
    let request = ImageRequest {
        n: Some(1),
        size,
        ..ImageRequest::new(model, prompt)
    };
    let answer = ctx
        .swapper
        .generate_image(&request)
        .await
        .map_err(|e| e.to_string())?;
    answer
        .data
        .iter()
        .map(|image| {
            base64::engine::general_purpose::STANDARD
                .decode(&image.b64_json)
                .map_err(|e| format!("b64_json: {e}"))
        })
        .collect()
}

/// A picture's type by its first bytes; `None` for anything that is not one.
fn picture_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_known_by_their_first_bytes() {
        for (bytes, expected) in [
            (&b"\x89PNG\r\n\x1a\n...."[..], Some("image/png")),
            (&[0xff, 0xd8, 0xff, 0xe0][..], Some("image/jpeg")),
            (&b"RIFF\0\0\0\0WEBPVP8 "[..], Some("image/webp")),
            (&b"{\"error\": 1}"[..], None),
        ] {
            assert_eq!(picture_type(bytes), expected, "{bytes:?}");
        }
    }
}

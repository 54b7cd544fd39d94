//! Decompression bombs (issue #21): an image's size is read from its header and refused before
//! any decoder sees it, and a request carries a bounded number of images. The model can see
//! (a vision manifest with its projector), yet no worker is started: the refusal comes first.

use std::time::{Duration, Instant};

use base64::Engine as _;
use daarion_swapper::testing::{ConfigBuilder, bmp, fixture};
use serde_json::{Value, json};

// The swapper test helpers, shared with `tests/swapper.rs`; this target uses a few of them.
#[allow(dead_code, unused_imports)]
mod helpers;

use helpers::Swapper;

/// A PNG that is all header: its IHDR claims `width`×`height`, and no pixel data follows.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13];
    out.extend(b"IHDR");
    out.extend(width.to_be_bytes());
    out.extend(height.to_be_bytes());
    out.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    out
}

fn part(bytes: &[u8], media: &str) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    json!({"type": "image_url", "image_url": {"url": format!("data:{media};base64,{data}")}})
}

/// A swapper whose one model can see (a vision manifest with its projector).
async fn start() -> Swapper {
    let dir = std::env::temp_dir().join(format!(
        "daarion-image-limits-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = ConfigBuilder::new(&daarion_config::Config::defaults(), &dir)
        .manifest(
            "eyes",
            &format!(
                "id = \"eyes\"\nkind = \"vision\"\nfile = \"tiny-random-llama.gguf\"\nmmproj = \"{}\"\ncontext = 512\nestimate_mb = 300\n",
                fixture("tiny-random-mmproj.gguf").display()
            ),
        )
        .build();
    config.supervisor.admin_token_file = dir.join("admin.token");
    std::fs::write(&config.supervisor.admin_token_file, "root-image-limits\n").unwrap();
    Swapper::serve(config).await
}

/// Asks the vision model; (status, the error's message).
async fn chat(swapper: &Swapper, content: Vec<Value>) -> (u16, String) {
    let body = json!({"model": "eyes", "max_tokens": 1,
                      "messages": [{"role": "user", "content": content}]});
    let (status, answer) = swapper.json("/v1/chat/completions", body).await;
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    (status, message.to_owned())
}

/// The models with a worker running.
async fn loaded(swapper: &Swapper) -> Vec<Value> {
    let status = swapper.status().await;
    status["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["state"] != "unloaded")
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_png_header_claiming_60000_by_60000_is_refused_without_decoding() {
    let swapper = start().await;
    let started = Instant::now();
    let (status, message) = chat(
        &swapper,
        vec![
            json!({"type": "text", "text": "What is this?"}),
            part(&png_header(60_000, 60_000), "image/png"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{message}");
    assert_eq!(
        message,
        "the image is 60000x60000 pixels; the limit is 32 megapixels"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // A BMP whose header lies the same way: the same answer, whatever the format.
    let mut lying = bmp(2, 2);
    lying[18..22].copy_from_slice(&100_000u32.to_le_bytes());
    lying[22..26].copy_from_slice(&100_000u32.to_le_bytes());
    let (status, message) = chat(&swapper, vec![part(&lying, "image/bmp")]).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("100000x100000"), "{message}");
    assert_eq!(
        loaded(&swapper).await,
        Vec::<Value>::new(),
        "no worker decoded it"
    );
    swapper.stop().await;
}

#[tokio::test]
async fn a_request_carries_at_most_eight_images() {
    let swapper = start().await;
    let image = bmp(2, 2);
    let nine = vec![part(&image, "image/bmp"); 9];
    let (status, message) = chat(&swapper, nine).await;
    assert_eq!(status, 400, "{message}");
    assert_eq!(message, "a request may carry at most 8 images");
    swapper.stop().await;
}

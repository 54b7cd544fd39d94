//! OpenAI's images API, `POST /v1/images/generations`, on the image models (stable-diffusion.cpp
//! in `daarion-sd-worker`). Pictures come back inline as `b64_json` PNGs: the swapper keeps
//! no files to serve, so `response_format: "url"` is refused rather than faked.
//!
//! Beyond OpenAI's fields a request may set stable-diffusion.cpp's own: `negative_prompt`,
//! `steps`, `cfg_scale`, `guidance` and `seed`; the manifest's `[image]` table fills what it
//! leaves out.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use base64::Engine as _;
use daarion_swapper_client::images::{
    ImageData, ImageRequest, ImageResponse, MAX_IMAGES, MAX_PROMPT_CHARS, MAX_STEPS,
};
use daarion_worker_io::{Event, Generate, Request};

use crate::api::{ask_once, check_kind, worker_error};
use crate::audio_api::{TempFile, scratch};
use crate::manifest::{ImageDefaults, Kind, MAX_IMAGE_SIDE, image_side_ok};
use crate::{App, SwapError};

/// `WIDTHxHEIGHT`, each a multiple of 64 within the worker's limits.
fn parse_size(size: &str) -> Result<(u32, u32), SwapError> {
    let bad = || {
        SwapError::BadRequest(format!(
            "size `{size}`: WIDTHxHEIGHT, each a multiple of 64 from 64 to {MAX_IMAGE_SIDE} (e.g. 1024x1024), or auto"
        ))
    };
    let (w, h) = size.split_once('x').ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if !(image_side_ok(w) && image_side_ok(h)) {
        return Err(bad());
    }
    Ok((w, h))
}

/// Everything a worker needs, every limit checked, the model's defaults filled in; the
/// request's `id` and `path` are set as it is sent.
fn settle(request: &ImageRequest, defaults: ImageDefaults) -> Result<Generate, SwapError> {
    let bad = |m: String| Err(SwapError::BadRequest(m));
    let prompt = request.prompt.trim();
    if prompt.is_empty() {
        return bad("prompt must not be empty".into());
    }
    if prompt.chars().count() > MAX_PROMPT_CHARS {
        return bad(format!(
            "prompt must be at most {MAX_PROMPT_CHARS} characters"
        ));
    }
    let n = request.n.unwrap_or(1);
    if !(1..=MAX_IMAGES).contains(&n) {
        return bad(format!("n must be 1 to {MAX_IMAGES}"));
    }
    match request.response_format.as_deref() {
        None | Some("b64_json") => {}
        Some("url") => {
            return bad(
                "response_format `url` is not available: the appliance keeps no images to \
                 serve; use b64_json"
                    .into(),
            );
        }
        Some(other) => return bad(format!("response_format `{other}`: b64_json")),
    }
    if let Some(format) = request.output_format.as_deref()
        && format != "png"
    {
        return bad(format!("output_format `{format}`: png"));
    }
    let (width, height) = match request.size.as_deref() {
        None | Some("auto") => (defaults.width, defaults.height),
        Some(size) => parse_size(size)?,
    };
    let steps = request.steps.unwrap_or(defaults.steps);
    if !(1..=MAX_STEPS).contains(&steps) {
        return bad(format!("steps must be 1 to {MAX_STEPS}"));
    }
    let cfg_scale = request.cfg_scale.unwrap_or(defaults.cfg_scale);
    let guidance = request.guidance.unwrap_or(defaults.guidance);
    if !(0.0..=30.0).contains(&cfg_scale) || !(0.0..=30.0).contains(&guidance) {
        return bad("cfg_scale and guidance must be 0 to 30".into());
    }
    if request.seed.is_some_and(|s| s < 0) {
        return bad("seed must not be negative".into());
    }
    Ok(Generate {
        id: 0,
        prompt: prompt.to_owned(),
        negative_prompt: request.negative_prompt.clone().unwrap_or_default(),
        width,
        height,
        steps,
        cfg_scale,
        guidance,
        seed: request.seed,
        n,
        path: Default::default(),
    })
}

pub async fn generations(
    State(app): State<App>,
    body: Result<Json<ImageRequest>, JsonRejection>,
) -> Result<Json<ImageResponse>, SwapError> {
    let Json(request) = body.map_err(|e| {
        SwapError::BadRequest(format!(
            "expected a JSON body with `model` and `prompt`: {}",
            e.body_text()
        ))
    })?;
    let manifest = app
        .scheduler
        .manifest(&request.model)
        .ok_or_else(|| crate::scheduler::ScheduleError::UnknownModel(request.model.clone()))?;
    let mut job = settle(&request, manifest.image_defaults())?;
    check_kind(&app, &request.model, Kind::Image)?;
    let base = scratch(&app)?;
    // Whatever happens, the worker's files go: it names them `<base>-<i>.png`.
    let _outputs: Vec<TempFile> = (0..MAX_IMAGES)
        .map(|i| TempFile(Generate::image_path(&base.0, i)))
        .collect();
    job.path = base.0.clone();
    let event = ask_once(&app, &request.model, Request::Generate(job)).await?;
    let Event::Images {
        paths,
        seed,
        seconds,
        ..
    } = event
    else {
        return Err(worker_error(&event));
    };
    crate::metrics::IMAGE_SECONDS
        .with_label_values(&[&request.model])
        .observe(seconds);
    let mut data = Vec::new();
    for path in paths {
        let png = tokio::fs::read(path)
            .await
            .map_err(|e| SwapError::WorkerFailed(format!("cannot read the image: {e}")))?;
        data.push(ImageData {
            b64_json: base64::engine::general_purpose::STANDARD.encode(png),
        });
    }
    if data.is_empty() {
        return Err(SwapError::WorkerFailed("the worker made no image".into()));
    }
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(Json(ImageResponse {
        created,
        data,
        output_format: "png".into(),
        seed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn request(extra: Value) -> ImageRequest {
        let mut body = json!({"model": "flux", "prompt": "a lighthouse at dusk"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn defaults_come_from_the_manifest() {
        let defaults = ImageDefaults {
            steps: 4,
            cfg_scale: 1.0,
            guidance: 3.5,
            width: 1024,
            height: 768,
        };
        let job = settle(&request(json!({})), defaults).unwrap();
        assert_eq!(job.width, 1024);
        assert_eq!(job.height, 768);
        assert_eq!(job.steps, 4);
        assert_eq!(job.n, 1);
        assert_eq!(job.seed, None);
        let job = settle(
            &request(json!({"size": "512x256", "steps": 8, "seed": 7, "n": 2})),
            defaults,
        )
        .unwrap();
        assert_eq!((job.width, job.height), (512, 256));
        assert_eq!((job.steps, job.seed), (8, Some(7)));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        let cases = [
            (json!({"prompt": " "}), "prompt must not be empty"),
            (
                json!({"prompt": "x".repeat(MAX_PROMPT_CHARS + 1)}),
                "at most",
            ),
            (json!({"n": 0}), "n must be"),
            (json!({"n": 5}), "n must be"),
            (json!({"size": "1000x1000"}), "multiple of 64"),
            (json!({"size": "big"}), "WIDTHxHEIGHT"),
            (json!({"size": "4096x64"}), "multiple of 64"),
            (json!({"response_format": "url"}), "b64_json"),
            (json!({"output_format": "webp"}), "png"),
            (json!({"steps": 0}), "steps"),
            (json!({"cfg_scale": 99.0}), "cfg_scale"),
            (json!({"seed": -1}), "seed"),
        ];
        for (extra, reason) in cases {
            let e = settle(&request(extra.clone()), ImageDefaults::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(reason), "{extra}: {e}");
        }
    }
}

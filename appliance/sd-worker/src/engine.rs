//! Requests checked, pictures made, PNGs written.

use std::path::Path;
use std::time::Instant;

use daarion_worker_io::{Event, Ready, codes};

use crate::ffi::{Context, Files, Generation, Image};
use crate::protocol::{Args, Generate};

/// Limits a request must keep; the swapper checks them first with friendlier words.
pub const MAX_SIDE: u32 = 2048;
pub const MAX_STEPS: u32 = 150;
pub const MAX_IMAGES: u32 = 4;
pub const MAX_PROMPT_CHARS: usize = 4000;

pub struct Engine {
    ctx: Context,
    model: String,
}

impl Engine {
    pub fn load(args: &Args) -> Result<Engine, String> {
        let named = [
            Some(args.model.as_path()),
            args.vae.as_deref(),
            args.clip_l.as_deref(),
            args.clip_g.as_deref(),
            args.t5xxl.as_deref(),
        ];
        if let Some(missing) = named.into_iter().flatten().find(|p| !p.is_file()) {
            return Err(format!("{} is missing", missing.display()));
        }
        let files = Files {
            model: (!args.split()).then_some(args.model.as_path()),
            diffusion_model: args.split().then_some(args.model.as_path()),
            vae: args.vae.as_deref(),
            clip_l: args.clip_l.as_deref(),
            clip_g: args.clip_g.as_deref(),
            t5xxl: args.t5xxl.as_deref(),
        };
        let ctx = Context::load(&files, args.threads)?;
        Ok(Engine {
            ctx,
            model: args.model.display().to_string(),
        })
    }

    pub fn ready_event(&self) -> Ready {
        Ready {
            model: Some(self.model.clone()),
            ..Ready::default()
        }
    }

    pub fn generate(&mut self, request: &Generate) -> Event {
        let id = request.id;
        let error = |code: &str, message: String| Event::error(id, code, message);
        if let Err(e) = check(request) {
            return error(codes::BAD_REQUEST, e);
        }
        let seed = request.seed.unwrap_or_else(fresh_seed);
        let started = Instant::now();
        let images = match self.ctx.generate(&Generation {
            prompt: request.prompt.trim(),
            negative_prompt: &request.negative_prompt,
            width: request.width,
            height: request.height,
            steps: request.steps,
            cfg_scale: request.cfg_scale,
            guidance: request.guidance,
            seed,
            count: request.n,
        }) {
            Ok(images) => images,
            Err(e) => return error(codes::INTERNAL, e),
        };
        let mut paths = Vec::with_capacity(images.len());
        for (i, image) in (0..).zip(&images) {
            let path = Generate::image_path(&request.path, i);
            if let Err(e) = write_png(&path, image) {
                return error(codes::INTERNAL, format!("cannot write the image: {e}"));
            }
            paths.push(path);
        }
        Event::Images {
            id,
            paths,
            seed,
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}

/// The request's own limits, so a bad one never reaches the library (which aborts on some).
pub fn check(request: &Generate) -> Result<(), String> {
    if request.prompt.trim().is_empty() {
        return Err("the prompt is empty".into());
    }
    if request.prompt.chars().count() > MAX_PROMPT_CHARS {
        return Err(format!(
            "the prompt is longer than {MAX_PROMPT_CHARS} characters"
        ));
    }
    for (name, side) in [("width", request.width), ("height", request.height)] {
        if !(64..=MAX_SIDE).contains(&side) || side % 64 != 0 {
            return Err(format!(
                "{name} {side}: a multiple of 64 from 64 to {MAX_SIDE}"
            ));
        }
    }
    if !(1..=MAX_STEPS).contains(&request.steps) {
        return Err(format!("steps must be 1 to {MAX_STEPS}"));
    }
    if !(1..=MAX_IMAGES).contains(&request.n) {
        return Err(format!("n must be 1 to {MAX_IMAGES}"));
    }
    if !(0.0..=30.0).contains(&request.cfg_scale) || !(0.0..=30.0).contains(&request.guidance) {
        return Err("cfg_scale and guidance must be 0 to 30".into());
    }
    Ok(())
}

fn fresh_seed() -> i64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // Positive and below 2^31: some samplers read the seed as a 32-bit number.
    ((nanos ^ (u128::from(std::process::id()) << 17)) % (1 << 31)) as i64
}

pub fn write_png(path: &Path, image: &Image) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), image.width, image.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(&image.rgb)
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Generate {
        serde_json::from_str(
            r#"{"id":1,"prompt":"a red fox","width":512,"height":768,"steps":4,"cfg_scale":1.0,"path":"/tmp/x"}"#,
        )
        .unwrap()
    }

    #[test]
    fn limits_are_checked_with_their_reason() {
        assert!(check(&request()).is_ok());
        type Spoil = fn(&mut Generate);
        let cases: [(Spoil, &str); 6] = [
            (|r| r.prompt = "  ".into(), "empty"),
            (|r| r.prompt = "x".repeat(MAX_PROMPT_CHARS + 1), "longer"),
            (|r| r.width = 500, "width 500"),
            (|r| r.height = 4096, "height 4096"),
            (|r| r.steps = 0, "steps"),
            (|r| r.n = 5, "n must"),
        ];
        for (spoil, reason) in cases {
            let mut r = request();
            spoil(&mut r);
            let e = check(&r).unwrap_err();
            assert!(e.contains(reason), "{e}");
        }
    }

    #[test]
    fn png_round_trips() {
        let path = std::env::temp_dir().join(format!("daarion-sd-{}.png", std::process::id()));
        let rgb: Vec<u8> = (0..64 * 64 * 3).map(|i| (i % 251) as u8).collect();
        write_png(
            &path,
            &Image {
                width: 64,
                height: 64,
                rgb: rgb.clone(),
            },
        )
        .unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (64, 64));
        assert_eq!(&buf[..info.buffer_size()], &rgb[..]);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_missing_file_is_named_before_the_library_runs() {
        let args = Args {
            model: "/nonexistent/flux.gguf".into(),
            ..Args::default()
        };
        let e = Engine::load(&args).err().unwrap();
        assert!(e.contains("/nonexistent/flux.gguf"), "{e}");
    }
}

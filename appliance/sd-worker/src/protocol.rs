//! The worker's command line and its JSON-lines messages (the swapper's common framing).

use std::path::PathBuf;

pub use daarion_worker_io::{Generate, Request};

#[derive(Debug)]
pub struct Args {
    /// The model file: a whole checkpoint, or (when a text encoder is given) the diffusion
    /// model alone, as FLUX and SD3 ship.
    pub model: PathBuf,
    pub vae: Option<PathBuf>,
    pub clip_l: Option<PathBuf>,
    pub clip_g: Option<PathBuf>,
    pub t5xxl: Option<PathBuf>,
    /// The CPU threads ggml computes with; unless told (the swapper's `threads = 0`, "all
    /// cores", sends no `--threads`), every core this process may use. Never 0: handed to
    /// stable-diffusion.cpp, 0 made every picture some twenty times slower. Its own default
    /// is not taken either: it counts physical cores through a sysfs path that does not
    /// exist, then guesses.
    pub threads: i32,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            model: PathBuf::new(),
            vae: None,
            clip_l: None,
            clip_g: None,
            t5xxl: None,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get() as i32),
        }
    }
}

impl Args {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args::default();
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--model" => parsed.model = value()?.into(),
                "--vae" => parsed.vae = Some(value()?.into()),
                "--clip-l" => parsed.clip_l = Some(value()?.into()),
                "--clip-g" => parsed.clip_g = Some(value()?.into()),
                "--t5xxl" => parsed.t5xxl = Some(value()?.into()),
                "--threads" => {
                    let v = value()?;
                    parsed.threads = v
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("--threads {v}: not a positive number"))?;
                }
                "--mode" => {
                    let mode = value()?;
                    if mode != "image" {
                        return Err(format!("--mode {mode}: this worker only does image"));
                    }
                }
                // Common to every worker; stable-diffusion.cpp places layers itself.
                "--ctx" | "--gpu-layers" => {
                    value()?;
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if parsed.model.as_os_str().is_empty() {
            return Err("--model is required".into());
        }
        Ok(parsed)
    }

    /// Whether the text encoders come as files of their own, making `model` the diffusion
    /// model alone.
    pub fn split(&self) -> bool {
        self.clip_l.is_some() || self.clip_g.is_some() || self.t5xxl.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn a_checkpoint_or_a_split_model() {
        let whole = parse(&[
            "--model",
            "/m/sd15.safetensors",
            "--mode",
            "image",
            "--ctx",
            "2048",
        ])
        .unwrap();
        assert!(!whole.split());
        assert!(
            whole.threads >= 1,
            "every core this process may use, never 0: {}",
            whole.threads
        );
        let flux = parse(&[
            "--model",
            "/m/flux.gguf",
            "--vae",
            "/m/ae.safetensors",
            "--clip-l",
            "/m/clip_l.safetensors",
            "--t5xxl",
            "/m/t5.gguf",
            "--threads",
            "4",
        ])
        .unwrap();
        assert!(flux.split());
        assert_eq!(flux.threads, 4);
        assert_eq!(
            flux.vae.as_deref(),
            Some(std::path::Path::new("/m/ae.safetensors"))
        );
    }

    #[test]
    fn bad_arguments_are_named() {
        assert!(parse(&[]).unwrap_err().contains("--model"));
        assert!(
            parse(&["--model", "m", "--mode", "chat"])
                .unwrap_err()
                .contains("only does image")
        );
        assert!(
            parse(&["--model", "m", "--threads", "x"])
                .unwrap_err()
                .contains("not a positive number")
        );
        assert!(
            parse(&["--model", "m", "--threads", "0"])
                .unwrap_err()
                .contains("not a positive number")
        );
        assert!(
            parse(&["--model", "m", "--bogus"])
                .unwrap_err()
                .contains("--bogus")
        );
        assert!(parse(&["--model"]).unwrap_err().contains("needs a value"));
    }

    #[test]
    fn requests_read_with_defaults() {
        let r: Request = serde_json::from_str(
            r#"{"op":"generate","id":3,"prompt":"a cat","width":512,"height":512,"steps":4,"cfg_scale":1.0,"path":"/tmp/x"}"#,
        )
        .unwrap();
        let Request::Generate(g) = r else { panic!() };
        assert_eq!((g.n, g.seed, g.guidance), (1, None, 3.5));
        assert!(serde_json::from_str::<Request>(r#"{"op":"generate","id":1,"prompt":"p","width":8,"height":8,"steps":1,"cfg_scale":1,"path":"p","colour":"red"}"#).is_err());
    }
}

//! The worker's command line; its JSON-lines messages are the framing every worker shares
//! ([`daarion_worker_io`]), re-exported here, so the swapper drives all workers alike.

pub use daarion_worker_io::{Request, Transcribe};

#[derive(Debug)]
pub struct Args {
    pub model: String,
    pub threads: i32,
    /// Above zero: run on the GPU.
    pub gpu_layers: u32,
}

impl Args {
    /// Accepts the swapper's common flags; `--mode` must be `stt`, `--ctx` is whisper's own.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut parsed = Args {
            model: String::new(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get() as i32)
                .unwrap_or(2),
            gpu_layers: 0,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--model" => parsed.model = value()?,
                "--mode" => {
                    let mode = value()?;
                    if mode != "stt" {
                        return Err(format!("--mode {mode}: this worker only does stt"));
                    }
                }
                "--ctx" => {
                    value()?;
                }
                "--threads" => {
                    parsed.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?
                }
                "--gpu-layers" => {
                    parsed.gpu_layers =
                        value()?.parse().map_err(|e| format!("--gpu-layers: {e}"))?
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if parsed.model.is_empty() {
            return Err("--model is required".into());
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_and_requests() {
        let args = Args::parse(
            [
                "--model",
                "m.bin",
                "--mode",
                "stt",
                "--ctx",
                "0",
                "--threads",
                "2",
            ]
            .map(String::from)
            .into_iter(),
        )
        .unwrap();
        assert_eq!(args.threads, 2);
        assert!(Args::parse(["--mode", "chat"].map(String::from).into_iter()).is_err());
        let r: Request = serde_json::from_str(
            r#"{"op":"transcribe","id":3,"path":"/tmp/a.ogg","language":null}"#,
        )
        .unwrap();
        assert!(matches!(r, Request::Transcribe(t) if t.id == 3 && !t.translate));
    }
}

//! The engines: espeak-ng (text on its stdin, a WAV on its stdout) or an edge-tts online voice
//! (MP3 over a WebSocket); either way the speech is decoded and re-encoded as asked.

use std::io::Write;
use std::process::{Command, Stdio};

use daarion_audio::{Pcm, decode, encode_ogg_opus, encode_wav, resample};
use daarion_worker_io::{Event, Ready, codes};

use crate::edge::Edge;
use crate::protocol::{Args, EngineKind, Format, Speak};

/// Longer input is refused: it would hold the engine for minutes.
pub const MAX_CHARS: usize = 4096;
/// espeak-ng's normal speaking rate, in words per minute.
const NORMAL_WPM: f32 = 175.0;
const PCM_RATE: u32 = 24_000;

pub struct Engine {
    exe: String,
    voice: String,
    /// Set for an online voice: `exe` is then the service's endpoint.
    edge: Option<Edge>,
}

/// espeak-ng streams its WAV, so the header's sizes are placeholders; set them from the data.
fn fix_wav_sizes(wav: &mut [u8]) {
    if wav.len() >= 44 && &wav[0..4] == b"RIFF" && &wav[36..40] == b"data" {
        let total = (wav.len() - 8) as u32;
        let data = (wav.len() - 44) as u32;
        wav[4..8].copy_from_slice(&total.to_le_bytes());
        wav[40..44].copy_from_slice(&data.to_le_bytes());
    }
}

impl Engine {
    /// Checks the engine runs and knows the voice, so a bad manifest fails at load, not later.
    pub fn load(args: &Args) -> Result<Engine, String> {
        let engine = Engine {
            exe: args.model.clone(),
            voice: args.voice.clone(),
            edge: (args.engine == EngineKind::Edge).then(|| Edge::new(&args.model, &args.voice)),
        };
        let probe = engine.synthesise("ok", 1.0)?;
        if probe.samples.is_empty() {
            return Err(format!(
                "{} produced no audio for voice {}",
                engine.exe, engine.voice
            ));
        }
        Ok(engine)
    }

    pub fn ready_event(&self) -> Ready {
        let engine = if self.edge.is_some() {
            "edge-tts"
        } else {
            "espeak-ng"
        };
        Ready {
            engine: Some(engine.to_owned()),
            model: Some(self.exe.clone()),
            voice: Some(self.voice.clone()),
            ..Ready::default()
        }
    }

    fn synthesise(&self, text: &str, speed: f32) -> Result<Pcm, String> {
        if let Some(edge) = &self.edge {
            let mp3 = edge.synthesise(text, speed)?;
            return decode(&mp3).map_err(|e| format!("edge-tts sent unreadable audio: {e}"));
        }
        let wpm = (NORMAL_WPM * speed).round() as u32;
        let mut child = Command::new(&self.exe)
            .args(["-v", &self.voice, "-s", &wpm.to_string(), "--stdout"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.exe))?;
        // The text goes through stdin, never the command line: no quoting, no length limit.
        let mut stdin = child.stdin.take().ok_or("no engine stdin")?;
        let input = text.to_owned();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let output = child
            .wait_with_output()
            .map_err(|e| format!("{} failed: {e}", self.exe))?;
        let _ = writer.join();
        if !output.status.success() {
            return Err(format!(
                "{} failed ({}): {}",
                self.exe,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let mut wav = output.stdout;
        fix_wav_sizes(&mut wav);
        decode(&wav).map_err(|e| format!("the engine's audio is unreadable: {e}"))
    }

    pub fn speak(&self, request: &Speak) -> Event {
        let id = request.id;
        let error = |code: &str, message: String| Event::error(id, code, message);
        let text = request.text.trim();
        if text.is_empty() {
            return error(codes::BAD_REQUEST, "the input is empty".into());
        }
        if text.chars().count() > MAX_CHARS {
            return error(
                codes::BAD_REQUEST,
                format!("the input is longer than {MAX_CHARS} characters"),
            );
        }
        if !(0.25..=4.0).contains(&request.speed) {
            return error(codes::BAD_REQUEST, "speed must be 0.25 to 4.0".into());
        }
        let pcm = match self.synthesise(text, request.speed) {
            Ok(pcm) => pcm,
            Err(e) => return error(codes::INTERNAL, e),
        };
        let bytes = match request.format {
            Format::Wav => encode_wav(&pcm),
            Format::Opus => match encode_ogg_opus(&pcm) {
                Ok(b) => b,
                Err(e) => return error(codes::INTERNAL, e.0),
            },
            Format::Pcm => resample(&pcm.samples, pcm.rate, PCM_RATE)
                .iter()
                .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes())
                .collect(),
        };
        if let Err(e) = std::fs::write(&request.path, &bytes) {
            return error(codes::INTERNAL, format!("cannot write the audio: {e}"));
        }
        Event::Audio {
            id,
            bytes: bytes.len() as u64,
            duration: pcm.seconds(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_wav_headers_are_fixed() {
        let mut wav = encode_wav(&Pcm {
            samples: vec![0.1; 100],
            rate: 8000,
        });
        wav[4..8].copy_from_slice(&0x7fff_f024u32.to_le_bytes());
        wav[40..44].copy_from_slice(&0x7fff_f000u32.to_le_bytes());
        fix_wav_sizes(&mut wav);
        assert_eq!(decode(&wav).unwrap().samples.len(), 100);
    }
}

//! One whisper model, loaded once, transcribing one file at a time.

use daarion_worker_io::{Event, Ready, Segment, codes};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use crate::protocol::{Args, Transcribe};
use daarion_audio as audio;

pub struct Engine {
    ctx: WhisperContext,
    threads: i32,
    model: String,
}

impl Engine {
    pub fn load(args: &Args) -> Result<Engine, String> {
        let mut params = WhisperContextParameters::default();
        params.use_gpu(args.gpu_layers > 0);
        let ctx = WhisperContext::new_with_params(&args.model, params)
            .map_err(|e| format!("cannot load {}: {e}", args.model))?;
        Ok(Engine {
            ctx,
            threads: args.threads,
            model: args.model.clone(),
        })
    }

    pub fn ready_event(&self) -> Ready {
        Ready {
            model: Some(self.model.clone()),
            multilingual: Some(self.ctx.is_multilingual()),
            ..Ready::default()
        }
    }

    /// The transcript event, or an error event for the request.
    pub fn transcribe(&self, request: &Transcribe) -> Event {
        let id = request.id;
        let error = |code: &str, message: String| Event::error(id, code, message);
        let bytes = match std::fs::read(&request.path) {
            Ok(b) => b,
            Err(e) => return error(codes::BAD_REQUEST, format!("cannot read the audio: {e}")),
        };
        let pcm = match audio::decode_for_whisper(&bytes) {
            Ok(pcm) => pcm,
            Err(e) => return error(codes::BAD_AUDIO, e.0),
        };
        let language = match (&request.language, self.ctx.is_multilingual()) {
            (Some(l), _) => l.clone(),
            (None, true) => "auto".into(),
            (None, false) => "en".into(),
        };
        let mut state = match self.ctx.create_state() {
            Ok(s) => s,
            Err(e) => {
                return error(
                    codes::INTERNAL,
                    format!("cannot create a whisper state: {e}"),
                );
            }
        };
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads);
        params.set_language(Some(&language));
        params.set_translate(request.translate);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        if let Err(e) = state.full(params, &pcm.samples) {
            return error(codes::INTERNAL, format!("transcription failed: {e}"));
        }
        let mut segments = Vec::new();
        let mut text = String::new();
        for segment in state.as_iter() {
            let piece = segment
                .to_str_lossy()
                .map(|s| s.into_owned())
                .unwrap_or_default();
            text.push_str(&piece);
            segments.push(Segment {
                // whisper counts in centiseconds.
                start: segment.start_timestamp() as f64 / 100.0,
                end: segment.end_timestamp() as f64 / 100.0,
                text: piece.trim().to_owned(),
            });
        }
        let detected = whisper_rs::get_lang_str(state.full_lang_id_from_state())
            .unwrap_or(language.as_str())
            .to_owned();
        Event::Transcript {
            id,
            text: text.trim().to_owned(),
            language: detected,
            duration: pcm.seconds(),
            segments,
        }
    }
}

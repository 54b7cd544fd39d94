//! What the swapper reads: recordings through speech-to-text (sections of about a minute, with
//! their times), and images described by the vision model next to their OCR text.

use std::path::Path;

use base64::Engine as _;
use daarion_formats::{Format, Limits};
use daarion_memory_client::{Locator, Section};
use daarion_swapper_client::{ClientError, TranscriptSegment};

use crate::App;
use crate::handle::Stop;
use crate::metrics::VISION_SKIPPED;
use crate::write::Writer;

/// How long a stretch of a recording one section holds: a citation names the minute.
const STRETCH_MS: u64 = 60_000;
const PROMPT: &str = "Describe this image in detail for someone who cannot see it: what it \
    shows, any text in it, and anything notable.";
const MAX_DESCRIPTION_TOKENS: u32 = 512;
/// The images the vision model is sent; larger ones are described by their OCR text only.
const MAX_VISION_BYTES: u64 = 20 << 20;

/// The swapper's answer: a 4xx means this input (or the model name) is refused, which another
/// try will not change; anything else is the swapper's trouble.
fn swapper_stop(what: &str, e: ClientError) -> Stop {
    match e {
        ClientError::Refused { status, .. } if status < 500 => Stop::Failed {
            reason: format!("{what}: {e}"),
            permanent: true,
        },
        e => Stop::Transient(format!("{what}: {e}")),
    }
}

/// Audio or video: 16 kHz WAV by ffmpeg, text by the configured speech-to-text model, stored
/// as about-a-minute sections; the minutes read.
pub async fn transcribe(
    app: &App,
    path: &Path,
    format: Format,
    limits: &Limits,
    scratch: &Path,
    writer: &mut Writer,
) -> Result<u32, Stop> {
    let model = &app.config.parser.stt_model;
    if model.is_empty() {
        return Err(Stop::Failed {
            reason: "speech-to-text is not set up on this appliance (parser.stt_model)".into(),
            permanent: true,
        });
    }
    let wav = scratch.join("audio.wav");
    let info = daarion_formats::media_audio(path, format, limits, &wav)
        .await
        .map_err(Stop::extract)?;
    let audio = tokio::fs::read(&wav)
        .await
        .map_err(|e| Stop::Transient(format!("{}: {e}", wav.display())))?;
    let transcript = app
        .swapper
        .transcribe(model, audio, "audio.wav", None)
        .await
        .map_err(|e| swapper_stop("speech-to-text", e))?;
    let duration_ms = info.duration.as_millis() as u64;
    let mut sections = stretches(&transcript.segments);
    if sections.is_empty() && !transcript.text.trim().is_empty() {
        sections.push(Section {
            locator: Locator::Time {
                start_ms: 0,
                end_ms: duration_ms,
            },
            headings: Vec::new(),
            text: transcript.text.trim().to_owned(),
            ocr: true,
        });
    }
    for section in sections {
        writer.push(section).await?;
    }
    Ok(duration_ms.div_ceil(STRETCH_MS).max(1) as u32)
}

/// Segments grouped by the minute they start in, each group one section spanning its first
/// segment's start to its last one's end.
fn stretches(segments: &[TranscriptSegment]) -> Vec<Section> {
    let mut out: Vec<(u64, Section)> = Vec::new();
    for seg in segments {
        let text = seg.text.trim();
        if text.is_empty() {
            continue;
        }
        let (start, end) = ((seg.start * 1000.0) as u64, (seg.end * 1000.0) as u64);
        let minute = start / STRETCH_MS;
        match out.last_mut() {
            Some((m, section)) if *m == minute => {
                section.text.push(' ');
                section.text.push_str(text);
                if let Locator::Time { end_ms, .. } = &mut section.locator {
                    *end_ms = (*end_ms).max(end);
                }
            }
            _ => out.push((
                minute,
                Section {
                    locator: Locator::Time {
                        start_ms: start,
                        end_ms: end.max(start),
                    },
                    headings: Vec::new(),
                    text: text.to_owned(),
                    ocr: true,
                },
            )),
        }
    }
    out.into_iter().map(|(_, s)| s).collect()
}

/// The vision model's description of an image, stored as a section after its OCR text. With
/// no vision model configured the image keeps its OCR text only: said once at start, counted
/// in `daarion_parser_vision_skipped_total`. Whether a description was stored.
pub async fn describe(
    app: &App,
    path: &Path,
    format: Format,
    writer: &mut Writer,
) -> Result<bool, Stop> {
    let model = &app.config.parser.vision_model;
    if model.is_empty() {
        VISION_SKIPPED.with_label_values(&["unconfigured"]).inc();
        return Ok(false);
    }
    let size = tokio::fs::metadata(path)
        .await
        .map_err(|e| Stop::Transient(e.to_string()))?
        .len();
    if size > MAX_VISION_BYTES {
        tracing::warn!(
            size,
            "image too large to send to the vision model; OCR text only"
        );
        VISION_SKIPPED.with_label_values(&["refused"]).inc();
        return Ok(false);
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| Stop::Transient(e.to_string()))?;
    let url = format!(
        "data:{};base64,{}",
        format.mime(),
        base64::engine::general_purpose::STANDARD.encode(bytes)
    );
    let description = match app
        .swapper
        .describe_image(model, &url, PROMPT, MAX_DESCRIPTION_TOKENS)
        .await
    {
        Ok(text) => text,
        Err(ClientError::Refused { status, body, .. }) if status < 500 => {
            tracing::warn!(status, why = %body.message, "the vision model refused the image; OCR text only");
            VISION_SKIPPED.with_label_values(&["refused"]).inc();
            return Ok(false);
        }
        Err(e) => return Err(swapper_stop("the vision model", e)),
    };
    if description.trim().is_empty() {
        return Ok(false);
    }
    writer
        .push(Section {
            locator: Locator::Whole,
            headings: vec!["Image description".into()],
            text: description,
            ocr: true,
        })
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: f64, end: f64, text: &str) -> TranscriptSegment {
        TranscriptSegment {
            id: 0,
            start,
            end,
            text: text.into(),
        }
    }

    #[test]
    fn segments_make_one_section_per_minute_with_its_times() {
        let sections = stretches(&[
            seg(0.0, 4.5, " Hello"),
            seg(4.5, 61.0, "there."),
            seg(61.0, 70.0, " "),
            seg(75.0, 80.25, "Next minute."),
            seg(200.0, 203.0, "Later."),
        ]);
        let got: Vec<(Locator, &str)> = sections
            .iter()
            .map(|s| (s.locator.clone(), s.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    Locator::Time {
                        start_ms: 0,
                        end_ms: 61_000
                    },
                    "Hello there."
                ),
                (
                    Locator::Time {
                        start_ms: 75_000,
                        end_ms: 80_250
                    },
                    "Next minute."
                ),
                (
                    Locator::Time {
                        start_ms: 200_000,
                        end_ms: 203_000
                    },
                    "Later."
                ),
            ]
        );
        assert!(sections.iter().all(|s| s.ocr));
    }
}

//! Audio and video made ready for speech-to-text: 16 kHz mono WAV through ffmpeg, after ffprobe
//! has checked the length.

use std::path::Path;
use std::time::Duration;

use crate::tool::run;
use crate::{ExtractError, Format, Kind, Limits};

/// What a recording is.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaInfo {
    pub duration: Duration,
}

/// Writes `path`'s audio to `out` as 16 kHz mono 16-bit WAV.
pub async fn media_audio(
    path: &Path,
    format: Format,
    limits: &Limits,
    out: &Path,
) -> Result<MediaInfo, ExtractError> {
    if !matches!(format.kind(), Kind::Audio | Kind::Video) {
        return Err(ExtractError::Unsupported(format.as_str()));
    }
    let probe = run(
        "ffprobe",
        [
            "-v".as_ref(),
            "error".as_ref(),
            "-show_entries".as_ref(),
            "format=duration".as_ref(),
            "-of".as_ref(),
            "default=nw=1:nk=1".as_ref(),
            path.as_os_str(),
        ],
        limits,
    )
    .await
    .map_err(|e| match e {
        ExtractError::ToolFailed { reason, .. } => ExtractError::corrupt(format.as_str(), reason),
        e => e,
    })?;
    let seconds: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .map_err(|_| ExtractError::corrupt(format.as_str(), "no duration"))?;
    if seconds > limits.max_media_seconds as f64 {
        return Err(ExtractError::TooLong {
            seconds: seconds as u64,
            max: limits.max_media_seconds,
        });
    }
    // Decoding takes time proportional to length: a minute per hour of recording on top.
    let mut limits = limits.clone();
    limits.tool_timeout += Duration::from_secs_f64(seconds / 60.0);
    run(
        "ffmpeg",
        [
            "-nostdin".as_ref(),
            "-v".as_ref(),
            "error".as_ref(),
            "-y".as_ref(),
            "-i".as_ref(),
            path.as_os_str(),
            "-vn".as_ref(),
            "-ac".as_ref(),
            "1".as_ref(),
            "-ar".as_ref(),
            "16000".as_ref(),
            "-c:a".as_ref(),
            "pcm_s16le".as_ref(),
            "-f".as_ref(),
            "wav".as_ref(),
            out.as_os_str(),
        ],
        &limits,
    )
    .await
    .map_err(|e| match e {
        ExtractError::ToolFailed { reason, .. } => ExtractError::corrupt(format.as_str(), reason),
        e => e,
    })?;
    Ok(MediaInfo {
        duration: Duration::from_secs_f64(seconds),
    })
}

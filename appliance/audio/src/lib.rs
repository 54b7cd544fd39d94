//! Audio in and out, shared by the speech workers and the services that handle voice: WAV, MP3 and OGG/Opus (Telegram's voice format) decoded to 16 kHz mono for
//! whisper; band-limited resampling; OGG/Opus encoding for voice replies.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Whisper's input rate.
pub const WHISPER_RATE: u32 = 16_000;
/// Opus always decodes and encodes at 48 kHz here.
const OPUS_RATE: u32 = 48_000;
/// Longer recordings are refused: on a CPU a transcription of this already holds the model for
/// most of a minute, and a voice message is rarely longer.
pub const MAX_SECONDS: f32 = 5.0 * 60.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioError(pub String);

impl std::fmt::Display for AudioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(message: impl Into<String>) -> AudioError {
    AudioError(message.into())
}

/// Mono samples at one rate.
#[derive(Debug, Clone)]
pub struct Pcm {
    pub samples: Vec<f32>,
    pub rate: u32,
}

impl Pcm {
    pub fn seconds(&self) -> f32 {
        self.samples.len() as f32 / self.rate as f32
    }
}

/// Decodes any supported file, judged by its content, not its name.
pub fn decode(bytes: &[u8]) -> Result<Pcm, AudioError> {
    if bytes.len() < 12 {
        return Err(bad("the file is too short to be audio"));
    }
    let pcm = if bytes.starts_with(b"OggS") {
        decode_ogg_opus(bytes)?
    } else {
        decode_symphonia(bytes)?
    };
    if pcm.samples.is_empty() {
        return Err(bad("the file holds no audio"));
    }
    if pcm.seconds() > MAX_SECONDS {
        return Err(bad(format!(
            "the recording is {:.0} minutes long; the limit is {:.0}",
            pcm.seconds() / 60.0,
            MAX_SECONDS / 60.0
        )));
    }
    Ok(pcm)
}

/// Decodes, then resamples to whisper's 16 kHz.
pub fn decode_for_whisper(bytes: &[u8]) -> Result<Pcm, AudioError> {
    let pcm = decode(bytes)?;
    Ok(Pcm {
        samples: resample(&pcm.samples, pcm.rate, WHISPER_RATE),
        rate: WHISPER_RATE,
    })
}

fn downmix(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    if channels <= 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() / channels as f32),
    );
}

fn decode_symphonia(bytes: &[u8]) -> Result<Pcm, AudioError> {
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes.to_vec())), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &Hint::new(),
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|_| bad("not a supported audio file (WAV, MP3 or OGG/Opus)"))?;
    let mut format = probed.format;
    let track = format
        .default_track()
        .ok_or_else(|| bad("the file has no audio track"))?;
    let track_id = track.id;
    let rate = track
        .codec_params
        .sample_rate
        .ok_or_else(|| bad("the audio has no sample rate"))?;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| bad(format!("unsupported audio codec: {e}")))?;
    let mut samples = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(symphonia::core::errors::Error::IoError(e))
                if e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                break;
            }
            Err(e) => return Err(bad(format!("unreadable audio: {e}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            // A damaged frame is skipped, as players do.
            Err(symphonia::core::errors::Error::DecodeError(_)) => continue,
            Err(e) => return Err(bad(format!("unreadable audio: {e}"))),
        };
        let channels = decoded.spec().channels.count();
        let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        buffer.copy_interleaved_ref(decoded);
        downmix(buffer.samples(), channels, &mut samples);
        if samples.len() as f32 / rate as f32 > MAX_SECONDS + 1.0 {
            break;
        }
    }
    Ok(Pcm { samples, rate })
}

fn decode_ogg_opus(bytes: &[u8]) -> Result<Pcm, AudioError> {
    let mut reader = ogg::PacketReader::new(Cursor::new(bytes));
    let head = reader
        .read_packet()
        .map_err(|e| bad(format!("damaged Ogg file: {e}")))?
        .ok_or_else(|| bad("empty Ogg file"))?;
    if !head.data.starts_with(b"OpusHead") || head.data.len() < 19 {
        return Err(bad(
            "an Ogg file that is not Opus (Vorbis is not supported)",
        ));
    }
    let channels = head.data[9];
    let pre_skip = u16::from_le_bytes([head.data[10], head.data[11]]) as usize;
    let layout = match channels {
        1 => opus::Channels::Mono,
        2 => opus::Channels::Stereo,
        n => return Err(bad(format!("Opus with {n} channels is not supported"))),
    };
    let mut decoder = opus::Decoder::new(OPUS_RATE, layout)
        .map_err(|e| bad(format!("cannot start the Opus decoder: {e}")))?;
    // 120 ms is the longest Opus frame.
    let mut frame = vec![0f32; 5760 * channels as usize];
    let mut samples = Vec::new();
    let mut packets = 0usize;
    while let Some(packet) = reader
        .read_packet()
        .map_err(|e| bad(format!("damaged Ogg file: {e}")))?
    {
        packets += 1;
        if packets == 1 && packet.data.starts_with(b"OpusTags") {
            continue;
        }
        let n = decoder
            .decode_float(&packet.data, &mut frame, false)
            .map_err(|e| bad(format!("damaged Opus audio: {e}")))?;
        downmix(
            &frame[..n * channels as usize],
            channels as usize,
            &mut samples,
        );
        if samples.len() as f32 / OPUS_RATE as f32 > MAX_SECONDS + 1.0 {
            break;
        }
    }
    samples.drain(..pre_skip.min(samples.len()));
    Ok(Pcm {
        samples,
        rate: OPUS_RATE,
    })
}

/// Band-limited resampling: each output sample is the input under a Blackman-windowed sinc
/// whose cut-off sits below the lower of the two Nyquist frequencies (no aliasing when
/// going down, no imaging when going up).
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() {
        return input.to_vec();
    }
    let ratio = f64::from(to) / f64::from(from);
    // Cut-off relative to the input rate's Nyquist frequency.
    let cutoff = 0.92 * ratio.min(1.0);
    let half_width = (16.0 / cutoff).ceil() as i64;
    let out_len = (input.len() as f64 * ratio).floor() as usize;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let t = n as f64 / ratio;
        let centre = t.floor() as i64;
        let mut acc = 0.0f64;
        for k in (centre - half_width + 1)..=(centre + half_width) {
            if k < 0 || k as usize >= input.len() {
                continue;
            }
            let x = t - k as f64;
            let window_pos = x / half_width as f64;
            if window_pos.abs() >= 1.0 {
                continue;
            }
            let arg = std::f64::consts::PI * cutoff * x;
            let sinc = if arg.abs() < 1e-9 {
                1.0
            } else {
                arg.sin() / arg
            };
            let w = 0.42
                + 0.5 * (std::f64::consts::PI * window_pos).cos()
                + 0.08 * (2.0 * std::f64::consts::PI * window_pos).cos();
            acc += f64::from(input[k as usize]) * cutoff * sinc * w;
        }
        out.push(acc as f32);
    }
    out
}

/// Encodes mono audio as OGG/Opus at 48 kHz in 20 ms frames: what Telegram plays as a voice
/// message.
pub fn encode_ogg_opus(pcm: &Pcm) -> Result<Vec<u8>, AudioError> {
    let samples = resample(&pcm.samples, pcm.rate, OPUS_RATE);
    let mut encoder = opus::Encoder::new(OPUS_RATE, opus::Channels::Mono, opus::Application::Voip)
        .map_err(|e| bad(format!("cannot start the Opus encoder: {e}")))?;
    let pre_skip = encoder.get_lookahead().map_err(|e| bad(e.to_string()))? as u16;
    let serial = 0x0da4_1015;
    let mut out = Vec::new();
    {
        let mut writer = ogg::PacketWriter::new(&mut out);
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(1); // channels
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&OPUS_RATE.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // mapping family: mono/stereo
        let io = |e: std::io::Error| bad(e.to_string());
        writer
            .write_packet(head, serial, ogg::PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        let vendor = b"daarion";
        let mut tags = Vec::new();
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(vendor);
        tags.extend_from_slice(&0u32.to_le_bytes());
        writer
            .write_packet(tags, serial, ogg::PacketWriteEndInfo::EndPage, 0)
            .map_err(io)?;
        const FRAME: usize = 960;
        let frames = samples.len().div_ceil(FRAME).max(1);
        let mut packet = vec![0u8; 4000];
        for i in 0..frames {
            let mut chunk = [0f32; FRAME];
            let start = i * FRAME;
            let end = (start + FRAME).min(samples.len());
            chunk[..end - start].copy_from_slice(&samples[start..end]);
            let n = encoder
                .encode_float(&chunk, &mut packet)
                .map_err(|e| bad(format!("Opus encoding failed: {e}")))?;
            let granule = u64::from(pre_skip) + ((i + 1) * FRAME) as u64;
            let last = i + 1 == frames;
            let info = if last {
                ogg::PacketWriteEndInfo::EndStream
            } else if (i + 1) % 50 == 0 {
                ogg::PacketWriteEndInfo::EndPage
            } else {
                ogg::PacketWriteEndInfo::NormalPacket
            };
            writer
                .write_packet(packet[..n].to_vec(), serial, info, granule)
                .map_err(io)?;
        }
    }
    Ok(out)
}

/// A 16-bit mono WAV file (for tests and for clients that want WAV).
pub fn encode_wav(pcm: &Pcm) -> Vec<u8> {
    let data_len = (pcm.samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&pcm.rate.to_le_bytes());
    out.extend_from_slice(&(pcm.rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in &pcm.samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, rate: u32, seconds: f32) -> Pcm {
        let n = (rate as f32 * seconds) as usize;
        Pcm {
            samples: (0..n)
                .map(|i| 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin())
                .collect(),
            rate,
        }
    }

    fn rms(s: &[f32]) -> f32 {
        (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt()
    }

    #[test]
    fn resampling_keeps_what_fits_and_removes_what_would_alias() {
        let kept = resample(&tone(440.0, 48_000, 0.5).samples, 48_000, 16_000);
        assert_eq!(kept.len(), 8_000);
        let middle = &kept[1000..7000];
        assert!(
            (rms(middle) - 0.3535).abs() < 0.02,
            "440 Hz passes: {}",
            rms(middle)
        );
        // 12 kHz cannot exist at 16 kHz: it must be filtered, not folded to 4 kHz.
        let gone = resample(&tone(12_000.0, 48_000, 0.5).samples, 48_000, 16_000);
        assert!(
            rms(&gone[1000..7000]) < 0.01,
            "12 kHz removed: {}",
            rms(&gone[1000..7000])
        );
        let up = resample(&tone(440.0, 16_000, 0.5).samples, 16_000, 48_000);
        assert_eq!(up.len(), 24_000);
    }

    #[test]
    fn wav_and_ogg_opus_round_trip() {
        let original = tone(440.0, 16_000, 1.0);
        let wav = decode(&encode_wav(&original)).unwrap();
        assert_eq!(wav.rate, 16_000);
        assert_eq!(wav.samples.len(), 16_000);
        let ogg = encode_ogg_opus(&original).unwrap();
        assert!(ogg.starts_with(b"OggS"));
        let back = decode_for_whisper(&ogg).unwrap();
        assert!((back.seconds() - 1.0).abs() < 0.05, "{} s", back.seconds());
        assert!((rms(&back.samples[2000..14000]) - 0.3535).abs() < 0.05);
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = decode(b"this is certainly not an audio file at all").unwrap_err();
        assert!(err.0.contains("not a supported audio file"), "{err}");
        assert!(decode(b"OggS").is_err());
        let mut vorbis = encode_ogg_opus(&tone(440.0, 16_000, 0.1)).unwrap();
        // Damage the header so it no longer says Opus.
        let at = vorbis.windows(8).position(|w| w == b"OpusHead").unwrap();
        vorbis[at..at + 8].copy_from_slice(b"XXXXHead");
        assert!(decode(&vorbis).is_err());
    }
}

//! edge-tts: Microsoft Edge's online "Read aloud" neural voices, over the WebSocket protocol the
//! `edge-tts` Python package speaks. One connection per request: a `speech.config` message,
//! then the SSML; the service answers with text frames (`turn.start`, `audio.metadata`,
//! `turn.end`) and binary frames carrying MP3, each prefixed by a 2-byte big-endian header
//! length and its headers.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::{Connector, Message};

/// The public client token every Edge browser sends.
pub const TRUSTED_CLIENT_TOKEN: &str = "6A5AA1D4EAFF4E9FB37E23D68491D6F4";
/// The browser version the service is told; it checks the `Sec-MS-GEC-Version` against it.
const CHROMIUM_FULL_VERSION: &str = "130.0.2849.68";
const OUTPUT_FORMAT: &str = "audio-24khz-48kbitrate-mono-mp3";
/// Text per request: the service refuses long SSML, so longer input is spoken in parts.
pub const MAX_TEXT_BYTES: usize = 3000;
const TIMEOUT: Duration = Duration::from_secs(30);
/// Seconds from 1601-01-01 (Windows file time) to 1970-01-01.
const WINDOWS_EPOCH: u64 = 11_644_473_600;

/// The `Sec-MS-GEC` token: SHA-256 of the Windows file time rounded down to five minutes
/// (in 100 ns ticks) followed by the client token, upper-case hex.
pub fn sec_ms_gec(unix_secs: u64) -> String {
    let secs = unix_secs + WINDOWS_EPOCH;
    let ticks = (secs - secs % 300) as u128 * 10_000_000;
    Sha256::digest(format!("{ticks}{TRUSTED_CLIENT_TOKEN}").as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// `en-US-AriaNeural` → `Microsoft Server Speech Text to Speech Voice (en-US, AriaNeural)`;
/// a region with a part (`zh-CN-liaoning-XiaobeiNeural`) keeps it; a long name passes as is.
pub fn full_voice_name(short: &str) -> String {
    let mut parts = short.splitn(3, '-');
    let (Some(lang), Some(region), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return short.to_owned();
    };
    let shaped = lang.len() >= 2
        && lang.bytes().all(|b| b.is_ascii_lowercase())
        && region.len() >= 2
        && region.bytes().all(|b| b.is_ascii_uppercase())
        && name.ends_with("Neural");
    if !shaped {
        return short.to_owned();
    }
    let (region, name) = match name.split_once('-') {
        Some((sub, rest)) => (format!("{region}-{sub}"), rest),
        None => (region.to_owned(), name),
    };
    format!("Microsoft Server Speech Text to Speech Voice ({lang}-{region}, {name})")
}

pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters are not XML; the service drops the request on them.
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Parts of at most `max` bytes, cut after a sentence end or else at a space, never inside a
/// character.
pub fn split_text(text: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let head = &rest[..cut];
        let at = head
            .rfind(['.', '!', '?', '\n'])
            .map(|i| i + 1)
            .or_else(|| head.rfind(' '))
            .filter(|&i| i > 0)
            .unwrap_or(cut);
        parts.push(rest[..at].trim());
        rest = rest[at..].trim_start();
    }
    if !rest.is_empty() {
        parts.push(rest);
    }
    parts
}

/// The timestamp format the browser sends (JavaScript's `Date.toString()` in UTC).
fn js_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {day:02} {year} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

pub fn ssml(voice: &str, speed: f32, text: &str) -> String {
    let rate = ((speed - 1.0) * 100.0).round() as i32;
    format!(
        "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='en-US'>\
         <voice name='{voice}'><prosody pitch='+0Hz' rate='{rate:+}%' volume='+0%'>{}</prosody>\
         </voice></speak>",
        escape_xml(text)
    )
}

/// A header's value in a frame's `Name:value\r\n` block.
pub fn header<'a>(block: &'a str, name: &str) -> Option<&'a str> {
    block.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The MP3 bytes in a binary frame, or `None` for a frame that carries no audio.
pub fn audio_of(frame: &[u8]) -> Result<Option<&[u8]>, String> {
    if frame.len() < 2 {
        return Err("a binary frame without its header length".into());
    }
    let len = usize::from(u16::from_be_bytes([frame[0], frame[1]]));
    let Some(headers) = frame.get(2..2 + len) else {
        return Err("a binary frame shorter than its headers".into());
    };
    let headers = String::from_utf8_lossy(headers);
    if header(&headers, "Path") != Some("audio") {
        return Ok(None);
    }
    Ok(Some(&frame[2 + len..]))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub struct Edge {
    endpoint: String,
    voice: String,
}

impl Edge {
    pub fn new(endpoint: &str, voice: &str) -> Edge {
        Edge {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            voice: full_voice_name(voice),
        }
    }

    /// The whole text as one MP3 stream (parts spoken one after another are concatenated:
    /// MP3 frames stand alone).
    pub fn synthesise(&self, text: &str, speed: f32) -> Result<Vec<u8>, String> {
        let mut mp3 = Vec::new();
        for part in split_text(text, MAX_TEXT_BYTES) {
            mp3.extend(self.speak_part(part, speed)?);
        }
        Ok(mp3)
    }

    fn connect(
        &self,
    ) -> Result<tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>, String>
    {
        let connection = uuid::Uuid::new_v4().simple().to_string();
        let url = format!(
            "{}?TrustedClientToken={TRUSTED_CLIENT_TOKEN}&Sec-MS-GEC={}&Sec-MS-GEC-Version=1-{CHROMIUM_FULL_VERSION}&ConnectionId={connection}",
            self.endpoint,
            sec_ms_gec(now())
        );
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("edge-tts endpoint {}: {e}", self.endpoint))?;
        let major = CHROMIUM_FULL_VERSION.split('.').next().unwrap_or("130");
        let headers = request.headers_mut();
        for (name, value) in [
            ("Pragma", "no-cache".to_owned()),
            ("Cache-Control", "no-cache".to_owned()),
            (
                "Origin",
                "chrome-extension://jdiccldimpdaibmpdkjnbmckianbfold".to_owned(),
            ),
            (
                "User-Agent",
                format!(
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                     Chrome/{major}.0.0.0 Safari/537.36 Edg/{major}.0.0.0"
                ),
            ),
            ("Accept-Language", "en-US,en;q=0.9".to_owned()),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_owned();
        let tls = uri.scheme_str() == Some("wss");
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let address = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("edge-tts: cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("edge-tts: {host} has no address"))?;
        let stream = TcpStream::connect_timeout(&address, TIMEOUT)
            .map_err(|e| format!("edge-tts: cannot reach {host}:{port}: {e}"))?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
            .map_err(|e| e.to_string())?;
        let connector = if tls {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            // ring, named explicitly: with two providers compiled in, rustls picks none.
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
            Connector::Rustls(Arc::new(config))
        } else {
            Connector::Plain
        };
        let (socket, _) = tungstenite::client_tls_with_config(request, stream, None, Some(connector))
            .map_err(|e| match e {
                tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response)) => format!(
                    "edge-tts refused the connection (HTTP {}): the voice service may have changed its token or the clock is off",
                    response.status()
                ),
                e => format!("edge-tts: cannot open the connection: {e}"),
            })?;
        Ok(socket)
    }

    fn speak_part(&self, text: &str, speed: f32) -> Result<Vec<u8>, String> {
        let mut socket = self.connect()?;
        let date = js_date(now());
        let config = format!(
            "X-Timestamp:{date}\r\nContent-Type:application/json; charset=utf-8\r\nPath:speech.config\r\n\r\n\
             {{\"context\":{{\"synthesis\":{{\"audio\":{{\"metadataoptions\":{{\"sentenceBoundaryEnabled\":\"false\",\
             \"wordBoundaryEnabled\":\"false\"}},\"outputFormat\":\"{OUTPUT_FORMAT}\"}}}}}}}}\r\n"
        );
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        let body = format!(
            "X-RequestId:{request_id}\r\nContent-Type:application/ssml+xml\r\nX-Timestamp:{date}Z\r\nPath:ssml\r\n\r\n{}",
            ssml(&self.voice, speed, text)
        );
        let send = |socket: &mut tungstenite::WebSocket<_>, text: String| {
            socket
                .send(Message::Text(text.into()))
                .map_err(|e| format!("edge-tts: cannot send: {e}"))
        };
        send(&mut socket, config)?;
        send(&mut socket, body)?;
        let mut mp3 = Vec::new();
        loop {
            match socket.read() {
                Ok(Message::Text(frame)) => {
                    if header(frame.as_str(), "Path") == Some("turn.end") {
                        break;
                    }
                }
                Ok(Message::Binary(frame)) => {
                    if let Some(audio) = audio_of(&frame)? {
                        mp3.extend_from_slice(audio);
                    }
                }
                Ok(Message::Close(_)) => {
                    return Err(
                        "edge-tts closed the connection before the speech ended (is the voice name right?)"
                            .into(),
                    );
                }
                Ok(_) => {}
                Err(e) => return Err(format!("edge-tts: {e}")),
            }
        }
        let _ = socket.close(None);
        if mp3.is_empty() {
            return Err(format!(
                "edge-tts sent no audio for voice {} (is the voice name right?)",
                self.voice
            ));
        }
        Ok(mp3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_follows_the_five_minute_window() {
        // 2026-11-27 20:10:00 UTC and a second before the next window: one token.
        let a = sec_ms_gec(1_795_810_200);
        assert_eq!(a, sec_ms_gec(1_795_810_200 + 299));
        assert_ne!(a, sec_ms_gec(1_795_810_200 + 300));
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        );
        // The hashed string: file-time ticks, then the token.
        let ticks = (1_795_810_200u128 + 11_644_473_600) * 10_000_000;
        let expected: String = Sha256::digest(format!("{ticks}{TRUSTED_CLIENT_TOKEN}"))
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(a, expected);
    }

    #[test]
    fn voices_get_their_long_names() {
        assert_eq!(
            full_voice_name("en-US-AriaNeural"),
            "Microsoft Server Speech Text to Speech Voice (en-US, AriaNeural)"
        );
        assert_eq!(
            full_voice_name("zh-CN-liaoning-XiaobeiNeural"),
            "Microsoft Server Speech Text to Speech Voice (zh-CN-liaoning, XiaobeiNeural)"
        );
        assert_eq!(full_voice_name("en-us"), "en-us");
    }

    #[test]
    fn ssml_escapes_and_sets_the_rate() {
        let s = ssml("V", 1.5, "Tom & <Jerry> \"say\" 'hi'\u{7}");
        assert!(s.contains("rate='+50%'"), "{s}");
        assert!(
            s.contains("Tom &amp; &lt;Jerry&gt; &quot;say&quot; &apos;hi&apos; "),
            "{s}"
        );
        assert!(ssml("V", 0.5, "x").contains("rate='-50%'"));
    }

    #[test]
    fn long_text_is_cut_at_sentences_within_the_limit() {
        let sentence = "Привіт, це речення. ";
        let text = sentence.repeat(400);
        let parts = split_text(&text, 1000);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.len() <= 1000 && p.ends_with('.')));
        assert_eq!(parts.concat().replace(' ', ""), text.replace(' ', ""));
        let word = "x".repeat(2500);
        let parts = split_text(&word, 1000);
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
    }

    #[test]
    fn binary_frames_carry_audio_after_their_headers() {
        let headers = b"X-RequestId:1\r\nContent-Type:audio/mpeg\r\nPath:audio\r\n";
        let mut frame = (headers.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(headers);
        frame.extend_from_slice(b"MP3");
        assert_eq!(audio_of(&frame).unwrap(), Some(&b"MP3"[..]));
        let other = b"Path:audio.metadata\r\n";
        let mut frame = (other.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(other);
        assert_eq!(audio_of(&frame).unwrap(), None);
        assert!(audio_of(&[0]).is_err());
        assert!(audio_of(&[0, 200, b'P']).is_err());
    }

    #[test]
    fn timestamps_read_like_the_browsers() {
        assert_eq!(
            js_date(1_795_810_200),
            "Fri Nov 27 2026 20:10:00 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(
            js_date(0),
            "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
    }
}

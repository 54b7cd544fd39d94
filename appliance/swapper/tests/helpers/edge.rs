//! A local edge-tts service: the WebSocket protocol of Microsoft Edge's "Read aloud" voices
//! (token check, `speech.config`, SSML, `turn.start`, binary MP3 frames with their header
//! prefix, `turn.end`). It speaks the text it was sent, for real: espeak-ng reads it and
//! `lame` encodes it as the service's `audio-24khz-48kbitrate-mono-mp3`.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::{Message, http};

const TRUSTED_CLIENT_TOKEN: &str = "6A5AA1D4EAFF4E9FB37E23D68491D6F4";
pub const PATH: &str = "/consumer/speech/synthesize/readaloud/edge/v1";

/// What one connection asked for.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub origin: String,
    pub voice: String,
    pub rate: String,
    pub text: String,
    pub output_format: String,
}

pub struct FakeEdge {
    pub endpoint: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

/// The token for the five-minute window `unix` falls in.
fn token(unix: u64) -> String {
    let secs = unix + 11_644_473_600;
    let ticks = (secs - secs % 300) as u128 * 10_000_000;
    Sha256::digest(format!("{ticks}{TRUSTED_CLIENT_TOKEN}").as_bytes())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The text as MP3 speech, the way the service would say it.
fn speak(text: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("daarion-edge-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (wav, mp3) = (dir.join("s.wav"), dir.join("s.mp3"));
    let mut espeak = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&wav)
        .stdin(Stdio::piped())
        .spawn()
        .expect("espeak-ng (tests/setup.sh installs it)");
    std::io::Write::write_all(&mut espeak.stdin.take().unwrap(), text.as_bytes()).unwrap();
    assert!(espeak.wait().unwrap().success());
    let lame = Command::new("lame")
        .args(["--quiet", "-m", "m", "--resample", "24", "-b", "48"])
        .arg(&wav)
        .arg(&mp3)
        .status()
        .expect("lame (tests/setup.sh installs it)");
    assert!(lame.success());
    let bytes = std::fs::read(&mp3).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

fn frame(request_id: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let headers = format!(
        "X-RequestId:{request_id}\r\nContent-Type:audio/mpeg\r\nX-StreamId:1\r\nPath:{path}\r\n"
    );
    let mut out = (headers.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(headers.as_bytes());
    out.extend_from_slice(body);
    out
}

fn serve(stream: std::net::TcpStream, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut this = Seen::default();
    // The shape tungstenite's handshake callback requires.
    #[allow(clippy::result_large_err)]
    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let query = request.uri().query().unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let gec = query_value(query, "Sec-MS-GEC").unwrap_or_default();
        // The service accepts the current window (and the one before, for clock skew).
        let valid = request.uri().path() == PATH
            && query_value(query, "TrustedClientToken") == Some(TRUSTED_CLIENT_TOKEN)
            && (gec == token(now) || gec == token(now - 300))
            && query_value(query, "Sec-MS-GEC-Version").is_some_and(|v| v.starts_with("1-"))
            && query_value(query, "ConnectionId").is_some_and(|v| v.len() == 32);
        if !valid {
            let mut refused = ErrorResponse::new(Some("bad token".into()));
            *refused.status_mut() = http::StatusCode::FORBIDDEN;
            return Err(refused);
        }
        this.origin = request
            .headers()
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(response)
    };
    let Ok(mut ws) = tungstenite::accept_hdr(stream, check) else {
        return;
    };
    let text_message = |ws: &mut tungstenite::WebSocket<_>| match ws.read() {
        Ok(Message::Text(t)) => Some(t.to_string()),
        _ => None,
    };
    let Some(config) = text_message(&mut ws) else {
        return;
    };
    if !config.contains("Path:speech.config") {
        return;
    }
    this.output_format = between(&config, "\"outputFormat\":\"", "\"")
        .unwrap_or_default()
        .to_owned();
    let Some(ssml) = text_message(&mut ws) else {
        return;
    };
    let request_id = between(&ssml, "X-RequestId:", "\r\n")
        .unwrap_or_default()
        .to_owned();
    this.voice = between(&ssml, "<voice name='", "'>")
        .unwrap_or_default()
        .to_owned();
    this.rate = between(&ssml, "rate='", "'").unwrap_or_default().to_owned();
    let spoken = between(&ssml, "volume='+0%'>", "</prosody>").unwrap_or_default();
    this.text = unescape(spoken);
    seen.lock().unwrap().push(this.clone());
    // A voice the service does not have: it hangs up without a word.
    if this.voice.contains("Nobody") || !ssml.contains("Path:ssml") {
        let _ = ws.close(None);
        let _ = ws.flush();
        return;
    }
    let mp3 = speak(&this.text);
    let turn = |path: &str| {
        format!(
            "X-RequestId:{request_id}\r\nContent-Type:application/json; charset=utf-8\r\nPath:{path}\r\n\r\n{{}}"
        )
    };
    let _ = ws.send(Message::Text(turn("turn.start").into()));
    for chunk in mp3.chunks(4096) {
        let _ = ws.send(Message::Binary(frame(&request_id, "audio", chunk).into()));
    }
    let _ = ws.send(Message::Binary(
        frame(&request_id, "audio.metadata", b"{}").into(),
    ));
    let _ = ws.send(Message::Text(turn("turn.end").into()));
    // Until the client closes.
    while ws.read().is_ok() {}
}

pub fn start() -> FakeEdge {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("ws://{}{PATH}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let shared = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let seen = shared.clone();
            std::thread::spawn(move || serve(stream, seen));
        }
    });
    FakeEdge { endpoint, seen }
}

//! Recordings and images made here with known content: a sentence spoken by espeak-ng (as an
//! OGG/Opus voice note, and as the sound of a short ffmpeg video) and a line of text drawn by
//! Pillow. Each maker skips (returns `None`) without its tool, except under CI=true.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::swapper::ci;

/// What the recordings say; whisper tiny.en on espeak's voice gets most of it, not all.
pub const SENTENCE: &str = "Please remember to buy fresh milk and bread tomorrow morning.";
/// The words looked for in the transcript; a loose match asks for most of them.
pub const WORDS: [&str; 5] = ["remember", "milk", "bread", "tomorrow", "morning"];
/// What the image says.
pub const IMAGE_TEXT: &str = "Invoice 4711 was paid in full on Friday";

/// A scratch directory, removed when dropped.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new() -> Dir {
        let d = std::env::temp_dir().join(format!(
            "daarion-parser-media-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether every tool is on PATH; a missing one skips the test, or fails it under CI=true.
pub fn tools(names: &[&str]) -> bool {
    for t in names {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(!ci(), "{t} is missing; tests/setup.sh installs it");
            eprintln!("skipping: {t} is not installed (tests/setup.sh installs it)");
            return false;
        }
    }
    true
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// [`SENTENCE`] as an OGG/Opus voice note and as an MP4 (a colour source and that speech as
/// its sound): `(ogg, mp4)`.
pub fn recordings(dir: &Dir) -> Option<(Vec<u8>, Vec<u8>)> {
    if !tools(&["espeak-ng", "ffmpeg", "ffprobe"]) {
        return None;
    }
    let wav = dir.path("speech.wav");
    sh(Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "140", "-w"])
        .arg(&wav)
        .arg(SENTENCE));
    let ogg = dir.path("voice.ogg");
    sh(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&wav)
        .args(["-c:a", "libopus", "-b:a", "32k"])
        .arg(&ogg));
    let mp4 = dir.path("clip.mp4");
    sh(Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=navy:s=160x120:r=10",
        ])
        .arg("-i")
        .arg(&wav)
        .args(["-shortest", "-pix_fmt", "yuv420p"])
        .arg(&mp4));
    Some((std::fs::read(ogg).unwrap(), std::fs::read(mp4).unwrap()))
}

/// [`IMAGE_TEXT`] drawn black on white as a PNG, by the fixture venv's Pillow
/// (DAARION_TEST_PYTHON, which tests/setup.sh makes).
pub fn text_png(dir: &Dir) -> Option<Vec<u8>> {
    let venv =
        std::env::var("DAARION_TEST_PYTHON").unwrap_or_else(|_| "/var/cache/daarion/pyenv".into());
    let py = Path::new(&venv).join("bin/python3");
    let has_pillow = Command::new(&py)
        .args(["-c", "import PIL"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pillow {
        assert!(
            !ci(),
            "no fixture venv with Pillow at {venv}; tests/setup.sh makes it"
        );
        eprintln!("skipping: no fixture venv with Pillow at {venv}");
        return None;
    }
    let script = r#"
import sys
from PIL import Image, ImageDraw, ImageFont
font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 40)
img = Image.new("RGB", (1200, 160), "white")
ImageDraw.Draw(img).text((40, 50), sys.argv[2], font=font, fill="black")
img.save(sys.argv[1])
"#;
    let png = dir.path("note.png");
    sh(Command::new(&py)
        .args(["-c", script])
        .arg(&png)
        .arg(IMAGE_TEXT));
    Some(std::fs::read(png).unwrap())
}

//! Fixtures made by the tests themselves, with ground truth by construction, and the
//! character error rate they are scored with.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use daarion_formats::{ExtractError, Format, Limits, Section, Summary, extract};

pub const EN: &str = "The quick brown fox jumps over the lazy dog near the river bank.";
pub const UK: &str = "Щастя не за горами, а в наших руках: їжак ґречно співає пісню.";
pub const RU: &str = "Съешь же ещё этих мягких французских булок да выпей чаю.";

/// A scratch directory for one test, removed at the end.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!(
            "daarion-formats-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
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

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether every tool is installed; without one a test skips, except under CI=true.
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

/// The fixture venv's python (reportlab, Pillow), from DAARION_TEST_PYTHON.
pub fn python() -> Option<PathBuf> {
    let venv =
        std::env::var("DAARION_TEST_PYTHON").unwrap_or_else(|_| "/var/cache/daarion/pyenv".into());
    let py = Path::new(&venv).join("bin/python3");
    let ok = Command::new(&py)
        .args(["-c", "import reportlab, PIL"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    assert!(
        !ci(),
        "no fixture venv with reportlab and Pillow at {venv}; tests/setup.sh makes it"
    );
    eprintln!("skipping: no fixture venv at {venv} (tests/setup.sh makes it; DAARION_TEST_PYTHON)");
    None
}

pub fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// A PDF with one page per entry of `pages` (lines each), text in an embedded DejaVu font.
pub fn native_pdf(py: &Path, out: &Path, pages: &[&[&str]]) {
    let script = r#"
import sys, json
from reportlab.pdfgen import canvas
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
pdfmetrics.registerFont(TTFont("DejaVu", sys.argv[3]))
c = canvas.Canvas(sys.argv[1])
for page in json.loads(sys.argv[2]):
    c.setFont("DejaVu", 12)
    y = 780
    for line in page:
        c.drawString(60, y, line)
        y -= 18
    c.showPage()
c.save()
"#;
    let json = serde_json_lite(pages);
    sh(Command::new(py)
        .args(["-c", script])
        .arg(out)
        .arg(json)
        .arg(FONT));
}

/// Text rendered to a PNG (as a scan would be), and optionally wrapped as an image-only PDF.
pub fn rendered(py: &Path, out: &Path, lines: &[&str], as_pdf: bool) {
    let script = r#"
import sys, json
from PIL import Image, ImageDraw, ImageFont
lines = json.loads(sys.argv[2])[0]
font = ImageFont.truetype(sys.argv[3], 44)
img = Image.new("L", (2480, 200 + 80 * len(lines)), 255)
d = ImageDraw.Draw(img)
for i, line in enumerate(lines):
    d.text((120, 100 + 80 * i), line, font=font, fill=0)
if sys.argv[4] == "pdf":
    img.save(sys.argv[1], "PDF", resolution=300)
else:
    img.save(sys.argv[1])
"#;
    let json = serde_json_lite(&[lines]);
    sh(Command::new(py)
        .args(["-c", script])
        .arg(out)
        .arg(json)
        .arg(FONT)
        .arg(if as_pdf { "pdf" } else { "png" }));
}

fn serde_json_lite(pages: &[&[&str]]) -> String {
    let esc = |s: &str| {
        let mut o = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => o.push_str("\\\""),
                '\\' => o.push_str("\\\\"),
                c => o.push(c),
            }
        }
        o.push('"');
        o
    };
    let pages: Vec<String> = pages
        .iter()
        .map(|p| {
            format!(
                "[{}]",
                p.iter().map(|l| esc(l)).collect::<Vec<_>>().join(",")
            )
        })
        .collect();
    format!("[{}]", pages.join(","))
}

/// A zip of the given entries (deflated), as DOCX/XLSX/PPTX/ODT are.
pub fn zip(out: &Path, entries: &[(&str, &[u8])]) {
    let mut w = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap();
}

/// Character error rate: edit distance over the truth's length, whitespace runs made one space.
pub fn cer(truth: &str, got: &str) -> f64 {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .collect::<Vec<char>>()
    };
    let (a, b) = (norm(truth), norm(got));
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()] as f64 / a.len().max(1) as f64
}

/// Extracts `path`, collecting its sections and progress.
pub async fn read(
    path: &Path,
    format: Format,
    limits: &Limits,
) -> (
    Result<Summary, ExtractError>,
    Vec<Section>,
    Vec<(u32, Option<u32>)>,
) {
    let mut sections = Vec::new();
    let mut progress = Vec::new();
    let r = extract(
        path,
        format,
        limits,
        |p| progress.push((p.done, p.total)),
        |s| sections.push(s),
    )
    .await;
    (r, sections, progress)
}

/// The text of all sections.
pub fn all_text(sections: &[Section]) -> String {
    sections
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

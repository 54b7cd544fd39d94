//! Text-layer extraction from native PDFs, side by side in one run on the same files: our
//! [`extract`] against poppler's `pdftotext` alone (one process per whole file) and two Python
//! peers from PyPI (pypdfium2, pdfminer.six) — pages/s, MiB/s and the ratio to `pdftotext`
//! (the goal is ≤ 1.5×), each the best of [`PASSES`] — then seconds per scanned page (OCR in ukr+rus+eng). The peak RSS of
//! this process (VmHWM) is read after each row's first pass.
//!
//! The corpus is made here, once per run, with the tests' own fixture code (reportlab in the
//! venv `DAARION_TEST_PYTHON` names; `tests/setup.sh` makes it with both peers installed):
//! 20 files of 10 pages, half Latin and half Cyrillic, in an embedded DejaVu font.
//!
//! `cargo bench -p daarion-formats --bench extract` (or `--profile dev`: the work is in the
//! tools either way). Without a tool or the venv it prints why and measures nothing.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Dir, EN, RU, UK, cer, native_pdf, python, rendered, tools};
use daarion_formats::{Format, Limits, extract};

const FILES: usize = 20;
const PAGES: usize = 10;
const LINES: usize = 40;
/// Each row is the best of this many passes: the machine is shared, and the least disturbed
/// pass is the one that says what the reader itself costs.
const PASSES: usize = 3;

/// A Python peer reading every file given, timed inside the interpreter (its start and the
/// import are left out, which favours it): prints seconds, characters read and its peak RSS (KiB).
const PEER: &str = r#"
import sys, time, resource
which, files = sys.argv[1], sys.argv[2:]
if which == "pypdfium2":
    import pypdfium2 as pdfium
    def read(path):
        doc = pdfium.PdfDocument(path)
        out = []
        for i in range(len(doc)):
            page = doc[i]
            text = page.get_textpage()
            out.append(text.get_text_range())
            text.close()
            page.close()
        doc.close()
        return "\n".join(out)
else:
    from pdfminer.high_level import extract_text as read
started = time.perf_counter()
chars = sum(len(read(f)) for f in files)
print(time.perf_counter() - started, chars, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"#;

/// What one way of reading the corpus measured.
struct Row {
    name: &'static str,
    took: Duration,
    chars: usize,
    /// The peer's own peak RSS where it runs as one process of its own.
    own_rss_kib: Option<u64>,
}

fn best(a: Row, b: Row) -> Row {
    if b.took < a.took { b } else { a }
}

/// This process's peak resident set (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Page `p` of file `f`: numbered lines of English, or of Ukrainian and Russian alternately.
fn page_lines(f: usize, p: usize) -> Vec<String> {
    (0..LINES)
        .map(|l| {
            let sentence = match (f % 2, l % 2) {
                (0, _) => EN,
                (_, 0) => UK,
                _ => RU,
            };
            format!("{}.{}.{} {sentence}", f + 1, p + 1, l + 1)
        })
        .collect()
}

fn corpus(py: &Path, dir: &Dir) -> Vec<PathBuf> {
    (0..FILES)
        .map(|f| {
            let pages: Vec<Vec<String>> = (0..PAGES).map(|p| page_lines(f, p)).collect();
            let lines: Vec<Vec<&str>> = pages
                .iter()
                .map(|p| p.iter().map(String::as_str).collect())
                .collect();
            let refs: Vec<&[&str]> = lines.iter().map(Vec::as_slice).collect();
            let out = dir.path(&format!("native-{f:02}.pdf"));
            native_pdf(py, &out, &refs);
            out
        })
        .collect()
}

async fn ours(files: &[PathBuf]) -> Row {
    let limits = Limits::default();
    let started = Instant::now();
    let mut chars = 0;
    for f in files {
        let summary = extract(
            f,
            Format::Pdf,
            &limits,
            |_| {},
            |s| chars += s.text.chars().count(),
        )
        .await
        .unwrap();
        assert_eq!(summary.ocr_pages, 0, "{f:?}: a native page went to OCR");
    }
    Row {
        name: "daarion-formats `extract` (text layer)",
        took: started.elapsed(),
        chars,
        own_rss_kib: None,
    }
}

fn pdftotext(files: &[PathBuf]) -> Row {
    poppler(files, Split::WholeFile, false)
}

/// One way of reading the corpus.
enum Reader {
    Ours,
    Poppler(Split, bool),
    /// A Python peer: its name for the script, and for the table.
    Peer(&'static str, &'static str),
}

/// How the poppler rows call `pdftotext`.
#[derive(Clone, Copy, PartialEq)]
enum Split {
    /// One process per file.
    WholeFile,
    /// `pdfinfo`, then one process per page (`-f k -l k`), as `extract` calls them.
    PerPage,
}

/// `pdftotext` straight, or wrapped as `extract` contains its tools (`unshare --net` and
/// `prlimit`): the rows that say where `extract`'s time beyond `pdftotext` alone goes.
fn poppler(files: &[PathBuf], split: Split, contained: bool) -> Row {
    let command = |args: &[&std::ffi::OsStr]| {
        let mut argv: Vec<&std::ffi::OsStr> = Vec::new();
        if contained {
            argv.extend(
                ["unshare", "--net", "--", "prlimit", "--as=2147483648", "--"]
                    .map(std::ffi::OsStr::new),
            );
        }
        argv.extend_from_slice(args);
        let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
        assert!(out.status.success(), "{argv:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let started = Instant::now();
    let mut chars = 0;
    for f in files {
        let utf8 = ["pdftotext", "-enc", "UTF-8"].map(std::ffi::OsStr::new);
        if split == Split::WholeFile {
            chars += command(&[&utf8[..], &[f.as_os_str(), "-".as_ref()]].concat())
                .chars()
                .count();
            continue;
        }
        command(&["pdfinfo".as_ref(), f.as_os_str()]);
        for k in 1..=PAGES {
            let k = std::ffi::OsString::from(k.to_string());
            let pages = ["-f".as_ref(), k.as_os_str(), "-l".as_ref(), k.as_os_str()];
            chars += command(&[&utf8[..], &pages, &[f.as_os_str(), "-".as_ref()]].concat())
                .chars()
                .count();
        }
    }
    Row {
        name: match (split, contained) {
            (Split::WholeFile, false) => "pdftotext alone (one process per file)",
            (Split::WholeFile, true) => {
                "  why: pdftotext per file, contained (unshare --net, prlimit)"
            }
            (Split::PerPage, false) => "  why: pdfinfo + pdftotext per page, uncontained",
            (Split::PerPage, true) => "  why: pdfinfo + pdftotext per page, contained",
        },
        took: started.elapsed(),
        chars,
        own_rss_kib: None,
    }
}

/// A peer, or None (with the reason printed) where the venv lacks it.
fn peer(py: &Path, which: &'static str, name: &'static str, files: &[PathBuf]) -> Option<Row> {
    let out = Command::new(py)
        .args(["-c", PEER, which])
        .args(files)
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "{which} did not run (tests/setup.sh installs it into the venv): {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut it = stdout.split_whitespace();
    let secs: f64 = it.next()?.parse().ok()?;
    let chars = it.next()?.parse().ok()?;
    let rss = it.next()?.parse().ok()?;
    Some(Row {
        name,
        took: Duration::from_secs_f64(secs),
        chars,
        own_rss_kib: Some(rss),
    })
}

fn print_row(row: &Row, pages: usize, bytes: u64, reference: Duration, rss_mib: f64) {
    let secs = row.took.as_secs_f64();
    println!(
        "| {} | {:.2} | {:.0} | {:.2} | {:.2}× | {} | {:.0}{} |",
        row.name,
        secs,
        pages as f64 / secs,
        bytes as f64 / (1 << 20) as f64 / secs,
        secs / reference.as_secs_f64(),
        row.chars,
        rss_mib,
        row.own_rss_kib
            .map(|k| format!(" (its own process: {:.0})", k as f64 / 1024.0))
            .unwrap_or_default(),
    );
}

async fn scanned(py: &Path, dir: &Dir) {
    println!();
    println!("| scanned page (300 dpi, OCR ukr+rus+eng) | seconds | CER | peak RSS MiB (bench) |");
    println!("| --- | ---: | ---: | ---: |");
    let limits = Limits::default();
    let mut total = Duration::ZERO;
    for (lang, line) in [("uk", UK), ("ru", RU), ("en", EN)] {
        let lines = [line, line];
        let pdf = dir.path(&format!("scan-{lang}.pdf"));
        rendered(py, &pdf, &lines, true);
        let mut text = String::new();
        let started = Instant::now();
        let summary = extract(&pdf, Format::Pdf, &limits, |_| {}, |s| text += &s.text)
            .await
            .unwrap();
        let took = started.elapsed();
        total += took;
        assert_eq!(summary.ocr_pages, 1);
        println!(
            "| {lang} | {:.2} | {:.2} % | {:.0} |",
            took.as_secs_f64(),
            cer(&lines.join("\n"), &text) * 100.0,
            peak_rss_mib()
        );
    }
    println!("| mean | {:.2} | | |", total.as_secs_f64() / 3.0);
}

#[tokio::main]
async fn main() {
    let Some(py) = python() else { return };
    if !tools(&["pdfinfo", "pdftotext", "pdftoppm", "tesseract"]) {
        return;
    }
    let dir = Dir::new("bench");
    let files = corpus(&py, &dir);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let pages = FILES * PAGES;

    // One untimed pass, so every row reads from the page cache with the tools' code loaded.
    pdftotext(&files);
    // Passes go round every reader in turn, so a burst of load on the shared machine falls on
    // one pass of each rather than on every pass of one; each row keeps its best pass.
    let readers = [
        Reader::Poppler(Split::WholeFile, false),
        Reader::Ours,
        Reader::Poppler(Split::WholeFile, true),
        Reader::Poppler(Split::PerPage, false),
        Reader::Poppler(Split::PerPage, true),
        Reader::Peer("pypdfium2", "pypdfium2 (Python, in-process time)"),
        Reader::Peer("pdfminer", "pdfminer.six (Python, in-process time)"),
    ];
    let mut rows: Vec<Option<Row>> = readers.iter().map(|_| None).collect();
    let mut rss = vec![0.0; readers.len()];
    for pass in 0..PASSES {
        for (i, reader) in readers.iter().enumerate() {
            let row = match *reader {
                Reader::Ours => Some(ours(&files).await),
                Reader::Poppler(split, contained) => Some(poppler(&files, split, contained)),
                Reader::Peer(which, name) => peer(&py, which, name, &files),
            };
            if pass == 0 {
                rss[i] = peak_rss_mib();
            }
            rows[i] = match (rows[i].take(), row) {
                (Some(a), Some(b)) => Some(best(a, b)),
                (a, b) => a.or(b),
            };
        }
    }
    let reference = rows[0].as_ref().expect("pdftotext ran").took;
    println!(
        "Native-text PDFs: {FILES} files × {PAGES} pages ({LINES} lines each, half Latin, half \
         Cyrillic), {:.2} MiB, {} CPU(s), best of {PASSES} passes",
        bytes as f64 / (1 << 20) as f64,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!(
        "| reader | seconds | pages/s | MiB/s | × pdftotext | characters | peak RSS MiB (bench) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (row, rss) in rows.iter().zip(rss) {
        if let Some(row) = row {
            print_row(row, pages, bytes, reference, rss);
        }
    }
    scanned(&py, &dir).await;
}

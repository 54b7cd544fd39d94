//! Files users send, made text: what a file is ([`detect`]), decided from its bytes alone, and
//! the text it holds with where each piece came from ([`extract`], [`media_audio`]).
//!
//! Both the ingest service (which refuses what nothing here reads) and the parser (which reads
//! it) link this crate, so "accepted at upload" and "readable by the parser" cannot drift apart.
//!
//! What each format gives ([`Section`]s, streamed through a callback as they are read):
//! - **PDF** (poppler-utils): one section per page ([`Locator::Page`]); the text layer first
//!   (`pdftotext`), and pages without one are rendered at 300 dpi (`pdftoppm`) and read by
//!   tesseract in [`Limits::ocr_languages`] (`ocr: true`). Encrypted PDFs that need a password
//!   and PDFs over [`Limits::max_pages`] are refused before any page is read.
//! - **DOCX, ODT**: Markdown: headings (`Heading N` styles, outline levels) as `#`, lists as
//!   `-`, tables as `|` rows; one section per heading, carrying the heading path.
//! - **PPTX, ODP**: one section per slide ([`Locator::Slide`]), the slide title as its heading.
//! - **XLSX, ODS** (calamine) and **CSV** (delimiter sniffed): each sheet a Markdown table
//!   ([`Locator::Sheet`]), capped at [`MAX_SHEET_ROWS`] rows and [`MAX_SHEET_COLS`] columns.
//! - **HTML**: the main content only (`<main>`/`<article>` when present; scripts, styles,
//!   navigation, headers, footers, asides and forms dropped); **EPUB**: its XHTML in spine order.
//! - **Text, Markdown**: any common encoding (BOM, UTF-8, UTF-16, CP1251, KOI8-R… detected);
//!   Markdown headings give the heading path. **RTF**: its text, by a small reader here.
//! - **Images**: tesseract OCR, after the pixel limit is checked from the header alone.
//! - **Audio, video**: not text here; [`media_audio`] makes 16 kHz mono WAV for speech-to-text.
//!
//! Zipped formats are checked against [`Limits::max_unpacked_bytes`] and
//! [`Limits::max_zip_entries`] from the central directory before reading, and every read is
//! capped too. External tools run contained (see `tool.rs`).

pub mod detect;
mod error;
mod media;
mod office;
mod pdf;
mod rtf;
mod sheet;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod text;
mod tool;
mod web;
mod zipsafe;

use std::path::Path;
use std::time::Duration;

pub use detect::{DetectError, Format, Kind, detect_bytes, detect_file};
pub use error::ExtractError;
pub use media::{MediaInfo, media_audio};

/// Most rows of one sheet rendered; the rest is dropped with a warning.
pub const MAX_SHEET_ROWS: usize = 20_000;
/// Most columns of one sheet rendered.
pub const MAX_SHEET_COLS: usize = 100;

/// Limits on untrusted input. The defaults suit a home appliance reading what people send.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Pages of a PDF (default 500); more is refused before any page is read.
    pub max_pages: u32,
    /// Pixels of an image, or of a page rendered for OCR (default 100 million).
    pub max_pixels: u64,
    /// What a zipped document may unpack to (default 512 MiB).
    pub max_unpacked_bytes: u64,
    /// Files inside a zipped document (default 10 000).
    pub max_zip_entries: usize,
    /// Length of a recording (default 4 hours).
    pub max_media_seconds: u32,
    /// Wall time of one tool run, e.g. one page's OCR (default 120 s).
    pub tool_timeout: Duration,
    /// Address space of one tool run (default 2 GiB).
    pub tool_memory_bytes: u64,
    /// Tesseract languages (default ukr, rus, eng).
    pub ocr_languages: Vec<String>,
    /// OCR every PDF page even where it has a text layer (one that is garbage: a broken font
    /// encoding, a bad earlier OCR). Off by default.
    pub force_ocr: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pages: 500,
            max_pixels: 100_000_000,
            max_unpacked_bytes: 512 << 20,
            max_zip_entries: 10_000,
            max_media_seconds: 4 * 3600,
            tool_timeout: Duration::from_secs(120),
            tool_memory_bytes: 2 << 30,
            ocr_languages: ["ukr", "rus", "eng"].map(String::from).to_vec(),
            force_ocr: false,
        }
    }
}

/// Where a section came from in its file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Locator {
    Page(u32),
    Sheet(String),
    Slide(u32),
    Time { start_ms: u64, end_ms: u64 },
    Whole,
}

/// A piece of a file's text with its provenance.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Section {
    pub locator: Locator,
    /// The heading path above this text, outermost first.
    pub headings: Vec<String>,
    /// Markdown-ish text: headings, lists and tables kept.
    pub text: String,
    /// Whether the text was read by OCR.
    pub ocr: bool,
}

/// How far extraction is: `done` of `total` units (pages, slides, sheets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: u32,
    pub total: Option<u32>,
}

/// What an extraction read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub pages: u32,
    pub ocr_pages: u32,
    pub sections: u32,
    /// Things a person may want to know (truncated sheets, containment not applied…).
    pub warnings: Vec<String>,
}

/// Where sections go; counts them and remembers whether any held text.
pub(crate) struct Sink<'a> {
    on_progress: &'a mut (dyn FnMut(Progress) + Send),
    on_section: &'a mut (dyn FnMut(Section) + Send),
    pub summary: Summary,
    any_text: bool,
}

impl Sink<'_> {
    pub fn section(&mut self, section: Section) {
        if section.text.trim().is_empty() {
            return;
        }
        self.any_text = true;
        self.summary.sections += 1;
        (self.on_section)(section);
    }

    pub fn progress(&mut self, done: u32, total: Option<u32>) {
        (self.on_progress)(Progress { done, total });
    }

    pub fn warn(&mut self, w: impl Into<String>) {
        self.summary.warnings.push(w.into());
    }
}

/// Reads the text of `path` (already detected as `format`), streaming sections as they are read.
/// CPU-bound formats run on the blocking pool; tools run as contained subprocesses.
pub async fn extract(
    path: &Path,
    format: Format,
    limits: &Limits,
    mut on_progress: impl FnMut(Progress) + Send,
    mut on_section: impl FnMut(Section) + Send,
) -> Result<Summary, ExtractError> {
    let mut sink = Sink {
        on_progress: &mut on_progress,
        on_section: &mut on_section,
        summary: Summary::default(),
        any_text: false,
    };
    match format {
        Format::Pdf => pdf::extract(path, limits, &mut sink).await?,
        f if f.kind() == Kind::Image => pdf::image(path, limits, &mut sink).await?,
        f if matches!(f.kind(), Kind::Audio | Kind::Video) => {
            // Speech goes through `media_audio` and speech-to-text, which lives elsewhere.
            return Err(ExtractError::Unsupported(f.as_str()));
        }
        f => {
            let path = path.to_owned();
            let limits = limits.clone();
            let (sections, warnings) =
                tokio::task::spawn_blocking(move || blocking(&path, f, &limits))
                    .await
                    .map_err(|e| {
                        ExtractError::corrupt(f.as_str(), format!("reader crashed: {e}"))
                    })??;
            let total = sections.len() as u32;
            for (i, s) in sections.into_iter().enumerate() {
                sink.section(s);
                sink.progress(i as u32 + 1, Some(total));
            }
            sink.summary.warnings.extend(warnings);
        }
    }
    if !sink.any_text {
        return Err(ExtractError::NoText);
    }
    Ok(sink.summary)
}

type Read = (Vec<Section>, Vec<String>);

fn blocking(path: &Path, format: Format, limits: &Limits) -> Result<Read, ExtractError> {
    match format {
        Format::Docx => office::docx(path, limits),
        Format::Pptx => office::pptx(path, limits),
        Format::Odt | Format::Odp => office::odf(path, format, limits),
        Format::Xlsx | Format::Ods => sheet::workbook(path, format, limits),
        Format::Csv => sheet::csv(&std::fs::read(path)?),
        Format::Html => {
            let bytes = std::fs::read(path)?;
            let page = text::decode_declared(&bytes, web::meta_charset(&bytes));
            Ok((
                text::split_markdown(&web::html(&page), Locator::Whole),
                vec![],
            ))
        }
        Format::Epub => web::epub(path, limits),
        Format::Markdown => Ok((
            text::split_markdown(&text::decode(&std::fs::read(path)?), Locator::Whole),
            vec![],
        )),
        Format::Text => Ok((text::plain(&text::decode(&std::fs::read(path)?)), vec![])),
        Format::Rtf => Ok((text::plain(&rtf::text(&std::fs::read(path)?)), vec![])),
        other => Err(ExtractError::Unsupported(other.as_str())),
    }
}

//! PDFs through poppler (text layer first, OCR for pages without one) and images through
//! tesseract.

use std::path::{Path, PathBuf};

use crate::tool::run;
use crate::{ExtractError, Limits, Locator, Section, Sink};

/// A page with fewer letters or digits than this has no usable text layer (a scan with a stray
/// page number, or an invisible watermark) and is read by OCR instead.
const MIN_TEXT_CHARS: usize = 16;

/// Pages read by one `pdftotext` run. Each run parses the whole file again: a run per page made
/// extraction 9.6× `pdftotext` alone on 10-page files (`benches/extract.rs`); a run per 25
/// pages, started beside `pdfinfo`, brought it to 1.66× (containment alone costs 1.35×), while
/// progress still moves as a long document is read.
const PAGES_PER_RUN: u32 = 25;

/// The text layers of pages `first..=last`, one per page: `pdftotext` ends every page with a
/// form feed.
async fn text_layers(
    path: &Path,
    first: u32,
    last: u32,
    limits: &Limits,
) -> Result<std::collections::VecDeque<String>, ExtractError> {
    let (f, l) = (first.to_string(), last.to_string());
    let out = run(
        "pdftotext",
        [
            std::ffi::OsStr::new("-enc"),
            "UTF-8".as_ref(),
            "-f".as_ref(),
            f.as_ref(),
            "-l".as_ref(),
            l.as_ref(),
            path.as_os_str(),
            "-".as_ref(),
        ],
        limits,
    )
    .await
    .map_err(pdf_error)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let count = (last - first + 1) as usize;
    let mut pages: std::collections::VecDeque<String> =
        text.split('\u{c}').take(count).map(str::to_owned).collect();
    pages.resize(count, String::new());
    Ok(pages)
}

/// A scratch directory removed when dropped.
pub(crate) struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> std::io::Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "daarion-formats-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Info {
    pages: u32,
    /// Page size in points (of the first page), for the OCR pixel limit.
    size_pts: Option<(f64, f64)>,
}

async fn pdfinfo(path: &Path, limits: &Limits) -> Result<Info, ExtractError> {
    let out = match run("pdfinfo", [path.as_os_str()], limits).await {
        Ok(o) => o,
        Err(ExtractError::ToolFailed { reason, .. }) => {
            return Err(if reason.contains("password") {
                ExtractError::Encrypted
            } else {
                ExtractError::corrupt("PDF", reason)
            });
        }
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
    };
    let pages = field("Pages")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| ExtractError::corrupt("PDF", "no page count"))?;
    let size_pts = field("Page size").and_then(|s| {
        let mut it = s.split_whitespace();
        let w = it.next()?.parse().ok()?;
        it.next();
        let h = it.next()?.parse().ok()?;
        Some((w, h))
    });
    Ok(Info { pages, size_pts })
}

pub(crate) async fn extract(
    path: &Path,
    limits: &Limits,
    sink: &mut Sink<'_>,
) -> Result<(), ExtractError> {
    for w in crate::tool::containment_warnings() {
        sink.warn(w);
    }
    // The page count and the first pages' text at once: each is a contained process that
    // parses the whole file, and waiting for one before starting the other was half the cost
    // of a short document. Nothing is emitted before the page limit is checked.
    let (info, first) = tokio::try_join!(
        pdfinfo(path, limits),
        text_layers(path, 1, PAGES_PER_RUN, limits)
    )?;
    if info.pages > limits.max_pages {
        return Err(ExtractError::TooManyPages {
            pages: info.pages,
            max: limits.max_pages,
        });
    }
    if info.pages == 0 {
        return Err(ExtractError::NoText);
    }
    // 300 dpi unless the page is so large that would pass the pixel limit.
    let dpi = match info.size_pts {
        Some((w, h)) => {
            let px_at_300 = (w / 72.0 * 300.0) * (h / 72.0 * 300.0);
            if px_at_300 > limits.max_pixels as f64 {
                (300.0 * (limits.max_pixels as f64 / px_at_300).sqrt())
                    .floor()
                    .max(36.0) as u32
            } else {
                300
            }
        }
        None => 300,
    };
    let scratch = Scratch::new()?;
    sink.summary.pages = info.pages;
    sink.progress(0, Some(info.pages));
    let mut layers = first;
    layers.truncate(info.pages as usize);
    for page in 1..=info.pages {
        if layers.is_empty() {
            layers = text_layers(
                path,
                page,
                (page + PAGES_PER_RUN - 1).min(info.pages),
                limits,
            )
            .await?;
        }
        let k = page.to_string();
        let mut text = layers.pop_front().unwrap_or_default();
        let mut ocr = false;
        if limits.force_ocr || text.chars().filter(|c| c.is_alphanumeric()).count() < MIN_TEXT_CHARS
        {
            let prefix = scratch.0.join(format!("p{page}"));
            let dpi = dpi.to_string();
            run(
                "pdftoppm",
                [
                    std::ffi::OsStr::new("-r"),
                    dpi.as_ref(),
                    "-f".as_ref(),
                    k.as_ref(),
                    "-l".as_ref(),
                    k.as_ref(),
                    "-png".as_ref(),
                    "-singlefile".as_ref(),
                    path.as_os_str(),
                    prefix.as_os_str(),
                ],
                limits,
            )
            .await
            .map_err(pdf_error)?;
            let png = prefix.with_extension("png");
            let read = tesseract(&png, limits).await;
            let _ = std::fs::remove_file(&png);
            text = read?;
            ocr = true;
            sink.summary.ocr_pages += 1;
        }
        sink.section(Section {
            locator: Locator::Page(page),
            headings: vec![],
            text: tidy(&text),
            ocr,
        });
        sink.progress(page, Some(info.pages));
    }
    Ok(())
}

fn pdf_error(e: ExtractError) -> ExtractError {
    match e {
        ExtractError::ToolFailed { reason, .. } if reason.contains("password") => {
            ExtractError::Encrypted
        }
        ExtractError::ToolFailed { tool, reason } => {
            ExtractError::corrupt("PDF", format!("{tool}: {reason}"))
        }
        e => e,
    }
}

/// Trailing spaces dropped and runs of blank lines made one.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out
}

async fn tesseract(image: &Path, limits: &Limits) -> Result<String, ExtractError> {
    let langs = limits.ocr_languages.join("+");
    let out = run(
        "tesseract",
        [
            image.as_os_str(),
            "stdout".as_ref(),
            "-l".as_ref(),
            langs.as_ref(),
        ],
        limits,
    )
    .await?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An image: its size from the header (the pixel limit before anything decodes it), then OCR.
pub(crate) async fn image(
    path: &Path,
    limits: &Limits,
    sink: &mut Sink<'_>,
) -> Result<(), ExtractError> {
    for w in crate::tool::containment_warnings() {
        sink.warn(w);
    }
    let size = imagesize::size(path).map_err(|e| ExtractError::corrupt("image", e))?;
    let (width, height) = (size.width as u64, size.height as u64);
    if width.saturating_mul(height) > limits.max_pixels {
        return Err(ExtractError::TooManyPixels {
            width,
            height,
            max: limits.max_pixels,
        });
    }
    sink.progress(0, Some(1));
    let text = tesseract(path, limits).await?;
    sink.summary.pages = 1;
    sink.summary.ocr_pages = 1;
    sink.section(Section {
        locator: Locator::Whole,
        headings: vec![],
        text: tidy(&text),
        ocr: true,
    });
    sink.progress(1, Some(1));
    Ok(())
}

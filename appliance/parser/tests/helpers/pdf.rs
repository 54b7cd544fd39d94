//! Text PDFs (`daarion_formats::testing`), one line per page, so the ground truth is known by
//! construction: page `k` says `page_text(k)`.

/// What page `k` (1-based) says.
pub fn page_text(k: usize) -> String {
    format!("Page {k} of the quarterly report: revenue grew in region {k}")
}

/// A valid PDF of `pages` pages, page `k` saying `page_text(k)`.
pub fn text_pdf(pages: usize) -> Vec<u8> {
    let texts: Vec<String> = (1..=pages).map(page_text).collect();
    daarion_formats::testing::text_pdf(&texts.iter().map(String::as_str).collect::<Vec<_>>())
}

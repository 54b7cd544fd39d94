//! Sections to memory, in batches (every [`BATCH`] sections, [`BATCH_BYTES`] of text or
//! [`BATCH_AGE`], whichever comes first), each with its ordinal. Ordinals follow the reading
//! order, which is the same every time a file is read, so a batch sent again after a crash or a
//! redelivery lands on the chunks already there and adds nothing.

use std::time::{Duration, Instant};

use daarion_memory_client::{Locator, MemoryClient, NewSections, ReportProgress, Section};
use uuid::Uuid;

use crate::handle::Stop;

pub const BATCH: usize = 8;
pub const BATCH_AGE: Duration = Duration::from_secs(1);
/// Well under memory's request limit.
const BATCH_BYTES: usize = 2 << 20;
/// Memory makes at most `MAX_CHUNKS_PER_SECTION` chunks of a section (about 1000 characters
/// each); a longer section (a whole novel in one text file) is sent in parts of this many bytes.
const MAX_SECTION_BYTES: usize = 256 * 1024;
/// Memory's bounds on a heading path.
const MAX_HEADINGS: usize = 16;
const MAX_HEADING_CHARS: usize = 300;

pub struct Writer {
    memory: MemoryClient,
    id: Uuid,
    attempt: i32,
    /// The ordinal of the next section pushed.
    next: u32,
    pending: Vec<Section>,
    pending_bytes: usize,
    oldest: Option<Instant>,
    last_progress: Option<Instant>,
}

impl Writer {
    pub fn new(memory: MemoryClient, id: Uuid, attempt: i32) -> Writer {
        Writer {
            memory,
            id,
            attempt,
            next: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            oldest: None,
            last_progress: None,
        }
    }

    /// Sections pushed so far.
    pub fn count(&self) -> u32 {
        self.next
    }

    pub async fn push(&mut self, section: Section) -> Result<(), Stop> {
        for part in split(section) {
            self.pending_bytes += part.text.len();
            self.pending.push(part);
            self.next += 1;
            self.oldest.get_or_insert_with(Instant::now);
            if self.pending.len() >= BATCH || self.pending_bytes >= BATCH_BYTES {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Sends what waits when it has waited [`BATCH_AGE`].
    pub async fn flush_if_due(&mut self) -> Result<(), Stop> {
        if self.oldest.is_some_and(|t| t.elapsed() >= BATCH_AGE) {
            self.flush().await?;
        }
        Ok(())
    }

    pub async fn flush(&mut self) -> Result<(), Stop> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let sections = std::mem::take(&mut self.pending);
        let body = NewSections {
            attempt: self.attempt,
            first_ordinal: self.next - sections.len() as u32,
            sections,
        };
        self.memory
            .attachment_sections(self.id, &body)
            .await
            .map_err(Stop::memory)?;
        self.pending_bytes = 0;
        self.oldest = None;
        Ok(())
    }

    /// Tells memory "page `done` of `total`", at most once a second unless `force`.
    pub async fn progress(
        &mut self,
        done: u32,
        total: Option<u32>,
        force: bool,
    ) -> Result<(), Stop> {
        if !force && self.last_progress.is_some_and(|t| t.elapsed() < BATCH_AGE) {
            return Ok(());
        }
        self.last_progress = Some(Instant::now());
        let body = ReportProgress {
            attempt: self.attempt,
            done,
            total,
        };
        self.memory
            .attachment_progress(self.id, &body)
            .await
            .map_err(Stop::memory)?;
        Ok(())
    }
}

/// Trims the heading path to memory's bounds and cuts an over-long text into parts (at a line
/// break where there is one), each keeping the locator and headings.
fn split(mut section: Section) -> Vec<Section> {
    section.headings.truncate(MAX_HEADINGS);
    for h in &mut section.headings {
        if h.chars().count() > MAX_HEADING_CHARS {
            *h = h.chars().take(MAX_HEADING_CHARS).collect();
        }
    }
    if section.text.len() <= MAX_SECTION_BYTES {
        return vec![section];
    }
    let mut parts = Vec::new();
    let mut rest = section.text.as_str();
    while !rest.is_empty() {
        let mut end = rest.len().min(MAX_SECTION_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end < rest.len()
            && let Some(nl) = rest[..end].rfind('\n')
            && nl > end / 2
        {
            end = nl + 1;
        }
        parts.push(Section {
            locator: section.locator.clone(),
            headings: section.headings.clone(),
            text: rest[..end].to_owned(),
            ocr: section.ocr,
        });
        rest = &rest[end..];
    }
    parts
}

/// The contract's locator for the formats crate's; sheets get their 1-based position from
/// `sheets`, the names seen so far in order.
pub fn locator(from: daarion_formats::Locator, sheets: &mut Vec<String>) -> Locator {
    match from {
        daarion_formats::Locator::Page(page) => Locator::Page { page },
        daarion_formats::Locator::Slide(slide) => Locator::Slide { slide },
        daarion_formats::Locator::Sheet(name) => {
            let index = match sheets.iter().position(|s| *s == name) {
                Some(i) => i + 1,
                None => {
                    sheets.push(name.clone());
                    sheets.len()
                }
            };
            Locator::Sheet {
                name,
                index: index as u32,
            }
        }
        daarion_formats::Locator::Time { start_ms, end_ms } => Locator::Time { start_ms, end_ms },
        daarion_formats::Locator::Whole => Locator::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(text: String, headings: Vec<String>) -> Section {
        Section {
            locator: Locator::Page { page: 2 },
            headings,
            text,
            ocr: false,
        }
    }

    #[test]
    fn long_sections_are_cut_in_reading_order_and_keep_their_place() {
        let line = "слово ".repeat(20) + "\n";
        let text = line.repeat(MAX_SECTION_BYTES * 5 / 2 / line.len());
        let parts = split(section(text.clone(), vec!["A".into()]));
        assert_eq!(parts.len(), 3);
        assert_eq!(
            parts.iter().map(|p| p.text.as_str()).collect::<String>(),
            text
        );
        for p in &parts {
            assert!(p.text.len() <= MAX_SECTION_BYTES);
            assert!(p.text.ends_with('\n'));
            assert_eq!(p.locator, Locator::Page { page: 2 });
            assert_eq!(p.headings, vec!["A".to_owned()]);
        }
    }

    #[test]
    fn heading_paths_are_kept_within_memorys_bounds() {
        let parts = split(section("x".into(), vec!["h".repeat(400); 20]));
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].headings.len(), MAX_HEADINGS);
        assert!(
            parts[0]
                .headings
                .iter()
                .all(|h| h.chars().count() == MAX_HEADING_CHARS)
        );
    }

    #[test]
    fn locators_map_to_the_contract_and_sheets_count_from_one() {
        let mut sheets = Vec::new();
        for (from, to) in [
            (daarion_formats::Locator::Page(3), Locator::Page { page: 3 }),
            (
                daarion_formats::Locator::Slide(4),
                Locator::Slide { slide: 4 },
            ),
            (
                daarion_formats::Locator::Sheet("Budget".into()),
                Locator::Sheet {
                    name: "Budget".into(),
                    index: 1,
                },
            ),
            (
                daarion_formats::Locator::Sheet("Plan".into()),
                Locator::Sheet {
                    name: "Plan".into(),
                    index: 2,
                },
            ),
            (
                daarion_formats::Locator::Sheet("Budget".into()),
                Locator::Sheet {
                    name: "Budget".into(),
                    index: 1,
                },
            ),
            (
                daarion_formats::Locator::Time {
                    start_ms: 0,
                    end_ms: 60_000,
                },
                Locator::Time {
                    start_ms: 0,
                    end_ms: 60_000,
                },
            ),
            (daarion_formats::Locator::Whole, Locator::Whole),
        ] {
            assert_eq!(locator(from, &mut sheets), to);
        }
    }
}

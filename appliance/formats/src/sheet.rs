//! Spreadsheets: XLSX/ODS through calamine, CSV with its delimiter sniffed; each sheet a
//! Markdown table.

use std::path::Path;

use calamine::{Ods, Reader, Sheets, Xlsx, open_workbook};

use crate::office::markdown_table;
use crate::{ExtractError, Format, Limits, Locator, MAX_SHEET_COLS, MAX_SHEET_ROWS, Read, Section};

pub(crate) fn workbook(path: &Path, format: Format, limits: &Limits) -> Result<Read, ExtractError> {
    let name = if format == Format::Xlsx {
        "XLSX"
    } else {
        "ODS"
    };
    crate::zipsafe::check(path, limits, name)?;
    // By the format the bytes were detected as: calamine's own guess goes by the file's
    // extension, and a blob in the store has none.
    let mut book = match format {
        Format::Xlsx => open_workbook::<Xlsx<_>, _>(path)
            .map(Sheets::Xlsx)
            .map_err(|e| ExtractError::corrupt(name, e))?,
        _ => open_workbook::<Ods<_>, _>(path)
            .map(Sheets::Ods)
            .map_err(|e| ExtractError::corrupt(name, e))?,
    };
    let mut sections = Vec::new();
    let mut warnings = Vec::new();
    for sheet in book.sheet_names() {
        let range = book
            .worksheet_range(&sheet)
            .map_err(|e| ExtractError::corrupt(name, e))?;
        let rows: Vec<Vec<String>> = range
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        let text = table(rows, &sheet, &mut warnings);
        sections.push(Section {
            locator: Locator::Sheet(sheet.clone()),
            headings: vec![sheet],
            text,
            ocr: false,
        });
    }
    Ok((sections, warnings))
}

/// Rows as a table, empty rows and trailing empty columns dropped, capped with a warning.
fn table(mut rows: Vec<Vec<String>>, sheet: &str, warnings: &mut Vec<String>) -> String {
    rows.retain(|r| r.iter().any(|c| !c.trim().is_empty()));
    let width = rows
        .iter()
        .map(|r| {
            r.iter()
                .rposition(|c| !c.trim().is_empty())
                .map_or(0, |p| p + 1)
        })
        .max()
        .unwrap_or(0);
    if rows.len() > MAX_SHEET_ROWS {
        warnings.push(format!(
            "{sheet}: only the first {MAX_SHEET_ROWS} of {} rows were read",
            rows.len()
        ));
        rows.truncate(MAX_SHEET_ROWS);
    }
    if width > MAX_SHEET_COLS {
        warnings.push(format!(
            "{sheet}: only the first {MAX_SHEET_COLS} of {width} columns were read"
        ));
    }
    for r in &mut rows {
        r.truncate(width.min(MAX_SHEET_COLS));
    }
    markdown_table(&rows)
}

/// The delimiter that splits the first lines most evenly into more than one field.
fn sniff(text: &str) -> u8 {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(20)
        .collect();
    let mut best = (b',', 0usize);
    for d in [b',', b';', b'\t', b'|'] {
        let counts: Vec<usize> = lines
            .iter()
            .map(|l| l.bytes().filter(|&b| b == d).count())
            .collect();
        let Some(&first) = counts.first() else {
            continue;
        };
        let even = counts.iter().filter(|&&c| c == first).count();
        if first > 0 && even * first > best.1 {
            best = (d, even * first);
        }
    }
    best.0
}

pub(crate) fn csv(bytes: &[u8]) -> Result<Read, ExtractError> {
    let text = crate::text::decode(bytes);
    let mut reader = ::csv::ReaderBuilder::new()
        .delimiter(sniff(&text))
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ExtractError::corrupt("CSV", e))?;
        rows.push(record.iter().map(str::to_owned).collect());
        if rows.len() > MAX_SHEET_ROWS {
            break;
        }
    }
    let mut warnings = Vec::new();
    let text = table(rows, "CSV", &mut warnings);
    let section = Section {
        locator: Locator::Sheet("csv".to_owned()),
        headings: vec![],
        text,
        ocr: false,
    };
    Ok((vec![section], warnings))
}

#[cfg(test)]
mod tests {
    #[test]
    fn delimiters_are_sniffed() {
        for (text, d) in [
            ("a,b\n1,2\n", b','),
            ("a;b;c\n1;2,5;3\n", b';'),
            ("a\tb\n1\t2\n", b'\t'),
        ] {
            assert_eq!(super::sniff(text), d, "{text}");
        }
    }
}

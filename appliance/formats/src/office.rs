//! DOCX, PPTX, ODT and ODP: zipped XML walked with quick-xml into Markdown.

use std::collections::HashMap;
use std::path::Path;

use quick_xml::events::{BytesStart, Event};

use crate::text::split_markdown;
use crate::zipsafe::SafeZip;
use crate::{ExtractError, Format, Limits, Locator, Read, Section};

/// Builds Markdown from a document's structure: paragraphs, headings, list items, tables.
#[derive(Default)]
pub(crate) struct Builder {
    out: String,
    line: String,
    heading: usize,
    list: Option<usize>,
    /// Open tables, innermost last: rows of cells.
    tables: Vec<Vec<Vec<String>>>,
}

impl Builder {
    pub fn text(&mut self, s: &str) {
        self.line.push_str(s);
    }

    pub fn heading(&mut self, level: usize) {
        self.heading = level.clamp(1, 6);
    }

    pub fn list(&mut self, depth: usize) {
        self.list = Some(depth);
    }

    /// Ends a paragraph (or any block): inside a table its text joins the cell.
    pub fn block(&mut self) {
        let line = collapse(&std::mem::take(&mut self.line));
        let (heading, list) = (std::mem::take(&mut self.heading), self.list.take());
        if line.is_empty() {
            return;
        }
        if let Some(cell) = self
            .tables
            .last_mut()
            .and_then(|t| t.last_mut())
            .and_then(|r| r.last_mut())
        {
            if !cell.is_empty() {
                cell.push(' ');
            }
            cell.push_str(&line);
            return;
        }
        if heading > 0 {
            self.out.push_str(&"#".repeat(heading));
            self.out.push(' ');
        } else if let Some(depth) = list {
            self.out.push_str(&"  ".repeat(depth));
            self.out.push_str("- ");
        }
        self.out.push_str(&line);
        self.out
            .push_str(if list.is_some() { "\n" } else { "\n\n" });
    }

    pub fn table(&mut self) {
        self.block();
        self.tables.push(Vec::new());
    }

    pub fn row(&mut self) {
        self.block();
        if let Some(t) = self.tables.last_mut() {
            t.push(Vec::new());
        }
    }

    pub fn cell(&mut self) {
        self.block();
        if let Some(r) = self.tables.last_mut().and_then(|t| t.last_mut()) {
            r.push(String::new());
        }
    }

    pub fn end_table(&mut self) {
        self.block();
        let Some(rows) = self.tables.pop() else {
            return;
        };
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|r| r.iter().any(|c| !c.is_empty()))
            .collect();
        if rows.is_empty() {
            return;
        }
        if !self.tables.is_empty() {
            // A table in a table cell is flattened into that cell.
            let flat: Vec<String> = rows.iter().map(|r| r.join(" ")).collect();
            self.line = flat.join(" ");
            self.block();
            return;
        }
        self.out.push_str(&markdown_table(&rows));
        self.out.push('\n');
    }

    pub fn finish(mut self) -> String {
        while !self.tables.is_empty() {
            self.end_table();
        }
        self.block();
        self.out.trim().to_owned()
    }
}

/// Rows as a Markdown table, the first row as its header.
pub(crate) fn markdown_table(rows: &[Vec<String>]) -> String {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut s = String::new();
    for (i, row) in rows.iter().enumerate() {
        s.push('|');
        for c in 0..width {
            let cell = row.get(c).map(String::as_str).unwrap_or("");
            s.push(' ');
            s.push_str(&cell.replace('|', "\\|").replace('\n', " "));
            s.push_str(" |");
        }
        s.push('\n');
        if i == 0 {
            s.push('|');
            s.push_str(&" --- |".repeat(width));
            s.push('\n');
        }
    }
    s
}

fn collapse(s: &str) -> String {
    s.split([' ', '\u{a0}', '\r'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

fn attr(e: &BytesStart, local: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .map(|a| {
            a.unescape_value()
                .map(|v| v.into_owned())
                .unwrap_or_default()
        })
}

fn corrupt(format: &'static str) -> impl Fn(quick_xml::Error) -> ExtractError {
    move |e| ExtractError::corrupt(format, e)
}

/// Heading level of a Word style: `Heading 1`/`Title`/an outline level.
fn docx_styles(xml: &str) -> HashMap<String, usize> {
    let mut map = HashMap::new();
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut id: Option<String> = None;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                b"style" => id = attr(&e, b"styleId"),
                b"name" => {
                    if let (Some(id), Some(name)) = (&id, attr(&e, b"val")) {
                        let lower = name.to_lowercase();
                        if let Some(n) = lower
                            .strip_prefix("heading ")
                            .and_then(|n| n.trim().parse().ok())
                        {
                            map.insert(id.clone(), n);
                        } else if lower == "title" {
                            map.insert(id.clone(), 1);
                        }
                    }
                }
                b"outlineLvl" => {
                    if let (Some(id), Some(n)) =
                        (&id, attr(&e, b"val").and_then(|v| v.parse::<usize>().ok()))
                    {
                        map.entry(id.clone()).or_insert(n + 1);
                    }
                }
                _ => {}
            },
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    map
}

pub(crate) fn docx(path: &Path, limits: &Limits) -> Result<Read, ExtractError> {
    let mut zip = SafeZip::open(path, limits, "DOCX")?;
    let styles = zip
        .read_string("word/styles.xml")?
        .map(|s| docx_styles(&s))
        .unwrap_or_default();
    let xml = zip
        .read_string("word/document.xml")?
        .ok_or_else(|| ExtractError::corrupt("DOCX", "no word/document.xml"))?;
    let mut b = Builder::default();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut in_text = false;
    loop {
        let ev = reader.read_event().map_err(corrupt("DOCX"))?;
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(ev, Event::Empty(_));
                match e.local_name().as_ref() {
                    b"t" if !empty => in_text = true,
                    b"tab" => b.text("\t"),
                    b"br" | b"cr" => b.text(" "),
                    b"pStyle" => {
                        if let Some(level) = attr(e, b"val")
                            .and_then(|v| styles.get(&v).copied().or_else(|| builtin_heading(&v)))
                        {
                            b.heading(level);
                        }
                    }
                    b"outlineLvl" => {
                        if let Some(n) = attr(e, b"val")
                            .and_then(|v| v.parse::<usize>().ok())
                            .filter(|n| *n < 9)
                        {
                            b.heading(n + 1);
                        }
                    }
                    b"ilvl" => b.list(attr(e, b"val").and_then(|v| v.parse().ok()).unwrap_or(0)),
                    b"numPr" => b.list(0),
                    b"tbl" => b.table(),
                    b"tr" => b.row(),
                    b"tc" => b.cell(),
                    _ => {}
                }
            }
            Event::Text(t) if in_text => b.text(&t.unescape().map_err(corrupt("DOCX"))?),
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" => b.block(),
                b"tbl" => b.end_table(),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok((split_markdown(&b.finish(), Locator::Whole), vec![]))
}

/// Word's built-in style ids when styles.xml is missing (hand-made files).
fn builtin_heading(id: &str) -> Option<usize> {
    if id == "Title" {
        return Some(1);
    }
    id.strip_prefix("Heading").and_then(|n| n.parse().ok())
}

pub(crate) fn pptx(path: &Path, limits: &Limits) -> Result<Read, ExtractError> {
    let mut zip = SafeZip::open(path, limits, "PPTX")?;
    let mut slides: Vec<(u32, String)> = zip
        .names()
        .into_iter()
        .filter_map(|n| {
            let num = n
                .strip_prefix("ppt/slides/slide")?
                .strip_suffix(".xml")?
                .parse()
                .ok()?;
            Some((num, n))
        })
        .collect();
    slides.sort();
    let mut sections = Vec::new();
    for (num, name) in slides {
        let xml = zip.read_string(&name)?.unwrap_or_default();
        let (title, text) = slide(&xml, "PPTX", b"sp", b"ph", b"type", &["title", "ctrTitle"])?;
        sections.push(Section {
            locator: Locator::Slide(num),
            headings: title.into_iter().collect(),
            text,
            ocr: false,
        });
    }
    Ok((sections, vec![]))
}

/// One slide's text; the shape whose placeholder is a title gives the heading.
fn slide(
    xml: &str,
    format: &'static str,
    shape: &[u8],
    ph: &[u8],
    ph_attr: &[u8],
    title_kinds: &[&str],
) -> Result<(Option<String>, String), ExtractError> {
    let mut b = Builder::default();
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut in_text = false;
    let mut title_shape = false;
    let mut title = String::new();
    loop {
        let ev = reader.read_event().map_err(corrupt(format))?;
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(ev, Event::Empty(_));
                let n = e.local_name();
                let n = n.as_ref();
                if n == shape && !empty || n == ph {
                    let kind = attr(e, ph_attr).unwrap_or_default();
                    title_shape = title_kinds.contains(&kind.as_str())
                        || (n == ph && n != shape && title_shape);
                }
                match n {
                    b"t" | b"span" | b"p" | b"h" if !empty && format == "PPTX" => {
                        in_text = n == b"t"
                    }
                    b"br" | b"line-break" => b.text(" "),
                    b"s" if format == "ODP" => b.text(" "),
                    b"tbl" | b"table" => b.table(),
                    b"tr" | b"table-row" => b.row(),
                    b"tc" | b"table-cell" => b.cell(),
                    _ => {}
                }
                if format == "PPTX" && title_shape && n == b"p" && !empty {
                    b.heading(1);
                }
            }
            Event::Text(t) if in_text || format == "ODP" => {
                let s = t.unescape().map_err(corrupt(format))?;
                if title_shape && !s.trim().is_empty() {
                    if !title.is_empty() {
                        title.push(' ');
                    }
                    title.push_str(s.trim());
                }
                b.text(&s);
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" | b"h" => {
                    if title_shape {
                        b.heading(1);
                    }
                    b.block()
                }
                b"tbl" | b"table" => b.end_table(),
                n if n == shape => title_shape = false,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(((!title.is_empty()).then_some(title), b.finish()))
}

pub(crate) fn odf(path: &Path, format: Format, limits: &Limits) -> Result<Read, ExtractError> {
    let name = if format == Format::Odt { "ODT" } else { "ODP" };
    let mut zip = SafeZip::open(path, limits, name)?;
    let xml = zip
        .read_string("content.xml")?
        .ok_or_else(|| ExtractError::corrupt(name, "no content.xml"))?;
    if format == Format::Odp {
        return odp(&xml);
    }
    let mut b = Builder::default();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut depth_list = 0usize;
    let mut in_body = false;
    loop {
        let ev = reader.read_event().map_err(corrupt("ODT"))?;
        match &ev {
            Event::Start(e) | Event::Empty(e) => {
                let empty = matches!(ev, Event::Empty(_));
                match e.local_name().as_ref() {
                    b"body" => in_body = true,
                    b"h" if !empty => b.heading(
                        attr(e, b"outline-level")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(1),
                    ),
                    b"list" if !empty => depth_list += 1,
                    b"p" if !empty && depth_list > 0 => b.list(depth_list - 1),
                    b"s" => b.text(" "),
                    b"tab" => b.text("\t"),
                    b"line-break" => b.text(" "),
                    b"table" if !empty => b.table(),
                    b"table-row" if !empty => b.row(),
                    b"table-cell" => b.cell(),
                    _ => {}
                }
            }
            Event::Text(t) if in_body => b.text(&t.unescape().map_err(corrupt("ODT"))?),
            Event::End(e) => match e.local_name().as_ref() {
                b"p" | b"h" => b.block(),
                b"list" => depth_list = depth_list.saturating_sub(1),
                b"table" => b.end_table(),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok((split_markdown(&b.finish(), Locator::Whole), vec![]))
}

/// ODP: each `draw:page` is a slide; its `presentation:class="title"` frame is the title.
fn odp(xml: &str) -> Result<Read, ExtractError> {
    let mut sections = Vec::new();
    let mut rest = xml;
    let mut num = 0;
    while let Some(start) = rest.find("<draw:page ") {
        let end = rest[start..]
            .find("</draw:page>")
            .map(|e| start + e + 12)
            .unwrap_or(rest.len());
        num += 1;
        let (title, text) = slide(
            &rest[start..end],
            "ODP",
            b"frame",
            b"frame",
            b"class",
            &["title"],
        )?;
        sections.push(Section {
            locator: Locator::Slide(num),
            headings: title.into_iter().collect(),
            text,
            ocr: false,
        });
        rest = &rest[end..];
    }
    Ok((sections, vec![]))
}

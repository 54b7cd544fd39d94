//! The zipped formats not covered by `extract.rs` (EPUB, ODS, ODP), HTML in a legacy encoding
//! named by its `<meta charset>`, and zips whose headers lie about their sizes. Every fixture
//! is built here by hand, so the expected text is known by construction; the files carry no
//! extension, as blobs in the store have none.

mod common;

use common::*;
use daarion_formats::{ExtractError, Format, Limits, Locator, detect_file};

const CONTAINER: &str = r#"<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles></container>"#;

/// The package document: the spine lists chapter two before chapter one, and a manifest item
/// (the stylesheet) that is not in the spine is not read.
const OPF: &str = r#"<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata/><manifest><item id="c1" href="text/one.xhtml" media-type="application/xhtml+xml"/><item id="c2" href="text/two.xhtml#start" media-type="application/xhtml+xml"/><item id="css" href="style.css" media-type="text/css"/></manifest><spine><itemref idref="c2"/><itemref idref="c1"/><itemref idref="missing"/></spine></package>"#;

fn chapter(title: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>{title}</title></head><body><nav>Зміст | Далі</nav><h1>{title}</h1><p>{body}</p></body></html>"#
    )
}

/// calamine reads an ODS only with its manifest, as every real one has.
const ODS_MANIFEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#;

fn ods_content() -> String {
    let cell = |v: &str| {
        format!(
            r#"<table:table-cell office:value-type="string"><text:p>{v}</text:p></table:table-cell>"#
        )
    };
    let num = |v: &str| {
        format!(
            r#"<table:table-cell office:value-type="float" office:value="{v}"><text:p>{v}</text:p></table:table-cell>"#
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet><table:table table:name="Склад"><table:table-row>{}{}</table:table-row><table:table-row>{}{}</table:table-row></table:table><table:table table:name="Notes"><table:table-row>{}</table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#,
        cell("Товар"),
        cell("Кількість"),
        cell("Цукор"),
        num("12"),
        cell(EN),
    )
}

fn odp_content() -> String {
    let page = |n: u32, title: &str, body: &str| {
        format!(
            r#"<draw:page draw:name="page{n}"><draw:frame presentation:class="title"><draw:text-box><text:p>{title}</text:p></draw:text-box></draw:frame><draw:frame presentation:class="outline"><draw:text-box><text:p>{body}</text:p></draw:text-box></draw:frame></draw:page>"#
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:presentation="urn:oasis:names:tc:opendocument:xmlns:presentation:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:presentation>{}{}</office:presentation></office:body></office:document-content>"#,
        page(1, "Мета", UK),
        page(2, "Plan", EN),
    )
}

/// EPUB chapters in spine order, ODS sheets as tables, ODP pages as slides with their titles;
/// each detected from its bytes alone.
#[tokio::test]
async fn epub_ods_and_odp_are_read_with_their_structure() {
    let dir = Dir::new("containers");
    let epub = dir.path("book");
    let (one, two) = (chapter("Розділ перший", UK), chapter("Chapter two", EN));
    zip(
        &epub,
        &[
            ("mimetype", b"application/epub+zip"),
            ("META-INF/container.xml", CONTAINER.as_bytes()),
            ("OEBPS/content.opf", OPF.as_bytes()),
            ("OEBPS/text/one.xhtml", one.as_bytes()),
            ("OEBPS/text/two.xhtml", two.as_bytes()),
            ("OEBPS/style.css", b"p { color: red }"),
        ],
    );
    let ods = dir.path("sheet");
    zip(
        &ods,
        &[
            (
                "mimetype",
                b"application/vnd.oasis.opendocument.spreadsheet",
            ),
            ("META-INF/manifest.xml", ODS_MANIFEST.as_bytes()),
            ("content.xml", ods_content().as_bytes()),
        ],
    );
    let odp = dir.path("slides");
    zip(
        &odp,
        &[
            (
                "mimetype",
                b"application/vnd.oasis.opendocument.presentation",
            ),
            ("content.xml", odp_content().as_bytes()),
        ],
    );

    // (file, its format, texts in order, texts absent, (locator, heading path) per section)
    type Case<'a> = (
        &'a std::path::Path,
        Format,
        &'a [&'a str],
        &'a [&'a str],
        Vec<(Locator, Vec<&'a str>)>,
    );
    let cases: Vec<Case> = vec![
        (
            &epub,
            Format::Epub,
            &["# Chapter two", EN, "# Розділ перший", UK],
            &["Зміст", "color: red"],
            vec![
                (Locator::Whole, vec!["Chapter two"]),
                (Locator::Whole, vec!["Розділ перший"]),
            ],
        ),
        (
            &ods,
            Format::Ods,
            &["| Товар | Кількість |\n| --- | --- |\n| Цукор | 12 |", EN],
            &[],
            vec![
                (Locator::Sheet("Склад".into()), vec!["Склад"]),
                (Locator::Sheet("Notes".into()), vec!["Notes"]),
            ],
        ),
        (
            &odp,
            Format::Odp,
            &[UK, EN],
            &[],
            vec![
                (Locator::Slide(1), vec!["Мета"]),
                (Locator::Slide(2), vec!["Plan"]),
            ],
        ),
    ];
    for (path, format, wants, absent, structure) in cases {
        assert_eq!(detect_file(path, None).unwrap(), format);
        let (r, sections, _) = read(path, format, &Limits::default()).await;
        r.unwrap_or_else(|e| panic!("{format}: {e}"));
        let text = all_text(&sections);
        let mut from = 0;
        for want in wants {
            let at = text[from..]
                .find(want)
                .unwrap_or_else(|| panic!("{format}: {want:?} not in order in {text:?}"));
            from += at + want.len();
        }
        for gone in absent {
            assert!(!text.contains(gone), "{format}: {gone:?} kept: {text:?}");
        }
        let got: Vec<(Locator, Vec<&str>)> = sections
            .iter()
            .map(|s| {
                (
                    s.locator.clone(),
                    s.headings.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(got, structure, "{format}");
    }
}

/// Windows-1251 bytes for `s` (Ukrainian and Russian letters, ASCII as is).
fn cp1251(s: &str) -> Vec<u8> {
    let (bytes, _, lossy) = encoding_rs::WINDOWS_1251.encode(s);
    assert!(!lossy, "{s} has letters CP1251 lacks");
    bytes.into_owned()
}

/// An HTML page in CP1251, its encoding named by `<meta charset>` or the older `http-equiv`
/// form, is read in that encoding, not guessed: a short page is where a guess goes wrong.
#[tokio::test]
async fn html_in_cp1251_is_read_in_the_charset_it_declares() {
    let dir = Dir::new("charset");
    let short = "Ціна: гривня";
    let tiny = "Так";
    let pages = [
        (
            "meta",
            format!(
                r#"<!DOCTYPE html><html><head><meta charset="windows-1251"><title>x</title></head><body><main><h1>Звіт</h1><p>{UK}</p><p>{RU}</p></main></body></html>"#
            ),
            vec!["# Звіт", UK, RU],
        ),
        (
            "http-equiv",
            format!(
                r#"<html><head><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=cp1251"></head><body><p>{short}</p></body></html>"#
            ),
            vec![short],
        ),
        (
            "short",
            format!(
                r#"<html><head><meta charset='windows-1251'/></head><body><p>{short}</p></body></html>"#
            ),
            vec![short],
        ),
        (
            "tiny",
            format!(
                r#"<html><head><meta http-equiv="content-type" content="text/html;charset=windows-1251"></head><body><p>OK: {tiny}</p></body></html>"#
            ),
            vec![tiny],
        ),
    ];
    for (name, page, wants) in pages {
        let path = dir.path(name);
        std::fs::write(&path, cp1251(&page)).unwrap();
        assert_eq!(detect_file(&path, None).unwrap(), Format::Html, "{name}");
        let (r, sections, _) = read(&path, Format::Html, &Limits::default()).await;
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
        let text = all_text(&sections);
        for want in wants {
            assert!(text.contains(want), "{name}: {want:?} not in {text:?}");
        }
    }
}

/// Rewrites the uncompressed size of entry `name` in its local header and in the central
/// directory to `claimed`: a zip whose headers lie about what it unpacks to.
fn lie_about_size(bytes: &mut [u8], name: &str, claimed: u32) {
    let mut patched = (0, 0);
    for at in 0..bytes.len().saturating_sub(46) {
        let (sig, name_at, size_at) = match &bytes[at..at + 4] {
            b"PK\x03\x04" => ("local", 30, 22),
            b"PK\x01\x02" => ("central", 46, 24),
            _ => continue,
        };
        let len_at = if sig == "local" { 26 } else { 28 };
        let len = u16::from_le_bytes([bytes[at + len_at], bytes[at + len_at + 1]]) as usize;
        if bytes.get(at + name_at..at + name_at + len) != Some(name.as_bytes()) {
            continue;
        }
        bytes[at + size_at..at + size_at + 4].copy_from_slice(&claimed.to_le_bytes());
        if sig == "local" {
            patched.0 += 1;
        } else {
            patched.1 += 1;
        }
    }
    assert_eq!(
        patched,
        (1, 1),
        "{name}: one local header and one central entry"
    );
}

/// A document part that claims 100 bytes but inflates to 3 MiB: the claim passes the
/// up-front check, and the capped read stops it at the limit (or the zip reader refuses the
/// mismatch); either way it fails permanently with nothing emitted. Every zipped reader is
/// tried, calamine's (ODS, XLSX) included.
#[tokio::test]
async fn zips_whose_headers_lie_about_sizes_are_still_capped() {
    let dir = Dir::new("lying");
    // Valid XML of the right kind all the way, so only the size can stop it.
    let filler = |open: &str, close: &str| {
        let mut s = open.to_owned();
        s.push_str(&"<!-- padding -->".repeat((3 << 20) / 16));
        s.push_str(close);
        s.into_bytes()
    };
    let docx_body = filler(
        r#"<w:document xmlns:w="w"><w:body><w:p><w:r><w:t>hello</w:t></w:r></w:p>"#,
        "</w:body></w:document>",
    );
    let odt_body = filler(
        r#"<office:document-content xmlns:office="o" xmlns:text="t"><office:body><office:text><text:p>hello</text:p>"#,
        "</office:text></office:body></office:document-content>",
    );
    let ods_body = {
        let c = ods_content();
        let (head, tail) = c.split_at(c.find("</office:document-content>").unwrap());
        filler(head, tail)
    };
    let xlsx_sheet = filler(
        r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>hello</t></is></c></row>"#,
        "</sheetData></worksheet>",
    );
    let epub_chapter = filler("<html><body><p>hello</p>", "</body></html>");
    let workbook = r#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    let rels = r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    let types = r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#;
    let opf = OPF.replace("text/two.xhtml#start", "text/one.xhtml");

    type Entries<'a> = Vec<(&'a str, &'a [u8])>;
    let cases: Vec<(Format, &str, Entries)> = vec![
        (
            Format::Docx,
            "word/document.xml",
            vec![
                ("[Content_Types].xml", b"<Types/>"),
                ("word/document.xml", &docx_body),
            ],
        ),
        (
            Format::Odt,
            "content.xml",
            vec![
                ("mimetype", b"application/vnd.oasis.opendocument.text"),
                ("content.xml", &odt_body),
            ],
        ),
        (
            Format::Ods,
            "content.xml",
            vec![
                (
                    "mimetype",
                    b"application/vnd.oasis.opendocument.spreadsheet",
                ),
                ("META-INF/manifest.xml", ODS_MANIFEST.as_bytes()),
                ("content.xml", &ods_body),
            ],
        ),
        (
            Format::Xlsx,
            "xl/worksheets/sheet1.xml",
            vec![
                ("[Content_Types].xml", types.as_bytes()),
                ("xl/workbook.xml", workbook.as_bytes()),
                ("xl/_rels/workbook.xml.rels", rels.as_bytes()),
                ("xl/worksheets/sheet1.xml", &xlsx_sheet),
            ],
        ),
        (
            Format::Epub,
            "OEBPS/text/one.xhtml",
            vec![
                ("mimetype", b"application/epub+zip"),
                ("META-INF/container.xml", CONTAINER.as_bytes()),
                ("OEBPS/content.opf", opf.as_bytes()),
                ("OEBPS/text/one.xhtml", &epub_chapter),
            ],
        ),
    ];
    let small = Limits {
        max_unpacked_bytes: 1 << 20,
        ..Limits::default()
    };
    for (format, part, entries) in cases {
        let path = dir.path(format.as_str());
        zip(&path, &entries);
        // Honest, it is refused up front for what it claims.
        let (r, _, _) = read(&path, format, &small).await;
        let err = r.expect_err("an honest bomb is refused");
        assert!(matches!(err, ExtractError::Bomb { .. }), "{format}: {err}");

        let mut bytes = std::fs::read(&path).unwrap();
        lie_about_size(&mut bytes, part, 100);
        std::fs::write(&path, &bytes).unwrap();
        let (r, sections, _) = read(&path, format, &small).await;
        let err = match r {
            Err(e) => e,
            Ok(s) => panic!(
                "{format}: a lying bomb read as {s:?}: {:?}",
                all_text(&sections)
            ),
        };
        assert!(
            matches!(
                err,
                ExtractError::Bomb { .. } | ExtractError::Corrupt { .. }
            ),
            "{format}: {err}"
        );
        assert!(err.permanent(), "{format}: {err}");
        assert!(sections.is_empty(), "{format}: nothing is emitted");
    }
}

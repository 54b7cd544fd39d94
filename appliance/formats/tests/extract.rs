//! Extraction end to end with the real tools, on fixtures made here with known text.

mod common;

use std::process::Command;

use common::*;
use daarion_formats::{ExtractError, Format, Limits, Locator, detect_file, media_audio};

#[tokio::test]
async fn native_pdf_pages_are_read_from_the_text_layer() {
    let (Some(py), true) = (python(), tools(&["pdfinfo", "pdftotext"])) else {
        return;
    };
    let dir = Dir::new("native");
    let pdf = dir.path("native.pdf");
    let pages: [&[&str]; 3] = [
        &[EN, "Second line of English."],
        &[UK, "Київ, Львів, Одеса."],
        &[RU, "Москва и Санкт-Петербург."],
    ];
    native_pdf(&py, &pdf, &pages);
    assert_eq!(detect_file(&pdf, Some("native.pdf")).unwrap(), Format::Pdf);
    let (r, sections, progress) = read(&pdf, Format::Pdf, &Limits::default()).await;
    let summary = r.unwrap();
    assert_eq!(
        (summary.pages, summary.ocr_pages, summary.sections),
        (3, 0, 3)
    );
    assert_eq!(progress.last(), Some(&(3, Some(3))));
    for (i, (page, section)) in pages.iter().zip(&sections).enumerate() {
        assert_eq!(section.locator, Locator::Page(i as u32 + 1));
        assert!(!section.ocr);
        let rate = cer(&page.join("\n"), &section.text);
        assert!(
            rate <= 0.01,
            "page {}: CER {rate:.3}: {:?}",
            i + 1,
            section.text
        );
    }

    // Asked to, OCR reads every page even though each has a text layer.
    if !tools(&["pdftoppm", "tesseract"]) {
        return;
    }
    let forced = Limits {
        force_ocr: true,
        ..Limits::default()
    };
    let (r, sections, _) = read(&pdf, Format::Pdf, &forced).await;
    assert_eq!(r.unwrap().ocr_pages, 3);
    for (page, section) in pages.iter().zip(&sections) {
        assert!(section.ocr);
        let rate = cer(&page.join("\n"), &section.text);
        assert!(rate <= 0.03, "CER {rate:.3}: {:?}", section.text);
    }
}

#[tokio::test]
async fn scanned_pdf_and_image_are_read_by_ocr() {
    let (Some(py), true) = (python(), tools(&["pdfinfo", "pdftoppm", "tesseract"])) else {
        return;
    };
    let dir = Dir::new("scanned");
    for (i, lines) in [
        [EN, "Plain text for the scanner."],
        [UK, "Наша мова калинова."],
        [RU, "Широкая электрификация южных губерний."],
    ]
    .iter()
    .enumerate()
    {
        for as_pdf in [true, false] {
            let file = dir.path(&format!("scan{i}.{}", if as_pdf { "pdf" } else { "png" }));
            rendered(&py, &file, lines, as_pdf);
            let format = detect_file(&file, None).unwrap();
            let (r, sections, _) = read(&file, format, &Limits::default()).await;
            let summary = r.unwrap();
            assert_eq!(summary.ocr_pages, 1);
            assert!(sections.iter().all(|s| s.ocr));
            let rate = cer(&lines.join("\n"), &all_text(&sections));
            assert!(
                rate <= 0.03,
                "{format} {i}: CER {rate:.3}: {:?}",
                all_text(&sections)
            );
        }
    }
}

/// Bad inputs fail with the reason a person can act on, and permanently.
#[tokio::test]
async fn bad_files_fail_with_a_reason() {
    let (Some(py), true) = (python(), tools(&["pdfinfo", "pdftotext", "qpdf"])) else {
        return;
    };
    let dir = Dir::new("bad");
    let good = dir.path("good.pdf");
    native_pdf(&py, &good, &[&[EN], &[EN], &[EN]]);
    let encrypted = dir.path("encrypted.pdf");
    sh(Command::new("qpdf")
        .args(["--encrypt", "user", "owner", "256", "--"])
        .arg(&good)
        .arg(&encrypted));
    let corrupt = dir.path("corrupt.pdf");
    std::fs::write(
        &corrupt,
        b"%PDF-1.7\n1 0 obj << /Type /Catalog garbage\n%%EOF\n",
    )
    .unwrap();
    let bomb = dir.path("bomb.docx");
    let zeros = vec![0u8; 3 << 20];
    zip(
        &bomb,
        &[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", &zeros),
        ],
    );
    let many = dir.path("many.docx");
    let names: Vec<String> = (0..30).map(|i| format!("word/part{i}.xml")).collect();
    let entries: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), b"x".as_slice()))
        .collect();
    zip(&many, &entries);
    let huge = dir.path("huge.png");
    // A PNG header claiming 100 000 × 100 000 pixels and nothing behind it.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(100_000u32.to_be_bytes());
    png.extend(100_000u32.to_be_bytes());
    png.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
    std::fs::write(&huge, png).unwrap();
    let empty_text = dir.path("empty.txt");
    std::fs::write(&empty_text, "  \n\n ").unwrap();

    let small = Limits {
        max_pages: 2,
        max_unpacked_bytes: 1 << 20,
        max_zip_entries: 20,
        ..Limits::default()
    };
    let cases: &[(&std::path::Path, Format, &str)] = &[
        (&encrypted, Format::Pdf, "encrypted PDF"),
        (&good, Format::Pdf, "too many pages: 3 > 2"),
        (&bomb, Format::Docx, "archive unpacks to more than 1 MiB"),
        (&many, Format::Docx, "archive has too many files: 30 > 20"),
        (&huge, Format::Png, "image too large"),
        (&empty_text, Format::Text, "no text found"),
    ];
    for (path, format, want) in cases {
        let (r, sections, _) = read(path, *format, &small).await;
        let err = r.expect_err(want);
        assert!(err.to_string().starts_with(want), "{want}: got {err}");
        assert!(err.permanent(), "{err}");
        assert!(sections.is_empty(), "{want}: nothing is emitted");
    }
    let (r, _, _) = read(&corrupt, Format::Pdf, &small).await;
    let err = r.unwrap_err();
    assert!(
        matches!(err, ExtractError::Corrupt { .. } | ExtractError::NoText),
        "{err}"
    );
    assert!(err.permanent());
}

#[tokio::test]
async fn a_tool_past_its_time_is_killed_and_transient() {
    let (Some(py), true) = (python(), tools(&["pdftoppm", "tesseract"])) else {
        return;
    };
    let dir = Dir::new("timeout");
    let img = dir.path("scan.png");
    rendered(&py, &img, &[EN, UK, RU, EN, UK, RU], false);
    let limits = Limits {
        tool_timeout: std::time::Duration::from_millis(50),
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let (r, _, _) = read(&img, Format::Png, &limits).await;
    let err = r.unwrap_err();
    assert!(
        matches!(
            err,
            ExtractError::Timeout {
                tool: "tesseract",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.permanent());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

fn docx_xml(body: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    )
}

fn p(style: Option<&str>, text: &str) -> String {
    let ppr = style
        .map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#))
        .unwrap_or_default();
    format!(r#"<w:p>{ppr}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
}

/// Office documents built by hand: the structure (headings, lists, tables, slides, sheets)
/// comes through as Markdown with provenance.
#[tokio::test]
async fn office_documents_keep_their_structure() {
    let dir = Dir::new("office");
    // DOCX with a localised heading style id named "heading 1" in styles.xml.
    let styles = r#"<w:styles xmlns:w="w"><w:style w:styleId="a1"><w:name w:val="heading 1"/></w:style></w:styles>"#;
    let list = r#"<w:p><w:pPr><w:numPr><w:ilvl w:val="0"/><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>пункт один</w:t></w:r></w:p>"#;
    let table = r#"<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Назва</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Ціна</w:t></w:r></w:p></w:tc></w:tr><w:tr><w:tc><w:p><w:r><w:t>Хліб</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>25</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"#;
    let body = format!(
        "{}{}{}{}{}",
        p(Some("a1"), "Звіт"),
        p(None, UK),
        p(Some("Heading2"), "Ціни"),
        list,
        table
    );
    let docx = dir.path("doc.docx");
    zip(
        &docx,
        &[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/styles.xml", styles.as_bytes()),
            ("word/document.xml", docx_xml(&body).as_bytes()),
        ],
    );

    let slide = |title: &str, body: &str| {
        format!(
            r#"<p:sld xmlns:p="p" xmlns:a="a"><p:cSld><p:spTree><p:sp><p:nvSpPr><p:nvPr><p:ph type="title"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>{title}</a:t></a:r></a:p></p:txBody></p:sp><p:sp><p:txBody><a:p><a:r><a:t>{body}</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#
        )
    };
    let pptx = dir.path("deck.pptx");
    let (s1, s2, s10) = (slide("Вступ", UK), slide("Plan", EN), slide("Кінець", RU));
    zip(
        &pptx,
        &[
            ("[Content_Types].xml", b"<Types/>"),
            ("ppt/slides/slide10.xml", s10.as_bytes()),
            ("ppt/slides/slide1.xml", s1.as_bytes()),
            ("ppt/slides/slide2.xml", s2.as_bytes()),
        ],
    );

    let odt_content = format!(
        r#"<office:document-content xmlns:office="o" xmlns:text="t" xmlns:table="tb"><office:body><office:text><text:h text:outline-level="1">Розділ</text:h><text:p>{RU}</text:p><text:list><text:list-item><text:p>first<text:s/>item</text:p></text:list-item></text:list><table:table><table:table-row><table:table-cell><text:p>x</text:p></table:table-cell><table:table-cell><text:p>y</text:p></table:table-cell></table:table-row></table:table></office:text></office:body></office:document-content>"#
    );
    let odt = dir.path("doc.odt");
    zip(
        &odt,
        &[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", odt_content.as_bytes()),
        ],
    );

    let xlsx = dir.path("book.xlsx");
    let workbook = r#"<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Ціни" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    let rels = r#"<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    let sheet = r#"<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>Товар</t></is></c><c r="B1" t="inlineStr"><is><t>Ціна</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>Молоко</t></is></c><c r="B2"><v>42.5</v></c></row></sheetData></worksheet>"#;
    let types = r#"<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>"#;
    zip(
        &xlsx,
        &[
            ("[Content_Types].xml", types.as_bytes()),
            ("xl/workbook.xml", workbook.as_bytes()),
            ("xl/_rels/workbook.xml.rels", rels.as_bytes()),
            ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
        ],
    );

    let csv = dir.path("table.csv");
    std::fs::write(&csv, "name;price\nчай;12,5\n\"a;b\";3\n").unwrap();

    let cases: &[(&std::path::Path, Format, &[&str], Locator)] = &[
        (
            &docx,
            Format::Docx,
            &[
                "# Звіт",
                UK,
                "## Ціни",
                "- пункт один",
                "| Назва | Ціна |\n| --- | --- |\n| Хліб | 25 |",
            ],
            Locator::Whole,
        ),
        (&pptx, Format::Pptx, &["# Вступ", UK], Locator::Slide(1)),
        (
            &odt,
            Format::Odt,
            &["# Розділ", RU, "- first item", "| x | y |"],
            Locator::Whole,
        ),
        (
            &xlsx,
            Format::Xlsx,
            &["| Товар | Ціна |\n| --- | --- |\n| Молоко | 42.5 |"],
            Locator::Sheet("Ціни".into()),
        ),
        (
            &csv,
            Format::Csv,
            &["| name | price |", "| чай | 12,5 |", "| a;b | 3 |"],
            Locator::Sheet("csv".into()),
        ),
    ];
    for (path, format, wants, first) in cases {
        let (r, sections, _) = read(path, *format, &Limits::default()).await;
        r.unwrap_or_else(|e| panic!("{format}: {e}"));
        let text = all_text(&sections);
        for want in *wants {
            assert!(text.contains(want), "{format}: {want:?} not in {text:?}");
        }
        assert_eq!(&sections[0].locator, first, "{format}");
    }
    let (_, sections, _) = read(&docx, Format::Docx, &Limits::default()).await;
    let paths: Vec<String> = sections.iter().map(|s| s.headings.join(" / ")).collect();
    assert_eq!(paths, ["Звіт", "Звіт / Ціни"]);
    let (_, slides, _) = read(&pptx, Format::Pptx, &Limits::default()).await;
    let order: Vec<_> = slides
        .iter()
        .map(|s| (s.locator.clone(), s.headings.clone()))
        .collect();
    assert_eq!(
        order,
        [
            (Locator::Slide(1), vec!["Вступ".to_owned()]),
            (Locator::Slide(2), vec!["Plan".to_owned()]),
            (Locator::Slide(10), vec!["Кінець".to_owned()])
        ]
    );
}

/// Text in legacy encodings, HTML with boilerplate, Markdown, RTF.
#[tokio::test]
async fn text_formats_in_any_encoding() {
    let dir = Dir::new("text");
    let cp1251 = dir.path("cp1251.txt");
    std::fs::write(
        &cp1251,
        encoding_rs::WINDOWS_1251.encode(&format!("{UK}\n{RU}")).0,
    )
    .unwrap();
    let koi8 = dir.path("koi8.txt");
    std::fs::write(&koi8, encoding_rs::KOI8_R.encode(&format!("{RU}\n{RU}")).0).unwrap();
    let html = dir.path("page.html");
    std::fs::write(&html, format!("<html><body><nav>Головна | Контакти</nav><article><h2>Новини</h2><p>{UK}</p></article><footer>© Усі права захищено</footer></body></html>")).unwrap();
    let md = dir.path("notes.md");
    std::fs::write(&md, format!("# Нотатки\n\n## Покупки\n\n- {RU}\n")).unwrap();
    let rtf = dir.path("doc.rtf");
    std::fs::write(&rtf, br"{\rtf1\ansi\ansicpg1251{\fonttbl{\f0 Arial;}}\f0 \'d0\'e0\'e4\'ee\'f1\'f2\'fc\par Hello}").unwrap();
    let cases: &[(&std::path::Path, Option<&str>, &str, &[&str])] = &[
        (&cp1251, None, &format!("{UK}\n{RU}"), &[]),
        (&koi8, None, &format!("{RU}\n{RU}"), &[]),
        (
            &html,
            None,
            &format!("## Новини\n\n{UK}"),
            &["Головна", "права"],
        ),
        (&md, Some("notes.md"), &format!("## Покупки\n\n- {RU}"), &[]),
        (&rtf, None, "Радость\nHello", &[]),
    ];
    for (path, name, want, absent) in cases {
        let format = detect_file(path, *name).unwrap();
        let (r, sections, _) = read(path, format, &Limits::default()).await;
        r.unwrap_or_else(|e| panic!("{format}: {e}"));
        let text = all_text(&sections);
        assert!(text.contains(want), "{format}: {want:?} not in {text:?}");
        for gone in *absent {
            assert!(
                !text.contains(gone),
                "{format}: boilerplate {gone:?} kept: {text:?}"
            );
        }
    }
    let (_, sections, _) = read(&md, Format::Markdown, &Limits::default()).await;
    assert_eq!(sections.last().unwrap().headings, ["Нотатки", "Покупки"]);
}

/// A voice note and a short video become 16 kHz mono WAV, their duration checked first.
#[tokio::test]
async fn recordings_become_speech_ready_audio() {
    if !tools(&["ffmpeg", "ffprobe", "espeak-ng"]) {
        return;
    }
    let dir = Dir::new("media");
    let wav = dir.path("voice.wav");
    sh(Command::new("espeak-ng")
        .args(["-v", "uk", "-w"])
        .arg(&wav)
        .arg(UK));
    let ogg = dir.path("voice.ogg");
    sh(Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(&wav)
        .args(["-c:a", "libopus"])
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
            "testsrc=d=3:s=160x120",
            "-f",
            "lavfi",
            "-i",
            "sine=d=3",
            "-shortest",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(&mp4));
    for (path, format) in [(&ogg, Format::Ogg), (&mp4, Format::Mp4)] {
        assert_eq!(detect_file(path, None).unwrap(), format);
        let out = dir.path(&format!("{format}.wav"));
        let info = media_audio(path, format, &Limits::default(), &out)
            .await
            .unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 1, "mono");
        assert_eq!(
            u32::from_le_bytes(bytes[24..28].try_into().unwrap()),
            16_000
        );
        let samples_s = (bytes.len() - 44) as f64 / 32_000.0;
        assert!(
            (info.duration.as_secs_f64() - samples_s).abs() < 0.2,
            "{format}: {info:?} vs {samples_s}"
        );
        assert!(info.duration.as_secs_f64() > 1.0);
    }
    let short = Limits {
        max_media_seconds: 1,
        ..Limits::default()
    };
    let err = media_audio(&mp4, Format::Mp4, &short, &dir.path("x.wav"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("recording too long: 3 s > 1 s"),
        "{err}"
    );
    assert!(err.permanent());
}

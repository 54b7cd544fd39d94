//! What a file is, from its bytes.
//!
//! Rules, in order:
//! 1. Magic numbers decide binary formats (PDF, images, audio, video, RTF, zip, OLE).
//! 2. A zip is opened far enough to read its directory: `mimetype` (ODF, EPUB) or
//!    `[Content_Types].xml` plus the part folders (DOCX/XLSX/PPTX). Any other zip is refused.
//! 3. Otherwise text: a BOM, or bytes that decode as UTF-8, or bytes with no NUL and few
//!    control characters (a legacy 8-bit encoding, decoded later by the parser). Text is then
//!    HTML if it starts like HTML, CSV if its lines split evenly on a delimiter, Markdown if the
//!    name says `.md` (the only place the name counts: Markdown is plain text with a habit).
//!
//! The name or a claimed MIME type never makes a file something its bytes are not: a `.pdf` that
//! is not a PDF is refused with that said, because a person renamed it or something lied.

use std::io::{Read, Seek};
use std::path::Path;

/// Every format something in the appliance reads. The string forms are stable: they are
/// stored with attachments and shown to people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Pdf,
    Docx,
    Xlsx,
    Pptx,
    Odt,
    Ods,
    Odp,
    Epub,
    Rtf,
    Html,
    Markdown,
    Csv,
    Text,
    Png,
    Jpeg,
    Webp,
    Gif,
    Tiff,
    Bmp,
    Wav,
    Ogg,
    Mp3,
    Flac,
    M4a,
    Mp4,
    Webm,
    Mkv,
    Mov,
}

/// What a format is read as, which decides the parser's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Document,
    Spreadsheet,
    Image,
    Audio,
    Video,
}

impl Format {
    pub const ALL: [Format; 28] = [
        Format::Pdf,
        Format::Docx,
        Format::Xlsx,
        Format::Pptx,
        Format::Odt,
        Format::Ods,
        Format::Odp,
        Format::Epub,
        Format::Rtf,
        Format::Html,
        Format::Markdown,
        Format::Csv,
        Format::Text,
        Format::Png,
        Format::Jpeg,
        Format::Webp,
        Format::Gif,
        Format::Tiff,
        Format::Bmp,
        Format::Wav,
        Format::Ogg,
        Format::Mp3,
        Format::Flac,
        Format::M4a,
        Format::Mp4,
        Format::Webm,
        Format::Mkv,
        Format::Mov,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Xlsx => "xlsx",
            Format::Pptx => "pptx",
            Format::Odt => "odt",
            Format::Ods => "ods",
            Format::Odp => "odp",
            Format::Epub => "epub",
            Format::Rtf => "rtf",
            Format::Html => "html",
            Format::Markdown => "markdown",
            Format::Csv => "csv",
            Format::Text => "text",
            Format::Png => "png",
            Format::Jpeg => "jpeg",
            Format::Webp => "webp",
            Format::Gif => "gif",
            Format::Tiff => "tiff",
            Format::Bmp => "bmp",
            Format::Wav => "wav",
            Format::Ogg => "ogg",
            Format::Mp3 => "mp3",
            Format::Flac => "flac",
            Format::M4a => "m4a",
            Format::Mp4 => "mp4",
            Format::Webm => "webm",
            Format::Mkv => "mkv",
            Format::Mov => "mov",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn mime(self) -> &'static str {
        match self {
            Format::Pdf => "application/pdf",
            Format::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Pptx => {
                "application/vnd.openxmlformats-officedocument.presentationml.presentation"
            }
            Format::Odt => "application/vnd.oasis.opendocument.text",
            Format::Ods => "application/vnd.oasis.opendocument.spreadsheet",
            Format::Odp => "application/vnd.oasis.opendocument.presentation",
            Format::Epub => "application/epub+zip",
            Format::Rtf => "application/rtf",
            Format::Html => "text/html",
            Format::Markdown => "text/markdown",
            Format::Csv => "text/csv",
            Format::Text => "text/plain",
            Format::Png => "image/png",
            Format::Jpeg => "image/jpeg",
            Format::Webp => "image/webp",
            Format::Gif => "image/gif",
            Format::Tiff => "image/tiff",
            Format::Bmp => "image/bmp",
            Format::Wav => "audio/wav",
            Format::Ogg => "audio/ogg",
            Format::Mp3 => "audio/mpeg",
            Format::Flac => "audio/flac",
            Format::M4a => "audio/mp4",
            Format::Mp4 => "video/mp4",
            Format::Webm => "video/webm",
            Format::Mkv => "video/x-matroska",
            Format::Mov => "video/quicktime",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Format::Xlsx | Format::Ods | Format::Csv => Kind::Spreadsheet,
            Format::Png
            | Format::Jpeg
            | Format::Webp
            | Format::Gif
            | Format::Tiff
            | Format::Bmp => Kind::Image,
            Format::Wav | Format::Ogg | Format::Mp3 | Format::Flac | Format::M4a => Kind::Audio,
            Format::Mp4 | Format::Webm | Format::Mkv | Format::Mov => Kind::Video,
            _ => Kind::Document,
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a file is not something the appliance reads; the text is for the person who sent it.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("the file is empty")]
    Empty,
    #[error("not a {claimed} though named {name}: its contents are {actual}")]
    Mislabelled {
        name: String,
        claimed: &'static str,
        actual: &'static str,
    },
    #[error("{0} files are not read; accepted: {ACCEPTED}")]
    Unsupported(&'static str),
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
}

/// The list a refusal names, for people.
pub const ACCEPTED: &str = "PDF, DOCX, XLSX, PPTX, ODT, ODS, ODP, EPUB, RTF, HTML, Markdown, CSV, \
     plain text, images (PNG, JPEG, WebP, GIF, TIFF, BMP), audio (WAV, OGG, MP3, FLAC, M4A) and \
     video (MP4, WebM, MKV, MOV)";

/// How many bytes detection looks at for text; enough to see a document's start and decide.
const TEXT_SNIFF: usize = 64 * 1024;

/// Detects a stored file. `name` (as the sender named it) only tells Markdown from plain text
/// and words the refusal when the name claims a format the bytes are not.
pub fn detect_file(path: &Path, name: Option<&str>) -> Result<Format, DetectError> {
    let mut file = std::fs::File::open(path)?;
    let mut head = Vec::with_capacity(TEXT_SNIFF);
    (&mut file).take(TEXT_SNIFF as u64).read_to_end(&mut head)?;
    let found = match sniff_binary(&head) {
        Some(Binary::Zip) => {
            file.rewind()?;
            zip_flavour(file)?
        }
        Some(Binary::Known(format)) => Ok(format),
        Some(Binary::Other(what)) => Err(what),
        None => text_flavour(&head, name),
    };
    finish(found, &head, name)
}

/// Detects bytes held in memory (tests, small uploads).
pub fn detect_bytes(bytes: &[u8], name: Option<&str>) -> Result<Format, DetectError> {
    let found = match sniff_binary(bytes) {
        Some(Binary::Zip) => zip_flavour(std::io::Cursor::new(bytes))?,
        Some(Binary::Known(format)) => Ok(format),
        Some(Binary::Other(what)) => Err(what),
        None => text_flavour(&bytes[..bytes.len().min(TEXT_SNIFF)], name),
    };
    finish(found, bytes, name)
}

fn finish(
    found: Result<Format, &'static str>,
    head: &[u8],
    name: Option<&str>,
) -> Result<Format, DetectError> {
    if head.is_empty() {
        return Err(DetectError::Empty);
    }
    let claimed = name.and_then(claimed_by_name);
    match (found, claimed) {
        (Ok(format), Some(claimed)) if !compatible(format, claimed) && strict(claimed) => {
            Err(DetectError::Mislabelled {
                name: name.unwrap_or_default().to_owned(),
                claimed: claimed.as_str_upper(),
                actual: format.as_str(),
            })
        }
        (Ok(format), _) => Ok(format),
        (Err(what), Some(claimed)) if strict(claimed) => Err(DetectError::Mislabelled {
            name: name.unwrap_or_default().to_owned(),
            claimed: claimed.as_str_upper(),
            actual: what,
        }),
        (Err(what), _) => Err(DetectError::Unsupported(what)),
    }
}

/// Formats whose name is a promise about the bytes: a `.pdf` that is not a PDF is worth saying
/// so. Text-ish names (`.txt`, `.csv`, `.md`, `.html`) are not: any text may be named so.
fn strict(claimed: Format) -> bool {
    !matches!(
        claimed,
        Format::Text | Format::Csv | Format::Markdown | Format::Html
    )
}

fn compatible(found: Format, claimed: Format) -> bool {
    found == claimed
        || found.kind() == claimed.kind() && matches!(found.kind(), Kind::Image | Kind::Audio)
        // MP4/MOV/M4A share one container family; WebM is Matroska.
        || matches!(
            (found, claimed),
            (Format::Mp4 | Format::Mov | Format::M4a, Format::Mp4 | Format::Mov | Format::M4a)
                | (Format::Webm | Format::Mkv, Format::Webm | Format::Mkv)
                | (Format::Ogg, Format::Webm)
        )
}

// By value: Format is Copy, and the name mirrors `Format::as_str`.
#[allow(clippy::wrong_self_convention)]
trait Upper {
    fn as_str_upper(self) -> &'static str;
}

impl Upper for Format {
    fn as_str_upper(self) -> &'static str {
        match self {
            Format::Pdf => "PDF",
            Format::Docx => "DOCX",
            Format::Xlsx => "XLSX",
            Format::Pptx => "PPTX",
            Format::Odt => "ODT",
            Format::Ods => "ODS",
            Format::Odp => "ODP",
            Format::Epub => "EPUB",
            Format::Rtf => "RTF",
            other => other.as_str(),
        }
    }
}

fn claimed_by_name(name: &str) -> Option<Format> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "pdf" => Format::Pdf,
        "docx" => Format::Docx,
        "xlsx" => Format::Xlsx,
        "pptx" => Format::Pptx,
        "odt" => Format::Odt,
        "ods" => Format::Ods,
        "odp" => Format::Odp,
        "epub" => Format::Epub,
        "rtf" => Format::Rtf,
        "html" | "htm" | "xhtml" => Format::Html,
        "md" | "markdown" => Format::Markdown,
        "csv" | "tsv" => Format::Csv,
        "txt" | "text" | "log" => Format::Text,
        "png" => Format::Png,
        "jpg" | "jpeg" => Format::Jpeg,
        "webp" => Format::Webp,
        "gif" => Format::Gif,
        "tif" | "tiff" => Format::Tiff,
        "bmp" => Format::Bmp,
        "wav" => Format::Wav,
        "ogg" | "oga" | "opus" => Format::Ogg,
        "mp3" => Format::Mp3,
        "flac" => Format::Flac,
        "m4a" => Format::M4a,
        "mp4" | "m4v" => Format::Mp4,
        "webm" => Format::Webm,
        "mkv" => Format::Mkv,
        "mov" => Format::Mov,
        _ => return None,
    })
}

enum Binary {
    Known(Format),
    Zip,
    /// A binary format nothing here reads, named for the refusal.
    Other(&'static str),
}

fn sniff_binary(b: &[u8]) -> Option<Binary> {
    let at = |offset: usize, magic: &[u8]| b.get(offset..offset + magic.len()) == Some(magic);
    // PDF allows junk before the header within the first KiB.
    if b[..b.len().min(1024)].windows(5).any(|w| w == b"%PDF-") {
        return Some(Binary::Known(Format::Pdf));
    }
    let known = |f| Some(Binary::Known(f));
    if at(0, b"PK\x03\x04") {
        return Some(Binary::Zip);
    }
    if at(0, b"PK\x05\x06") {
        return Some(Binary::Other("empty zip archive"));
    }
    if at(0, b"{\\rtf") {
        return known(Format::Rtf);
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return known(Format::Png);
    }
    if at(0, b"\xFF\xD8\xFF") {
        return known(Format::Jpeg);
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return known(Format::Gif);
    }
    if at(0, b"RIFF") && at(8, b"WEBP") {
        return known(Format::Webp);
    }
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return known(Format::Wav);
    }
    if at(0, b"II*\0") || at(0, b"MM\0*") {
        return known(Format::Tiff);
    }
    if at(0, b"BM") && b.len() > 26 && at(6, b"\0\0\0\0") {
        return known(Format::Bmp);
    }
    if at(0, b"OggS") {
        return known(Format::Ogg);
    }
    if at(0, b"fLaC") {
        return known(Format::Flac);
    }
    // MPEG audio frame sync with layer III (what MP3 is): layer I would also match a UTF-16LE BOM.
    if at(0, b"ID3") || (b.len() > 2 && b[0] == 0xFF && b[1] & 0xE0 == 0xE0 && b[1] & 0x06 == 0x02)
    {
        return known(Format::Mp3);
    }
    if at(4, b"ftyp") {
        let brand = b.get(8..12).unwrap_or_default();
        return known(match brand {
            b"M4A " | b"M4B " => Format::M4a,
            b"qt  " => Format::Mov,
            _ => Format::Mp4,
        });
    }
    if at(4, b"moov") || at(4, b"mdat") || at(4, b"wide") {
        return known(Format::Mov);
    }
    if at(0, b"\x1A\x45\xDF\xA3") {
        let head = &b[..b.len().min(64)];
        let webm = head.windows(4).any(|w| w == b"webm");
        return known(if webm { Format::Webm } else { Format::Mkv });
    }
    if at(0, b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return Some(Binary::Other(
            "old Microsoft Office (.doc/.xls/.ppt); save it as DOCX/XLSX/PPTX",
        ));
    }
    for (magic, what) in [
        (&b"Rar!"[..], "RAR archive"),
        (b"7z\xBC\xAF\x27\x1C", "7-Zip archive"),
        (b"\x1F\x8B", "gzip archive"),
        (b"BZh", "bzip2 archive"),
        (b"\xFD7zXZ\0", "xz archive"),
        (b"\x7FELF", "executable program"),
        (b"MZ", "Windows program"),
        (b"SQLite format 3\0", "SQLite database"),
    ] {
        if at(0, magic) {
            return Some(Binary::Other(what));
        }
    }
    None
}

/// At most this many directory entries are looked at: a zip claiming more is not an office
/// document anyone wrote, and walking it is how a zip bomb makes detection slow.
const MAX_ZIP_ENTRIES: usize = 20_000;

fn zip_flavour<R: Read + Seek>(reader: R) -> Result<Result<Format, &'static str>, DetectError> {
    let Ok(mut archive) = zip::ZipArchive::new(reader) else {
        return Ok(Err("damaged zip archive"));
    };
    if archive.len() > MAX_ZIP_ENTRIES {
        return Ok(Err("zip archive with too many entries"));
    }
    if let Ok(mut mimetype) = archive.by_name("mimetype") {
        let mut kind = String::new();
        let _ = (&mut mimetype).take(100).read_to_string(&mut kind);
        return Ok(match kind.trim() {
            "application/vnd.oasis.opendocument.text" => Ok(Format::Odt),
            "application/vnd.oasis.opendocument.spreadsheet" => Ok(Format::Ods),
            "application/vnd.oasis.opendocument.presentation" => Ok(Format::Odp),
            "application/epub+zip" => Ok(Format::Epub),
            _ => Err("OpenDocument file of a kind not read (drawing, formula…)"),
        });
    }
    let has = |prefix: &str| archive.file_names().any(|n| n.starts_with(prefix));
    if archive.file_names().any(|n| n == "[Content_Types].xml") {
        if has("word/") {
            return Ok(Ok(Format::Docx));
        }
        if has("xl/") {
            return Ok(Ok(Format::Xlsx));
        }
        if has("ppt/") {
            return Ok(Ok(Format::Pptx));
        }
        return Ok(Err("Office Open XML file of a kind not read"));
    }
    Ok(Err("zip archive"))
}

fn text_flavour(head: &[u8], name: Option<&str>) -> Result<Format, &'static str> {
    if !looks_like_text(head) {
        return Err("binary file of an unknown kind");
    }
    let claimed = name.and_then(claimed_by_name);
    let sample = String::from_utf8_lossy(&head[..head.len().min(4096)]).to_ascii_lowercase();
    let start = sample.trim_start_matches('\u{feff}').trim_start();
    if start.starts_with("<!doctype html")
        || start.starts_with("<html")
        || (start.starts_with("<?xml") && sample.contains("<html"))
        || (start.starts_with('<') && (sample.contains("<body") || sample.contains("<head")))
    {
        return Ok(Format::Html);
    }
    if claimed == Some(Format::Markdown) {
        return Ok(Format::Markdown);
    }
    if claimed == Some(Format::Csv) || (claimed.is_none() && looks_like_csv(start)) {
        return Ok(Format::Csv);
    }
    Ok(Format::Text)
}

/// Text in any common encoding: UTF-16 with a BOM, valid UTF-8 (a cut last character allowed),
/// or 8-bit text (CP1251, KOI8-R…) with no NUL and few C0 controls.
fn looks_like_text(b: &[u8]) -> bool {
    if b.starts_with(b"\xFF\xFE") || b.starts_with(b"\xFE\xFF") {
        return true;
    }
    match std::str::from_utf8(b) {
        Ok(_) => return !b.contains(&0),
        Err(e) if e.error_len().is_none() => return !b.contains(&0),
        Err(_) => {}
    }
    if b.contains(&0) {
        return false;
    }
    let controls = b
        .iter()
        .filter(|&&c| c < 0x20 && !matches!(c, b'\n' | b'\r' | b'\t' | 0x0C))
        .count();
    controls * 100 <= b.len()
}

/// CSV without a name: at least three lines, each with the same (non-zero) count of one
/// delimiter. Prose with commas rarely keeps the count steady for three lines.
fn looks_like_csv(text: &str) -> bool {
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).take(20).collect();
    if lines.len() < 3 {
        return false;
    }
    // The last line may be cut by the sniff window.
    let whole = &lines[..lines.len() - 1];
    [',', ';', '\t'].into_iter().any(|d| {
        let n = whole[0].matches(d).count();
        n > 0 && whole.iter().all(|l| l.matches(d).count() == n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut out);
        for (name, body) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut w, body).unwrap();
        }
        w.finish().unwrap();
        out.into_inner()
    }

    #[test]
    fn formats_are_decided_by_their_bytes() {
        let docx = zip_with(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/document.xml", b"<w/>"),
        ]);
        let xlsx = zip_with(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("xl/workbook.xml", b"<w/>"),
        ]);
        let odt = zip_with(&[
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", b"<x/>"),
        ]);
        let epub = zip_with(&[("mimetype", b"application/epub+zip")]);
        let cp1251 = "Привіт, світ! Це текст у кодуванні Windows-1251.\n"
            .chars()
            .map(|c| match c {
                'а'..='я' => (c as u32 - 'а' as u32 + 0xE0) as u8,
                'А'..='Я' => (c as u32 - 'А' as u32 + 0xC0) as u8,
                'і' => 0xB3,
                _ => c as u8,
            })
            .collect::<Vec<u8>>();
        let cases: &[(&[u8], Option<&str>, Format)] = &[
            (b"%PDF-1.7\n...", Some("a.pdf"), Format::Pdf),
            (b"\x89PNG\r\n\x1a\n....", None, Format::Png),
            (b"\xFF\xD8\xFF\xE0..JFIF", Some("photo.jpg"), Format::Jpeg),
            (b"RIFF\0\0\0\0WAVEfmt ", None, Format::Wav),
            (b"OggS\0\x02", Some("voice.oga"), Format::Ogg),
            (b"\0\0\0\x20ftypisom", Some("clip.mp4"), Format::Mp4),
            (b"\x1A\x45\xDF\xA3\x9f\x42\x82\x84webm", None, Format::Webm),
            (b"{\\rtf1\\ansi hello}", Some("a.rtf"), Format::Rtf),
            (&docx, Some("report.docx"), Format::Docx),
            (&xlsx, None, Format::Xlsx),
            (&odt, None, Format::Odt),
            (&epub, None, Format::Epub),
            (
                b"<!DOCTYPE html><html><body>x</body></html>",
                None,
                Format::Html,
            ),
            (b"# Title\n\nbody", Some("notes.md"), Format::Markdown),
            (b"a,b,c\n1,2,3\n4,5,6\n7,8,9\n", None, Format::Csv),
            (b"Hello, world.\nJust text, really.\n", None, Format::Text),
            (&cp1251, Some("a.txt"), Format::Text),
            (b"\xFF\xFEH\0i\0", None, Format::Text),
        ];
        for (bytes, name, want) in cases {
            let got = detect_bytes(bytes, *name).unwrap_or_else(|e| panic!("{want}: {e}"));
            assert_eq!(got, *want, "{name:?}");
        }
    }

    #[test]
    fn refusals_say_what_the_file_is() {
        let other_zip = zip_with(&[("a.exe", b"MZ")]);
        let cases: &[(&[u8], Option<&str>, &str)] = &[
            (b"", Some("a.pdf"), "empty"),
            (
                b"Hello, I am text",
                Some("report.pdf"),
                "not a PDF though named report.pdf",
            ),
            (
                b"\x89PNG\r\n\x1a\n",
                Some("scan.pdf"),
                "its contents are png",
            ),
            (&other_zip, Some("x.zip"), "zip archive files are not read"),
            (b"\x7FELF\x02\x01", None, "executable program"),
            (
                b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
                Some("old.doc"),
                "save it as DOCX",
            ),
            (
                b"\0\x01\x02\x03binary\0\0",
                None,
                "binary file of an unknown kind",
            ),
        ];
        for (bytes, name, want) in cases {
            let err = detect_bytes(bytes, *name).expect_err(want).to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn a_file_on_disk_is_detected_the_same() {
        let dir = std::env::temp_dir().join(format!("daarion-detect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("blob");
        let docx = zip_with(&[
            ("[Content_Types].xml", b"<T/>"),
            ("word/document.xml", b"<w/>"),
        ]);
        std::fs::write(&path, &docx).unwrap();
        assert_eq!(detect_file(&path, None).unwrap(), Format::Docx);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_format_round_trips_its_name() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
    }
}

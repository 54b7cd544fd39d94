//! Plain text in any common encoding, and Markdown split at its headings.

use crate::{Locator, Section};

/// Decodes bytes whatever their encoding: a BOM decides; else valid UTF-8 is UTF-8; else
/// chardetng guesses among the legacy encodings (CP1251, KOI8-R, …).
pub(crate) fn decode(bytes: &[u8]) -> String {
    decode_declared(bytes, None)
}

/// [`decode`], with the encoding the file declares (an HTML page's `<meta charset>`) trusted
/// before a guess: a short page gives chardetng too little to go on. Valid UTF-8 still wins
/// over the declaration, since pages re-saved as UTF-8 often keep their old `<meta>`.
pub(crate) fn decode_declared(
    bytes: &[u8],
    declared: Option<&'static encoding_rs::Encoding>,
) -> String {
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        return enc
            .decode_without_bom_handling(&bytes[bom..])
            .0
            .into_owned();
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_owned();
    }
    if let Some(enc) = declared {
        return enc.decode_without_bom_handling(bytes).0.into_owned();
    }
    let mut det = chardetng::EncodingDetector::new();
    det.feed(bytes, true);
    let enc = det.guess(None, true);
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

/// Text with no structure: one section.
pub(crate) fn plain(text: &str) -> Vec<Section> {
    vec![Section {
        locator: Locator::Whole,
        headings: vec![],
        text: text.replace("\r\n", "\n").trim().to_owned(),
        ocr: false,
    }]
}

/// The level of an ATX heading line (`## Title` → 2) and its title.
fn heading(line: &str) -> Option<(usize, &str)> {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
        Some((hashes, line[hashes..].trim().trim_end_matches('#').trim()))
    } else {
        None
    }
}

/// Splits Markdown at its headings: each section holds one heading's text (heading line
/// included) and the path of headings above it. Code fences are not mistaken for headings.
pub(crate) fn split_markdown(text: &str, locator: Locator) -> Vec<Section> {
    let mut out = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut cur = String::new();
    let mut cur_path: Vec<String> = Vec::new();
    let mut fenced = false;
    let flush = |cur: &mut String, cur_path: &Vec<String>, out: &mut Vec<Section>| {
        let t = cur.trim();
        if !t.is_empty() {
            out.push(Section {
                locator: locator.clone(),
                headings: cur_path.clone(),
                text: t.to_owned(),
                ocr: false,
            });
        }
        cur.clear();
    };
    for line in text.replace("\r\n", "\n").lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if let (false, Some((level, title))) = (fenced, heading(line)) {
            flush(&mut cur, &cur_path, &mut out);
            path.retain(|(l, _)| *l < level);
            path.push((level, title.to_owned()));
            cur_path = path.iter().map(|(_, t)| t.clone()).collect();
        }
        cur.push_str(line);
        cur.push('\n');
    }
    flush(&mut cur, &cur_path, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_encodings_are_detected() {
        let text = "Привіт, як справи? Це український текст про погоду і новини дня.";
        for enc in [
            encoding_rs::WINDOWS_1251,
            encoding_rs::KOI8_R,
            encoding_rs::UTF_8,
        ] {
            let (bytes, _, _) = enc.encode(text);
            let back = decode(&bytes);
            if enc == encoding_rs::KOI8_R {
                // KOI8-R has no і; KOI8-U is what chardetng reports for Ukrainian.
                assert!(
                    back.contains("Привет") || back.contains("як справи"),
                    "{back}"
                );
            } else {
                assert_eq!(back, text, "{}", enc.name());
            }
        }
        let mut utf16 = vec![0xFF, 0xFE];
        utf16.extend(text.encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert_eq!(decode(&utf16), text);
    }

    #[test]
    fn markdown_sections_carry_their_heading_path() {
        let s = split_markdown(
            "intro\n# A\none\n## B\ntwo\n```\n# not\n```\n# C\nthree",
            Locator::Whole,
        );
        let paths: Vec<_> = s.iter().map(|s| s.headings.join("/")).collect();
        assert_eq!(paths, ["", "A", "A/B", "C"]);
        assert!(s[2].text.contains("# not"));
    }
}

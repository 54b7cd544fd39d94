//! HTML to Markdown, main content only, and EPUB as its XHTML chapters in spine order.
//!
//! A small tolerant tokenizer rather than a full HTML5 parser: what matters here is the text,
//! the block structure and which elements are boilerplate, and real pages are rarely valid.

use std::path::Path;

use crate::office::Builder;
use crate::text::split_markdown;
use crate::zipsafe::SafeZip;
use crate::{ExtractError, Limits, Locator, Read};

#[derive(Debug, PartialEq)]
enum Tok {
    Start(String, String),
    End(String),
    Text(String),
}

/// Elements whose content is never the document's text.
const DROP: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "svg",
    "iframe", "button", "select", "head", "title", "menu", "dialog",
];
const RAW: &[&str] = &[
    "script", "style", "textarea", "noscript", "template", "title",
];
const VOID: &[&str] = &[
    "br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "track",
    "wbr",
];
const BLOCK: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "blockquote",
    "pre",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "address",
    "ul",
    "ol",
    "body",
    "center",
    "hr",
    "br",
];

fn tokenize(src: &str) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut rest = src;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            toks.push(Tok::Text(rest.to_owned()));
            break;
        };
        if lt > 0 {
            toks.push(Tok::Text(rest[..lt].to_owned()));
        }
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<!--") {
            rest = r.find("-->").map_or("", |e| &r[e + 3..]);
            continue;
        }
        let bytes = rest.as_bytes();
        let is_end = bytes.get(1) == Some(&b'/');
        let name_start = if is_end { 2 } else { 1 };
        if !bytes
            .get(name_start)
            .is_some_and(|b| b.is_ascii_alphabetic())
        {
            if matches!(bytes.get(1), Some(b'!' | b'?')) {
                rest = rest.find('>').map_or("", |e| &rest[e + 1..]);
            } else {
                toks.push(Tok::Text("<".to_owned()));
                rest = &rest[1..];
            }
            continue;
        }
        let Some(gt) = rest.find('>') else { break };
        let inner = &rest[name_start..gt];
        let name_end = inner
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(inner.len());
        let name = inner[..name_end].to_ascii_lowercase();
        let attrs = inner[name_end..].to_owned();
        rest = &rest[gt + 1..];
        if is_end {
            toks.push(Tok::End(name));
            continue;
        }
        let self_closing = attrs.trim_end().ends_with('/');
        toks.push(Tok::Start(name.clone(), attrs));
        if RAW.contains(&name.as_str()) {
            let close = format!("</{name}");
            let end = rest.to_ascii_lowercase().find(&close).unwrap_or(rest.len());
            if name == "title" || name == "textarea" {
                toks.push(Tok::Text(rest[..end].to_owned()));
            }
            rest = &rest[end..];
            rest = rest.find('>').map_or("", |e| &rest[e + 1..]);
            toks.push(Tok::End(name));
        } else if self_closing || VOID.contains(&name.as_str()) {
            toks.push(Tok::End(name));
        }
    }
    toks
}

fn entity(name: &str) -> Option<char> {
    if let Some(num) = name.strip_prefix('#') {
        let n = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(n);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "mdash" => '—',
        "ndash" => '–',
        "laquo" => '«',
        "raquo" => '»',
        "hellip" => '…',
        "copy" => '©',
        "rsquo" => '’',
        "lsquo" => '‘',
        "rdquo" => '”',
        "ldquo" => '“',
        "bull" => '•',
        _ => return None,
    })
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let semi = rest[..rest.len().min(12)].find(';');
        match semi.and_then(|e| entity(&rest[1..e]).map(|c| (c, e))) {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The token range of the first `<main>`, else the first `<article>`, else everything.
fn main_range(toks: &[Tok]) -> std::ops::Range<usize> {
    for want in ["main", "article"] {
        if let Some(start) = toks
            .iter()
            .position(|t| matches!(t, Tok::Start(n, _) if n == want))
        {
            let mut depth = 0;
            for (i, t) in toks.iter().enumerate().skip(start) {
                match t {
                    Tok::Start(n, _) if n == want => depth += 1,
                    Tok::End(n) if n == want => {
                        depth -= 1;
                        if depth == 0 {
                            return start..i + 1;
                        }
                    }
                    _ => {}
                }
            }
            return start..toks.len();
        }
    }
    0..toks.len()
}

/// HTML's main content as Markdown.
pub(crate) fn html(src: &str) -> String {
    let toks = tokenize(src);
    let mut b = Builder::default();
    let mut dropping: Vec<String> = Vec::new();
    let mut lists = 0usize;
    let mut pre = 0usize;
    for t in &toks[main_range(&toks)] {
        match t {
            Tok::Start(n, attrs) => {
                if !dropping.is_empty() || DROP.contains(&n.as_str()) || hidden(attrs) {
                    if !VOID.contains(&n.as_str()) {
                        dropping.push(n.clone());
                    }
                    continue;
                }
                match n.as_str() {
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        b.block();
                        b.heading((n.as_bytes()[1] - b'0') as usize);
                    }
                    "ul" | "ol" => {
                        b.block();
                        lists += 1;
                    }
                    "li" => {
                        b.block();
                        b.list(lists.saturating_sub(1));
                    }
                    "table" => b.table(),
                    "tr" => b.row(),
                    "td" | "th" => b.cell(),
                    "pre" => {
                        b.block();
                        pre += 1;
                    }
                    "br" if pre > 0 => b.text("\n"),
                    other if BLOCK.contains(&other) => b.block(),
                    _ => {}
                }
            }
            Tok::End(n) => {
                if let Some(top) = dropping.last() {
                    if top == n {
                        dropping.pop();
                    }
                    continue;
                }
                match n.as_str() {
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "li" | "p" | "div" => b.block(),
                    "ul" | "ol" => {
                        b.block();
                        lists = lists.saturating_sub(1);
                    }
                    "table" => b.end_table(),
                    "pre" => {
                        pre = pre.saturating_sub(1);
                        b.block();
                    }
                    other if BLOCK.contains(&other) => b.block(),
                    _ => {}
                }
            }
            Tok::Text(s) if dropping.is_empty() => {
                let s = unescape(s);
                if pre > 0 {
                    b.text(&s);
                } else {
                    b.text(&s.split_whitespace().collect::<Vec<_>>().join(" "));
                    if s.ends_with(char::is_whitespace) {
                        b.text(" ");
                    }
                }
            }
            Tok::Text(_) => {}
        }
    }
    b.finish()
}

fn hidden(attrs: &str) -> bool {
    let a = attrs.to_ascii_lowercase();
    a.contains("aria-hidden=\"true\"")
        || a.contains("display:none")
        || a.contains("role=\"navigation\"")
}

/// The encoding an HTML page names in its first 1024 bytes (where the HTML standard's prescan
/// looks): `<meta charset="…">` or `<meta http-equiv="Content-Type" content="…; charset=…">`.
pub(crate) fn meta_charset(bytes: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let mut rest = head.as_str();
    while let Some(at) = rest.find("<meta") {
        let tag = &rest[at..];
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        if let Some(pos) = tag.find("charset=") {
            let value = tag[pos + 8..].trim_start_matches(['"', '\'', ' ']);
            let end = value
                .find(|c: char| matches!(c, '"' | '\'' | ';' | '/' | '>') || c.is_whitespace())
                .unwrap_or(value.len());
            // A page declaring UTF-16 in ASCII bytes is not UTF-16 (the standard says UTF-8).
            if let Some(enc) = encoding_rs::Encoding::for_label(&value.as_bytes()[..end]) {
                return Some(enc.output_encoding());
            }
        }
        rest = &rest[at + 5..];
    }
    None
}

/// EPUB: container.xml names the package document, whose spine orders the chapters.
pub(crate) fn epub(path: &Path, limits: &Limits) -> Result<Read, ExtractError> {
    let mut zip = SafeZip::open(path, limits, "EPUB")?;
    let container = zip
        .read_string("META-INF/container.xml")?
        .unwrap_or_default();
    let opf_path = attr_of(&container, "rootfile", "full-path").ok_or_else(|| {
        ExtractError::corrupt("EPUB", "no package document in META-INF/container.xml")
    })?;
    let opf = zip
        .read_string(&opf_path)?
        .ok_or_else(|| ExtractError::corrupt("EPUB", format!("{opf_path} is missing")))?;
    let base = opf_path
        .rsplit_once('/')
        .map_or(String::new(), |(d, _)| format!("{d}/"));
    let toks = tokenize(&opf);
    let attr = |attrs: &str, key: &str| attr_in(attrs, key);
    let mut items = std::collections::HashMap::new();
    let mut spine = Vec::new();
    for t in &toks {
        if let Tok::Start(n, a) = t {
            match n.rsplit(':').next().unwrap_or(n) {
                "item" => {
                    if let (Some(id), Some(href)) = (attr(a, "id"), attr(a, "href")) {
                        items.insert(id, href);
                    }
                }
                "itemref" => spine.extend(attr(a, "idref")),
                _ => {}
            }
        }
    }
    let mut sections = Vec::new();
    for idref in spine {
        let Some(href) = items.get(&idref) else {
            continue;
        };
        let href = href.split('#').next().unwrap_or(href);
        let Some(bytes) = zip.read(&format!("{base}{href}"))? else {
            continue;
        };
        let md = html(&crate::text::decode(&bytes));
        sections.extend(split_markdown(&md, Locator::Whole));
    }
    Ok((sections, vec![]))
}

fn attr_in(attrs: &str, key: &str) -> Option<String> {
    let mut rest = attrs;
    while let Some(pos) = rest.find(key) {
        let before_ok = pos == 0 || rest.as_bytes()[pos - 1].is_ascii_whitespace();
        let after = rest[pos + key.len()..].trim_start();
        if let (true, Some(v)) = (before_ok, after.strip_prefix('=')) {
            let v = v.trim_start();
            let q = v.chars().next()?;
            if q == '"' || q == '\'' {
                let end = v[1..].find(q)?;
                return Some(unescape(&v[1..1 + end]));
            }
        }
        rest = &rest[pos + key.len()..];
    }
    None
}

fn attr_of(xml: &str, element: &str, key: &str) -> Option<String> {
    tokenize(xml).into_iter().find_map(|t| match t {
        Tok::Start(n, a) if n.rsplit(':').next() == Some(element) => attr_in(&a, key),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::{html, meta_charset};

    #[test]
    fn the_declared_charset_is_found_in_either_meta_form() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"<meta charset="windows-1251">"#, Some("windows-1251")),
            (r#"<META CHARSET='cp1251'/>"#, Some("windows-1251")),
            ("<meta charset=koi8-r>", Some("KOI8-R")),
            (
                r#"<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">"#,
                Some("windows-1251"),
            ),
            (r#"<meta charset="utf-16le">"#, Some("UTF-8")),
            (
                r#"<meta name="x" content="y"><meta charset="nonsense">"#,
                None,
            ),
            ("<p>charset=windows-1251</p>", None),
        ];
        for (head, want) in cases {
            let page = format!("<html><head>{head}</head><body>x</body></html>");
            assert_eq!(
                meta_charset(page.as_bytes()).map(|e| e.name()),
                *want,
                "{head}"
            );
        }
    }

    #[test]
    fn main_content_without_boilerplate() {
        let page = r#"<!doctype html><html><head><title>T</title><style>p{}</style></head><body>
            <header>SITE HEADER</header><nav><a href="/">MENU LINK</a></nav>
            <main><h1>Звіт &amp; підсумки</h1><p>Перший   абзац.<br>Далі</p>
            <ul><li>one</li><li>two</li></ul>
            <table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>
            <script>var secret = 1;</script></main>
            <aside>SIDEBAR</aside><footer>FOOTER TEXT</footer></body></html>"#;
        let md = html(page);
        for gone in [
            "SITE HEADER",
            "MENU LINK",
            "SIDEBAR",
            "FOOTER TEXT",
            "secret",
            "p{}",
        ] {
            assert!(!md.contains(gone), "{gone} in {md}");
        }
        assert!(md.starts_with("# Звіт & підсумки"), "{md}");
        assert!(md.contains("- one\n- two"), "{md}");
        assert!(md.contains("| a | b |\n| --- | --- |\n| 1 | 2 |"), "{md}");
    }
}

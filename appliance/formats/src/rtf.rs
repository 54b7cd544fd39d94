//! A small RTF reader: the visible text, with `\par` as line breaks, `\'hh` in the document's
//! code page and `\uN` as Unicode; font tables, styles, pictures and other destinations skipped.

/// Destinations whose content is not visible text.
const SKIP: &[&str] = &[
    "fonttbl",
    "colortbl",
    "stylesheet",
    "info",
    "pict",
    "header",
    "footer",
    "headerl",
    "headerr",
    "footerl",
    "footerr",
    "object",
    "themedata",
    "colorschememapping",
    "latentstyles",
    "datastore",
    "xmlnstbl",
    "listtable",
    "listoverridetable",
    "rsidtbl",
    "generator",
];

pub(crate) fn text(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut bytes_run: Vec<u8> = Vec::new();
    let mut enc = encoding_rs::WINDOWS_1252;
    // Per group: (skipping, unicode skip count).
    let mut stack: Vec<(bool, usize)> = vec![(false, 1)];
    let mut skip_after_u = 0usize;
    let mut i = 0;
    let flush = |run: &mut Vec<u8>, out: &mut String, enc: &'static encoding_rs::Encoding| {
        if !run.is_empty() {
            out.push_str(&enc.decode_without_bom_handling(run).0);
            run.clear();
        }
    };
    while i < bytes.len() {
        let skipping = stack.last().is_some_and(|s| s.0);
        let c = bytes[i];
        match c {
            b'{' => {
                let top = *stack.last().unwrap_or(&(false, 1));
                stack.push(top);
                i += 1;
            }
            b'}' => {
                stack.pop();
                if stack.is_empty() {
                    stack.push((false, 1));
                }
                i += 1;
            }
            b'\\' => {
                i += 1;
                let Some(&n) = bytes.get(i) else { break };
                if n == b'\'' {
                    let hex =
                        std::str::from_utf8(bytes.get(i + 1..i + 3).unwrap_or(b"")).unwrap_or("");
                    i += 3;
                    if skip_after_u > 0 {
                        skip_after_u -= 1;
                    } else if let (false, Ok(b)) = (skipping, u8::from_str_radix(hex, 16)) {
                        bytes_run.push(b);
                    }
                    continue;
                }
                if !n.is_ascii_alphabetic() {
                    i += 1;
                    if n == b'*' {
                        if let Some(top) = stack.last_mut() {
                            top.0 = true;
                        }
                    } else if !skipping && matches!(n, b'\\' | b'{' | b'}') {
                        bytes_run.push(n);
                    } else if !skipping && n == b'~' {
                        bytes_run.push(b' ');
                    }
                    continue;
                }
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let word = std::str::from_utf8(&bytes[start..i]).unwrap_or("");
                let nstart = i;
                if i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                let num: Option<i64> = std::str::from_utf8(&bytes[nstart..i])
                    .ok()
                    .and_then(|s| s.parse().ok());
                if i < bytes.len() && bytes[i] == b' ' {
                    i += 1;
                }
                if SKIP.contains(&word) {
                    if let Some(top) = stack.last_mut() {
                        top.0 = true;
                    }
                    continue;
                }
                match word {
                    "ansicpg" => {
                        if let Some(e) = num.and_then(|n| {
                            encoding_rs::Encoding::for_label(format!("windows-{n}").as_bytes())
                        }) {
                            enc = e;
                        }
                    }
                    "uc" => {
                        if let Some(top) = stack.last_mut() {
                            top.1 = num.unwrap_or(1).max(0) as usize;
                        }
                    }
                    "u" if !skipping => {
                        flush(&mut bytes_run, &mut out, enc);
                        let n = num.unwrap_or(0);
                        let n = if n < 0 { n + 65536 } else { n };
                        out.extend(char::from_u32(n as u32));
                        skip_after_u = stack.last().map_or(1, |s| s.1);
                    }
                    "par" | "line" | "row" | "sect" | "page" if !skipping => bytes_run.push(b'\n'),
                    "tab" | "cell" if !skipping => bytes_run.push(b'\t'),
                    _ => {}
                }
            }
            b'\r' | b'\n' => i += 1,
            _ => {
                if skip_after_u > 0 {
                    skip_after_u -= 1;
                } else if !skipping {
                    bytes_run.push(c);
                }
                i += 1;
            }
        }
    }
    flush(&mut bytes_run, &mut out, enc);
    out.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rtf_text_in_code_pages_and_unicode() {
        let rtf = br"{\rtf1\ansi\ansicpg1251{\fonttbl{\f0 Arial;}}{\*\generator x;}\f0 \'cf\'f0\'e8\'e2\'b3\'f2 world\par \u1057?\u1083?\u1072?\u1074?\u1072? end}";
        assert_eq!(super::text(rtf), "Привіт world\nСлава end");
    }
}

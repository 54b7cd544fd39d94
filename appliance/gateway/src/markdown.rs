//! The Markdown models write, as the HTML subset Telegram renders: `**bold**`, `*italic*` and
//! `_italic_`, `` `code` ``, fenced code blocks (also unclosed ones, as a streamed answer has
//! them mid-way), `~~strike~~` and `[links](https://…)`. Everything else is text, escaped, so
//! the result always parses; should Telegram still refuse it, the caller sends plain text.

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// One line outside code blocks: inline code first (nothing inside it is formatting), then
/// links, then emphasis.
fn inline(line: &str, out: &mut String) {
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        match after.find('`') {
            Some(end) if end > 0 => {
                emphasis(&rest[..start], out);
                out.push_str("<code>");
                escape(&after[..end], out);
                out.push_str("</code>");
                rest = &after[end + 1..];
            }
            _ => break,
        }
    }
    emphasis(rest, out);
}

/// Paired markers become tags; an unpaired one stays as text. Single `*` and `_` open only
/// after a non-word character and close only before one, so `2*3*4` and `snake_case_names`
/// stay as written.
fn emphasis(text: &str, out: &mut String) {
    const MARKS: [(&str, &str); 5] = [
        ("**", "b"),
        ("__", "b"),
        ("~~", "s"),
        ("*", "i"),
        ("_", "i"),
    ];
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        let prev = text[..text.len() - rest.len()].chars().last();
        // A link: [label](http…)
        if let Some(stripped) = rest.strip_prefix('[')
            && let Some(close) = stripped.find("](")
            && let Some(end) = stripped[close + 2..].find(')')
        {
            let label = &stripped[..close];
            let url = &stripped[close + 2..close + 2 + end];
            if (url.starts_with("http://") || url.starts_with("https://")) && !label.is_empty() {
                out.push_str("<a href=\"");
                escape(url, out);
                out.push_str("\">");
                escape(label, out);
                out.push_str("</a>");
                rest = &stripped[close + 2 + end + 1..];
                continue;
            }
        }
        for (mark, tag) in MARKS {
            let Some(after) = rest.strip_prefix(mark) else {
                continue;
            };
            let Some(end) = after.find(mark) else {
                continue;
            };
            let inner = &after[..end];
            let next = after[end + mark.len()..].chars().next();
            let single = mark.len() == 1;
            let bounded = !single || (!word(prev) && !word(next));
            if end > 0 && !inner.starts_with(' ') && !inner.ends_with(' ') && bounded {
                out.push_str(&format!("<{tag}>"));
                emphasis(inner, out);
                out.push_str(&format!("</{tag}>"));
                rest = &after[end + mark.len()..];
                continue 'scan;
            }
        }
        let c = rest.chars().next().expect("rest is not empty");
        escape(&rest[..c.len_utf8()], out);
        rest = &rest[c.len_utf8()..];
    }
}

/// Telegram HTML for a Markdown text.
pub fn to_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() + 32);
    let mut in_code = false;
    let mut first = true;
    for line in markdown.split('\n') {
        if !first {
            out.push('\n');
        }
        first = false;
        let fence = line.trim_start().starts_with("```");
        if fence {
            if in_code {
                out.push_str("</pre>");
            } else {
                let language = line.trim_start().trim_start_matches('`').trim();
                if language.is_empty() {
                    out.push_str("<pre>");
                } else {
                    out.push_str("<pre><code class=\"language-");
                    escape(language, &mut out);
                    out.push_str("\">");
                }
            }
            in_code = !in_code;
            continue;
        }
        if in_code {
            escape(line, &mut out);
        } else if let Some(heading) = line
            .strip_prefix("### ")
            .or(line.strip_prefix("## "))
            .or(line.strip_prefix("# "))
        {
            out.push_str("<b>");
            inline(heading, &mut out);
            out.push_str("</b>");
        } else {
            inline(line, &mut out);
        }
    }
    if in_code {
        // A streamed answer in the middle of a block: close it so the message parses.
        out.push_str("</pre>");
    }
    // A block opened with a language: `<pre><code …>` needs its `</code>` too.
    fix_code_tags(&out)
}

fn fix_code_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<pre><code class=") {
        out.push_str(&rest[..start]);
        let block = &rest[start..];
        let end = block.find("</pre>").unwrap_or(block.len());
        out.push_str(&block[..end]);
        out.push_str("</code>");
        rest = &block[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_becomes_telegram_html() {
        assert_eq!(
            to_html("**bold** and *it* and _it_"),
            "<b>bold</b> and <i>it</i> and <i>it</i>"
        );
        assert_eq!(
            to_html("use `a < b` here"),
            "use <code>a &lt; b</code> here"
        );
        assert_eq!(
            to_html("see [docs](https://example.org/a?b=1&c=2)"),
            "see <a href=\"https://example.org/a?b=1&amp;c=2\">docs</a>"
        );
        assert_eq!(to_html("# Title"), "<b>Title</b>");
        assert_eq!(to_html("~~gone~~"), "<s>gone</s>");
    }

    #[test]
    fn code_blocks_and_html_in_text_are_escaped() {
        assert_eq!(
            to_html("```rust\nlet x = a<b && c>d;\n```\ndone"),
            "<pre><code class=\"language-rust\">\nlet x = a&lt;b &amp;&amp; c&gt;d;\n</code></pre>\ndone"
        );
        assert_eq!(
            to_html("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(to_html("```\nhalf a block"), "<pre>\nhalf a block</pre>");
    }

    #[test]
    fn unpaired_markers_and_identifiers_stay_text() {
        assert_eq!(to_html("2 * 3 = 6"), "2 * 3 = 6");
        assert_eq!(
            to_html("call my_snake_case_fn now"),
            "call my_snake_case_fn now"
        );
        assert_eq!(to_html("a **dangling bold"), "a **dangling bold");
        assert_eq!(
            to_html("[not a link](javascript:x)"),
            "[not a link](javascript:x)"
        );
    }
}

//! Cutting a document's text into chunks for search: at most `MAX` characters each, cut at a
//! paragraph break where one is near, else at a sentence end, else between words; never inside
//! a word unless a single word is longer than a chunk.

pub const MAX: usize = 1000;

/// The chunks of `text`, trimmed, none empty.
pub fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if rest.chars().count() <= MAX {
            out.push(rest.to_owned());
            break;
        }
        let limit = rest.char_indices().nth(MAX).map_or(rest.len(), |(i, _)| i);
        let window = &rest[..limit];
        // Only a cut past the first quarter of the window, so chunks are not tiny.
        let floor = (0..=window.len() / 4)
            .rev()
            .find(|&i| window.is_char_boundary(i))
            .unwrap_or(0);
        let cut = window[floor..]
            .rfind("\n\n")
            .map(|i| floor + i + 2)
            .or_else(|| {
                window[floor..]
                    .rmatch_indices(['.', '!', '?', '\n'])
                    .map(|(i, s)| floor + i + s.len())
                    .find(|&end| {
                        end == window.len() || window[end..].starts_with(char::is_whitespace)
                    })
            })
            .or_else(|| window.rfind(char::is_whitespace).filter(|&i| i > 0))
            .unwrap_or(limit);
        let (head, tail) = rest.split_at(cut);
        let head = head.trim();
        if !head.is_empty() {
            out.push(head.to_owned());
        }
        rest = tail.trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(chunks("  hello world \n"), ["hello world"]);
        assert!(chunks("   ").is_empty());
    }

    #[test]
    fn cuts_at_paragraphs_then_sentences_then_words() {
        let para = "a".repeat(600);
        let text = format!("{para}\n\n{para}");
        assert_eq!(chunks(&text), [para.clone(), para.clone()]);

        let sentence = format!("{}. ", "word ".repeat(100).trim());
        let text = sentence.repeat(5);
        let parts = chunks(&text);
        assert!(
            parts
                .iter()
                .all(|p| p.ends_with('.') && p.chars().count() <= MAX),
            "{parts:?}"
        );
        assert_eq!(parts.join(" "), text.trim());

        let words = "lorem ".repeat(400);
        let parts = chunks(&words);
        assert!(
            parts
                .iter()
                .all(|p| p.chars().count() <= MAX && !p.ends_with("lor"))
        );
        assert_eq!(parts.join(" "), words.trim());
    }

    #[test]
    fn a_word_longer_than_a_chunk_is_split_and_nothing_is_lost() {
        let text = format!("short {} end", "x".repeat(2500));
        let parts = chunks(&text);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX));
        assert_eq!(parts.concat().replace(' ', ""), text.replace(' ', ""));
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        let text = "Київ — столиця України. ".repeat(100);
        let parts = chunks(&text);
        assert!(parts.len() > 1);
        assert!(
            parts
                .iter()
                .all(|p| p.chars().count() <= MAX && p.ends_with('.'))
        );
    }
}

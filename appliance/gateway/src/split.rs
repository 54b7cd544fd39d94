//! Splitting a long answer into Telegram messages (at most 4096 characters each), at the best
//! boundary available: outside a code block if possible, then a paragraph, a line, a sentence,
//! a word, and only as a last resort mid-word.

/// Telegram's limit, in characters (UTF-16 code units, strictly; we count chars and keep a margin).
pub const TELEGRAM_LIMIT: usize = 4096;
const MARGIN: usize = 96;

/// The pieces of `text`, each at most `limit` characters, which joined give `text` back.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(16);
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.chars().count() > limit {
        let cut = cut_point(rest, limit);
        let (head, tail) = rest.split_at(cut);
        pieces.push(head.to_owned());
        rest = tail;
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

/// Splits for Telegram, leaving room for UTF-16 surrogate pairs.
pub fn for_telegram(text: &str) -> Vec<String> {
    split(text, TELEGRAM_LIMIT - MARGIN)
}

/// A byte index ≤ `limit` characters into `text` at the best boundary.
fn cut_point(text: &str, limit: usize) -> usize {
    let hard = text
        .char_indices()
        .nth(limit)
        .map_or(text.len(), |(i, _)| i);
    let window = &text[..hard];
    // Never cut inside a code block when the block can close in this piece.
    let fences: Vec<usize> = window.match_indices("```").map(|(i, _)| i).collect();
    let window = if fences.len() % 2 == 1 {
        // An opened block does not close here: cut before it, if that leaves something.
        let open = *fences.last().expect("odd count is non-zero");
        if open > hard / 4 {
            &window[..open]
        } else {
            window
        }
    } else {
        window
    };
    let floor = window.len() / 2;
    for boundary in ["\n\n", "\n", ". ", "! ", "? ", " "] {
        if let Some(i) = window.rfind(boundary)
            && i + boundary.len() > floor
        {
            return i + boundary.len();
        }
    }
    window.len().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(split("hello", 100), ["hello"]);
        assert_eq!(split("", 100), [""]);
    }

    #[test]
    fn pieces_respect_the_limit_and_join_back() {
        let text = "This is a sentence. ".repeat(500) + &"word ".repeat(1000);
        let pieces = for_telegram(&text);
        assert!(pieces.len() >= 3);
        assert!(pieces.iter().all(|p| p.chars().count() <= TELEGRAM_LIMIT));
        assert_eq!(pieces.concat(), text);
        assert!(pieces[0].ends_with(". "), "cut at a sentence");
    }

    #[test]
    fn code_blocks_stay_whole_when_they_fit() {
        let block = format!("```\n{}\n```", "let x = 1;\n".repeat(5));
        let text = format!("{}\n{block}\nafter", "intro ".repeat(10));
        assert!(block.chars().count() <= 70, "the block must fit one piece");
        let pieces = split(&text, 70);
        assert!(
            pieces.iter().any(|p| p.contains(&block)),
            "the block is cut: {pieces:?}"
        );
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let text = "Привіт, світ! ".repeat(400);
        let pieces = split(&text, 1000);
        assert!(pieces.iter().all(|p| p.chars().count() <= 1000));
        assert_eq!(pieces.concat(), text);
    }
}

//! A bounded in-memory tail of one unit's output, for the admin API.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

/// Longer lines are cut: one runaway line must not hold the ring's memory.
const MAX_LINE: usize = 8192;

#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub stream: &'static str,
    pub line: String,
}

#[derive(Debug)]
pub struct LogRing {
    capacity: usize,
    lines: Mutex<VecDeque<LogLine>>,
}

impl LogRing {
    pub fn new(capacity: usize) -> Self {
        LogRing {
            capacity,
            lines: Mutex::new(VecDeque::with_capacity(capacity.min(4096))),
        }
    }

    pub fn push(&self, stream: &'static str, mut line: String) {
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == self.capacity {
            lines.pop_front();
        }
        lines.push_back(LogLine {
            at: OffsetDateTime::now_utc(),
            stream,
            line,
        });
    }

    /// The last `n` lines containing `filter` (all lines when it is empty), oldest first.
    pub fn tail(&self, n: usize, filter: &str) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<LogLine> = lines
            .iter()
            .rev()
            .filter(|l| filter.is_empty() || l.line.contains(filter))
            .take(n)
            .cloned()
            .collect();
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_lines() {
        let ring = LogRing::new(3);
        for i in 0..5 {
            ring.push("stdout", format!("line {i}"));
        }
        let tail: Vec<_> = ring.tail(10, "").into_iter().map(|l| l.line).collect();
        assert_eq!(tail, vec!["line 2", "line 3", "line 4"]);
    }

    #[test]
    fn filters_and_limits() {
        let ring = LogRing::new(100);
        for i in 0..20 {
            ring.push(
                "stderr",
                format!("{} {i}", if i % 2 == 0 { "even" } else { "odd" }),
            );
        }
        let tail: Vec<_> = ring.tail(2, "odd").into_iter().map(|l| l.line).collect();
        assert_eq!(tail, vec!["odd 17", "odd 19"]);
    }

    #[test]
    fn long_lines_are_cut_on_a_char_boundary() {
        let ring = LogRing::new(2);
        ring.push("stdout", "é".repeat(MAX_LINE));
        let line = &ring.tail(1, "")[0].line;
        assert!(line.len() <= MAX_LINE + '…'.len_utf8());
        assert!(line.ends_with('…'));
    }
}

//! Building what the model sees: the system prompt with its variables filled in, what memory
//! knows about the user, and as much of the session's history as fits the model's context (the
//! rest summarised).

use daarion_llm::{Message, Role, ToolCall};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::memory::{Fact, Hit, StoredMessage};

/// A rough token count (four bytes a token, plus framing per message): the router never sees
/// the model's tokenizer, and an over-estimate only summarises a little earlier.
pub fn estimate_tokens(text: &str) -> u32 {
    u32::try_from(text.len() / 4).unwrap_or(u32::MAX) + 4
}

pub fn message_tokens(m: &Message) -> u32 {
    estimate_tokens(&m.content)
        + m.tool_calls
            .iter()
            .map(|c| estimate_tokens(&c.arguments) + estimate_tokens(&c.name))
            .sum::<u32>()
}

/// Fills `{{name}}` placeholders; unknown ones stay as written.
pub fn render_prompt(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in vars {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

/// What memory knows, as a section of the system prompt. Empty when it knows nothing.
pub fn memory_block(facts: &[Fact], hits: &[Hit], limit: usize) -> String {
    let mut block = String::new();
    if !facts.is_empty() {
        block.push_str("\n\nWhat you know about the user:\n");
        for f in facts.iter().take(limit) {
            block.push_str(&format!("- {}\n", f.content));
        }
    }
    let earlier: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.kind != "fact")
        .take(limit)
        .collect();
    if !earlier.is_empty() {
        block.push_str("\nRelated things the user said before:\n");
        for h in earlier {
            block.push_str(&format!("- {}\n", h.content));
        }
    }
    block
}

/// A history message and the id it is stored under (nil for one a client sent).
pub type Entry = (Uuid, Message);

/// Marks a stored system message as a summary of the history up to (and with) `through`.
pub fn summary_versions(through: Uuid) -> Value {
    json!({"summary": true, "through": through})
}

/// The session's stored messages as model messages: the latest summary (if any) first, then
/// everything after what it covers. A dangling tool result at the start is dropped.
pub fn history_messages(stored: &[StoredMessage]) -> (Option<String>, Vec<(Uuid, Message)>) {
    let is_summary = |m: &StoredMessage| m.role == "system" && m.versions["summary"] == true;
    let last_summary = stored.iter().rposition(is_summary);
    let (summary, start) = match last_summary {
        Some(i) => {
            let through = stored[i].versions["through"].as_str().unwrap_or_default();
            let after = stored
                .iter()
                .position(|m| m.id.to_string() == through)
                .map_or(0, |p| p + 1);
            (Some(stored[i].content.clone()), after)
        }
        None => (None, 0),
    };
    let messages = stored[start..]
        .iter()
        .filter(|m| !is_summary(m))
        .filter_map(|m| {
            let role = match m.role.as_str() {
                "user" => Role::User,
                "assistant" => Role::Assistant,
                "tool" => Role::Tool,
                _ => return None,
            };
            let tool_calls = m
                .tool_calls
                .as_ref()
                .and_then(|v| serde_json::from_value::<Vec<ToolCall>>(v.clone()).ok())
                .unwrap_or_default();
            Some((
                m.id,
                Message {
                    role,
                    content: m.content.clone(),
                    tool_calls,
                    tool_call_id: m.tool_call_id.clone(),
                },
            ))
        })
        .collect();
    (summary, drop_dangling(messages))
}

/// A tool result without the assistant call before it confuses every chat template.
fn drop_dangling(mut messages: Vec<(Uuid, Message)>) -> Vec<(Uuid, Message)> {
    let first_kept = messages
        .iter()
        .position(|(_, m)| m.role != Role::Tool)
        .unwrap_or(messages.len());
    messages.drain(..first_kept);
    messages
}

/// Splits the history into what must be summarised and what fits `budget` tokens, keeping
/// the newest messages whole and never starting the kept part inside a tool exchange.
pub fn fit(messages: Vec<Entry>, budget: u32) -> (Vec<Entry>, Vec<Entry>) {
    let mut used = 0u32;
    let mut split = messages.len();
    for (i, (_, m)) in messages.iter().enumerate().rev() {
        let cost = message_tokens(m);
        if used + cost > budget {
            break;
        }
        used += cost;
        split = i;
    }
    while split < messages.len() && messages[split].1.role == Role::Tool {
        split += 1;
    }
    let mut older = messages;
    let kept = older.split_off(split);
    (older, kept)
}

/// The text a summarising call is asked about.
pub fn transcript(messages: &[(Uuid, Message)]) -> String {
    messages
        .iter()
        .map(|(_, m)| format!("{}: {}", m.role.as_str(), m.content))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(role: &str, content: &str) -> StoredMessage {
        StoredMessage {
            id: Uuid::now_v7(),
            role: role.into(),
            content: content.into(),
            versions: json!({}),
            tool_calls: None,
            tool_call_id: None,
        }
    }

    #[test]
    fn prompt_variables() {
        assert_eq!(
            render_prompt(
                "Hi {{user_name}}, today is {{date}} {{other}}",
                &[("user_name", "Ann"), ("date", "2026-11-27")]
            ),
            "Hi Ann, today is 2026-11-27 {{other}}"
        );
    }

    #[test]
    fn summary_replaces_what_it_covers() {
        let a = stored("user", "one");
        let b = stored("assistant", "two");
        let c = stored("user", "three");
        let mut summary = stored("system", "they said one and two");
        summary.versions = summary_versions(b.id);
        let d = stored("assistant", "four");
        let (s, messages) = history_messages(&[a, b, c, summary, d]);
        assert_eq!(s.as_deref(), Some("they said one and two"));
        let texts: Vec<_> = messages.iter().map(|(_, m)| m.content.as_str()).collect();
        assert_eq!(texts, ["three", "four"]);
    }

    #[test]
    fn fit_keeps_newest_and_skips_dangling_tool_results() {
        let long = "x".repeat(400); // ~104 tokens
        let mut tool = stored("tool", "result");
        tool.tool_call_id = Some("c1".into());
        let all = vec![
            stored("user", &long),
            stored("assistant", &long),
            tool,
            stored("user", "short"),
        ];
        let (_, messages) = history_messages(&all);
        let (older, kept) = fit(messages.clone(), 30);
        assert_eq!(older.len(), 3);
        assert_eq!(kept.len(), 1);
        let (older, kept) = fit(messages, 10_000);
        assert!(older.is_empty());
        assert_eq!(kept.len(), 4);
        let (_, leading) = history_messages(&all[2..]);
        assert_eq!(leading.len(), 1, "a leading tool result is dropped");
    }
}

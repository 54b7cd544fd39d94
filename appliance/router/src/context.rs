//! Building what the model sees: the system prompt with its variables filled in, what memory
//! knows about the user, and as much of the session's history as fits the model's context (the
//! rest summarised). Pure functions; the turn does the reading, the model calls and the storing
//! (`turn::prompt`, `turn::summary`).

use daarion_llm::{ChatRequest, Message, Role, ToolCall};
use daarion_memory_client::{Fact, Hit, StoredMessage};
use daarion_settings::AgentSettings;
use serde_json::{Value, json};
use uuid::Uuid;

/// The longest summary a summarising call may write; its room is kept free in every context.
pub const SUMMARY_MAX_TOKENS: u32 = 256;

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

/// What the model is asked when the prompt quotes the user's documents: an answer that names
/// its source lets the user check it ("report.pdf, p. 3").
pub const CITE_INSTRUCTION: &str = "When you use a passage from a document below, name the \
document and the place in brackets as shown, e.g. (report.pdf, p. 3).";

/// What memory knows, as a section of the system prompt. Empty when it knows nothing.
///
/// Passages of the user's documents (chunk hits with a citation) are listed apart, each led by
/// its source (`[report.pdf, p. 3] …`), with [`CITE_INSTRUCTION`]; other hits are what the
/// user said before.
pub fn memory_block(facts: &[Fact], hits: &[Hit], limit: usize) -> String {
    let mut block = String::new();
    if !facts.is_empty() {
        block.push_str("\n\nWhat you know about the user:\n");
        for f in facts.iter().take(limit) {
            block.push_str(&format!("- {}\n", f.content));
        }
    }
    let relevant: Vec<&Hit> = hits
        .iter()
        .filter(|h| h.kind != "fact")
        .take(limit)
        .collect();
    let (documents, earlier): (Vec<&Hit>, Vec<&Hit>) =
        relevant.into_iter().partition(|h| h.citation.is_some());
    if !documents.is_empty() {
        block.push_str("\nFrom the user's documents. ");
        block.push_str(CITE_INSTRUCTION);
        block.push('\n');
        for h in documents {
            block.push_str(&format!("- {}\n", cited(h)));
        }
    }
    if !earlier.is_empty() {
        block.push_str("\nRelated things the user said before:\n");
        for h in earlier {
            block.push_str(&format!("- {}\n", h.content));
        }
    }
    block
}

/// A passage led by its source: `[report.pdf, p. 3] text`.
pub fn cited(hit: &Hit) -> String {
    match &hit.citation {
        Some(c) => format!("[{}] {}", c.cite(), hit.content),
        None => hit.content.clone(),
    }
}

/// A history message and the id it is stored under (nil for one a client sent).
pub type Entry = (Uuid, Message);

/// Marks a stored system message as a summary of the history up to (and with) `through`.
pub fn summary_versions(through: Uuid) -> Value {
    json!({"summary": true, "through": through})
}

/// The session's stored messages as model messages: the latest summary (if any) first, then
/// everything after what it covers. A dangling tool result at the start is dropped.
pub fn history_messages(stored: &[StoredMessage]) -> (Option<String>, Vec<Entry>) {
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
fn drop_dangling(mut messages: Vec<Entry>) -> Vec<Entry> {
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
pub fn transcript(messages: &[Entry]) -> String {
    messages
        .iter()
        .map(|(_, m)| format!("{}: {}", m.role.as_str(), m.content))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A history a client sent (the OpenAI API): nothing of it is stored, so no ids.
pub fn given_history(given: &[Message]) -> Vec<Entry> {
    given.iter().cloned().map(|m| (Uuid::nil(), m)).collect()
}

/// Search hits worth adding to the prompt: not the question itself, and nothing the history
/// already shows.
pub fn unseen(found: Vec<Hit>, question: Uuid, history: &[Entry]) -> Vec<Hit> {
    found
        .into_iter()
        .filter(|h| h.id != question && !history.iter().any(|(id, _)| *id == h.id))
        .collect()
}

/// The tokens the history may take: the context less the answer, the system prompt, the
/// question, and room for a summary and the tool definitions.
pub fn history_budget(settings: &AgentSettings, system: &str, question: &str) -> u32 {
    settings
        .context_tokens
        .saturating_sub(settings.max_tokens)
        .saturating_sub(estimate_tokens(system))
        .saturating_sub(estimate_tokens(question))
        .saturating_sub(SUMMARY_MAX_TOKENS)
}

/// The call that folds `older` into the running summary (`previous`).
pub fn summary_request(previous: Option<&str>, older: &[Entry]) -> ChatRequest {
    let mut text = String::new();
    if let Some(p) = previous {
        text.push_str(&format!("Earlier summary: {p}\n\n"));
    }
    text.push_str(&transcript(older));
    ChatRequest {
        model: String::new(),
        messages: vec![
            Message::new(
                Role::System,
                "Summarise the conversation below in a few sentences. Keep names, facts about the user, decisions and open questions.",
            ),
            Message::new(Role::User, text),
        ],
        tools: Vec::new(),
        temperature: Some(0.0),
        max_tokens: Some(SUMMARY_MAX_TOKENS),
    }
}

/// What the model is sent: the system prompt, the summary of what no longer fits, the history
/// that does, and the question.
pub fn assemble(
    system: String,
    summary: Option<String>,
    kept: Vec<Entry>,
    question: &str,
) -> Vec<Message> {
    let mut messages = vec![Message::new(Role::System, system)];
    if let Some(summary) = summary {
        messages.push(Message::new(
            Role::System,
            format!("Summary of the conversation so far: {summary}"),
        ));
    }
    messages.extend(kept.into_iter().map(|(_, m)| m));
    messages.push(Message::new(Role::User, question));
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use daarion_memory_client::{Citation, Locator};

    fn stored(role: &str, content: &str) -> StoredMessage {
        StoredMessage {
            id: Uuid::now_v7(),
            session_id: Uuid::nil(),
            role: role.into(),
            content: content.into(),
            agent_id: None,
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            trace_id: None,
            versions: json!({}),
            tool_calls: None,
            tool_call_id: None,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
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

    #[test]
    fn the_request_is_system_summary_history_question() {
        let kept = vec![(Uuid::nil(), Message::new(Role::Assistant, "earlier"))];
        let messages = assemble("be kind".into(), Some("they met".into()), kept, "and now?");
        let parts: Vec<_> = messages
            .iter()
            .map(|m| (m.role, m.content.as_str()))
            .collect();
        assert_eq!(
            parts,
            [
                (Role::System, "be kind"),
                (Role::System, "Summary of the conversation so far: they met"),
                (Role::Assistant, "earlier"),
                (Role::User, "and now?"),
            ]
        );
        assert_eq!(assemble("s".into(), None, Vec::new(), "q").len(), 2);
    }

    #[test]
    fn the_history_gets_what_the_rest_leaves() {
        let settings = AgentSettings {
            context_tokens: 1024,
            max_tokens: 128,
            ..AgentSettings::default()
        };
        let system = "x".repeat(400);
        assert_eq!(
            history_budget(&settings, &system, "hi"),
            1024 - 128 - estimate_tokens(&system) - estimate_tokens("hi") - SUMMARY_MAX_TOKENS
        );
        let tiny = AgentSettings {
            context_tokens: 100,
            ..settings
        };
        assert_eq!(history_budget(&tiny, &system, "hi"), 0, "never below zero");
    }

    #[test]
    fn hits_already_in_view_are_not_repeated() {
        let hit = |id: Uuid| Hit {
            kind: "message".into(),
            id,
            content: "c".into(),
            score: 1.0,
            why: String::new(),
            matched_by: Vec::new(),
            similarity: None,
            citation: None,
        };
        let (question, shown, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let history = vec![(shown, Message::new(Role::User, "shown"))];
        let kept = unseen(
            vec![hit(question), hit(shown), hit(other)],
            question,
            &history,
        );
        assert_eq!(kept.iter().map(|h| h.id).collect::<Vec<_>>(), [other]);
    }

    #[test]
    fn a_summary_builds_on_the_previous_one() {
        let older = vec![(Uuid::nil(), Message::new(Role::User, "one"))];
        let request = summary_request(Some("before"), &older);
        assert_eq!(request.max_tokens, Some(SUMMARY_MAX_TOKENS));
        assert_eq!(
            request.messages[1].content,
            "Earlier summary: before\n\nuser: one"
        );
        let first = summary_request(None, &older);
        assert_eq!(first.messages[1].content, "user: one");
    }

    fn hit(kind: &str, content: &str, citation: Option<Citation>) -> Hit {
        Hit {
            kind: kind.into(),
            id: Uuid::now_v7(),
            content: content.into(),
            score: 1.0,
            why: String::new(),
            matched_by: Vec::new(),
            similarity: None,
            citation,
        }
    }

    fn citation(title: &str, locator: Option<Locator>) -> Option<Citation> {
        Some(Citation {
            document_id: Uuid::now_v7(),
            title: title.into(),
            attachment_id: Some(Uuid::now_v7()),
            locator,
            headings: Vec::new(),
        })
    }

    #[test]
    fn document_passages_are_led_by_their_source() {
        for (citation, expected) in [
            (
                citation("report.pdf", Some(Locator::Page { page: 3 })),
                "[report.pdf, p. 3] revenue grew",
            ),
            (
                citation(
                    "budget.xlsx",
                    Some(Locator::Sheet {
                        name: "Q1".into(),
                        index: 1,
                    }),
                ),
                "[budget.xlsx, sheet \"Q1\"] revenue grew",
            ),
            (
                citation("deck.pptx", Some(Locator::Slide { slide: 4 })),
                "[deck.pptx, slide 4] revenue grew",
            ),
            (
                citation(
                    "call.ogg",
                    Some(Locator::Time {
                        start_ms: 60_000,
                        end_ms: 120_000,
                    }),
                ),
                "[call.ogg, 1:00–2:00] revenue grew",
            ),
            (
                citation("notes.txt", Some(Locator::Whole)),
                "[notes.txt] revenue grew",
            ),
            (citation("notes.md", None), "[notes.md] revenue grew"),
            (None, "revenue grew"),
        ] {
            assert_eq!(cited(&hit("chunk", "revenue grew", citation)), expected);
        }
    }

    #[test]
    fn the_memory_block_separates_documents_from_what_was_said() {
        let facts = vec![];
        let hits = vec![
            hit("message", "I like tea", None),
            hit(
                "chunk",
                "revenue grew 12%",
                citation("report.pdf", Some(Locator::Page { page: 3 })),
            ),
            hit("fact", "a fact hit is shown as a fact", None),
        ];
        let block = memory_block(&facts, &hits, 5);
        assert_eq!(
            block,
            format!(
                "\nFrom the user's documents. {CITE_INSTRUCTION}\n- [report.pdf, p. 3] revenue grew 12%\n\
                 \nRelated things the user said before:\n- I like tea\n"
            )
        );
        let said_only = memory_block(&facts, &hits[..1], 5);
        assert!(!said_only.contains(CITE_INSTRUCTION), "{said_only}");
        assert_eq!(memory_block(&facts, &[], 5), "");
        // The limit counts every hit shown, documents and messages together.
        let one = memory_block(&facts, &hits, 1);
        assert!(
            one.contains("I like tea") && !one.contains("report.pdf"),
            "{one}"
        );
    }
}

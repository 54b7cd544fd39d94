//! Reading an agent's answer when the model gave no native tool calls: CrewAI's ReAct text
//! (`Thought:` … `Action:` / `Action Input:` or `Final Answer:`). Small local models often get
//! the format slightly wrong; what can be repaired is (JSON wrapped in prose or fences, a bare
//! string as input), and what cannot is a [`ParseError`] the agent is shown once.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Final(String),
    Action { tool: String, input: Value },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("your answer has neither `Final Answer:` nor `Action:` with `Action Input:`")]
    NoMarker,
    #[error("`Action:` names no tool")]
    NoTool,
    #[error("`Action:` names `{0}`, which is not one of your tools")]
    UnknownTool(String),
}

/// `tools` are the names the agent may call. With none, text without markers is the answer:
/// there is nothing else it could mean.
pub fn parse(text: &str, tools: &[String]) -> Result<Parsed, ParseError> {
    if let Some(at) = find(text, "final answer:") {
        let answer = text[at + "final answer:".len()..].trim();
        return Ok(Parsed::Final(answer.to_owned()));
    }
    if let Some(at) = find(text, "action:") {
        let rest = &text[at + "action:".len()..];
        let (tool_line, after) = rest.split_once('\n').unwrap_or((rest, ""));
        let tool = tool_line
            .trim()
            .trim_matches(|c: char| c == '`' || c == '"' || c == '\'')
            .to_owned();
        if tool.is_empty() {
            return Err(ParseError::NoTool);
        }
        if !tools.iter().any(|t| t == &tool) {
            return Err(ParseError::UnknownTool(tool));
        }
        let input = match find(after, "action input:") {
            Some(i) => repair_input(&after[i + "action input:".len()..]),
            None => Value::Object(Default::default()),
        };
        return Ok(Parsed::Action { tool, input });
    }
    if tools.is_empty() && !text.trim().is_empty() {
        return Ok(Parsed::Final(text.trim().to_owned()));
    }
    Err(ParseError::NoMarker)
}

/// The first JSON object in `text` (fences and prose around it ignored), else the text itself
/// as `{"input": …}`.
pub fn repair_input(text: &str) -> Value {
    let text = text.split("\nObservation").next().unwrap_or(text).trim();
    if let Some(value) = first_json(text) {
        return value;
    }
    serde_json::json!({ "input": text.trim_matches('`').trim() })
}

/// The first JSON object or array in `text`, if any parses.
pub fn first_json(text: &str) -> Option<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(text.trim()) {
        return Some(v);
    }
    for (start, c) in text.char_indices().filter(|(_, c)| *c == '{' || *c == '[') {
        let close = if c == '{' { '}' } else { ']' };
        for (end, _) in text[start..]
            .char_indices()
            .rev()
            .filter(|(_, e)| *e == close)
        {
            if let Ok(v) = serde_json::from_str::<Value>(&text[start..start + end + 1]) {
                return Some(v);
            }
        }
    }
    None
}

fn find(text: &str, marker: &str) -> Option<usize> {
    text.to_ascii_lowercase().find(marker)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_react_text() {
        let tools = vec!["web_search".to_owned()];
        let cases: &[(&str, Result<Parsed, ParseError>)] = &[
            (
                "Thought: done\nFinal Answer: 42",
                Ok(Parsed::Final("42".into())),
            ),
            (
                "Action: web_search\nAction Input: {\"query\": \"x\"}",
                Ok(Parsed::Action {
                    tool: "web_search".into(),
                    input: json!({"query": "x"}),
                }),
            ),
            (
                "Action: `web_search`\nAction Input: ```json\n{\"query\": \"y\"}\n```",
                Ok(Parsed::Action {
                    tool: "web_search".into(),
                    input: json!({"query": "y"}),
                }),
            ),
            (
                "Action: web_search\nAction Input: cheap flights",
                Ok(Parsed::Action {
                    tool: "web_search".into(),
                    input: json!({"input": "cheap flights"}),
                }),
            ),
            (
                "Action: shell\nAction Input: {}",
                Err(ParseError::UnknownTool("shell".into())),
            ),
            ("I think the answer is 42", Err(ParseError::NoMarker)),
        ];
        for (text, want) in cases {
            assert_eq!(&parse(text, &tools), want, "{text}");
        }
        assert_eq!(
            parse("just text", &[]),
            Ok(Parsed::Final("just text".into()))
        );
    }
}

//! What a step request may carry: bounded in count and size (413), and well formed (422), before
//! anything is looked up or reserved.

use daarion_router_client::{
    MAX_IDEMPOTENCY_KEY, MAX_STEP_MESSAGES, MAX_STEP_TEXT_BYTES, StepRequest, ToolRequest,
};
use serde_json::Value;

use crate::RouterError;

/// Tools offered to one model call.
pub const MAX_STEP_TOOLS: usize = 32;
const MAX_AGENT_ID: usize = 64;
const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];

fn no_nul(field: &'static str, text: &str) -> Result<(), RouterError> {
    if text.contains('\0') {
        return Err(RouterError::invalid(field, "contains a NUL character"));
    }
    Ok(())
}

fn key(key: &str) -> Result<(), RouterError> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(RouterError::invalid(
            "idempotency_key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} bytes"),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(RouterError::invalid(
            "idempotency_key",
            "contains a control character",
        ));
    }
    Ok(())
}

fn agent(id: &str) -> Result<(), RouterError> {
    if id.is_empty() || id.len() > MAX_AGENT_ID {
        return Err(RouterError::invalid(
            "agent_id",
            format!("must be 1 to {MAX_AGENT_ID} bytes"),
        ));
    }
    no_nul("agent_id", id)
}

/// The bytes of every string in a JSON value, refusing NUL in any of them.
fn value_text(field: &'static str, value: &Value) -> Result<usize, RouterError> {
    Ok(match value {
        Value::String(s) => {
            no_nul(field, s)?;
            s.len()
        }
        Value::Array(items) => items
            .iter()
            .map(|v| value_text(field, v))
            .sum::<Result<usize, _>>()?,
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                no_nul(field, k)?;
                Ok(k.len() + value_text(field, v)?)
            })
            .sum::<Result<usize, RouterError>>()?,
        _ => 0,
    })
}

fn total(what: &'static str, size: usize) -> Result<(), RouterError> {
    if size > MAX_STEP_TEXT_BYTES {
        return Err(RouterError::StepTooLarge {
            what,
            size,
            limit: MAX_STEP_TEXT_BYTES,
        });
    }
    Ok(())
}

pub fn llm(step: &StepRequest) -> Result<(), RouterError> {
    key(&step.idempotency_key)?;
    agent(&step.agent_id)?;
    if step.messages.is_empty() {
        return Err(RouterError::invalid("messages", "at least one is needed"));
    }
    if step.messages.len() > MAX_STEP_MESSAGES {
        return Err(RouterError::StepTooLarge {
            what: "the number of messages",
            size: step.messages.len(),
            limit: MAX_STEP_MESSAGES,
        });
    }
    if step.tools.len() > MAX_STEP_TOOLS {
        return Err(RouterError::StepTooLarge {
            what: "the number of tools",
            size: step.tools.len(),
            limit: MAX_STEP_TOOLS,
        });
    }
    if let Some(model) = &step.model {
        if model.is_empty() || model.len() > 200 {
            return Err(RouterError::invalid("model", "must be 1 to 200 bytes"));
        }
        no_nul("model", model)?;
    }
    if step.max_tokens == Some(0) {
        return Err(RouterError::invalid("max_tokens", "must be positive"));
    }
    let mut size = 0;
    for m in &step.messages {
        if !ROLES.contains(&m.role.as_str()) {
            return Err(RouterError::invalid(
                "messages",
                format!("role `{}` is not one of {}", m.role, ROLES.join(", ")),
            ));
        }
        no_nul("messages", &m.content)?;
        size += m.content.len();
        for call in &m.tool_calls {
            no_nul("messages", &call.id)?;
            no_nul("messages", &call.name)?;
            size += call.id.len() + call.name.len() + value_text("messages", &call.arguments)?;
        }
        if let Some(id) = &m.tool_call_id {
            no_nul("messages", id)?;
            size += id.len();
        }
    }
    if let Some(schema) = &step.json_schema {
        size += value_text("json_schema", schema)?;
    }
    total("the text of the step", size)
}

pub fn tool(step: &ToolRequest) -> Result<(), RouterError> {
    key(&step.idempotency_key)?;
    agent(&step.agent_id)?;
    no_nul("name", &step.name)?;
    total(
        "the tool's arguments",
        value_text("arguments", &step.arguments)?,
    )
}

#[cfg(test)]
mod tests {
    use daarion_router_client::StepMessage;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn step() -> StepRequest {
        StepRequest {
            user_id: Uuid::nil(),
            agent_id: "a".into(),
            model: None,
            messages: vec![StepMessage::new("user", "hi")],
            tools: Vec::new(),
            max_tokens: None,
            json_schema: None,
            idempotency_key: "run/1".into(),
        }
    }

    /// (what, how the step is changed, the status it gets; 0 when it passes)
    type Case = (&'static str, fn(&mut StepRequest), u16);

    #[test]
    fn steps_out_of_bounds_are_refused_with_their_status() {
        let cases: [Case; 9] = [
            ("fine", |_| {}, 0),
            ("empty key", |s| s.idempotency_key.clear(), 422),
            ("long key", |s| s.idempotency_key = "k".repeat(201), 422),
            ("NUL key", |s| s.idempotency_key = "a\0b".into(), 422),
            ("no messages", |s| s.messages.clear(), 422),
            ("bad role", |s| s.messages[0].role = "god".into(), 422),
            ("NUL text", |s| s.messages[0].content = "a\0".into(), 422),
            (
                "many messages",
                |s| s.messages = vec![StepMessage::new("user", "x"); MAX_STEP_MESSAGES + 1],
                413,
            ),
            (
                "long text",
                |s| s.messages[0].content = "x".repeat(MAX_STEP_TEXT_BYTES + 1),
                413,
            ),
        ];
        for (name, change, status) in cases {
            let mut s = step();
            change(&mut s);
            let got = llm(&s).err().map_or(0, |e| e.status_code().0.as_u16());
            assert_eq!(got, status, "{name}");
        }
        let mut t = ToolRequest {
            user_id: Uuid::nil(),
            agent_id: "a".into(),
            session_id: None,
            name: "remember_fact".into(),
            arguments: json!({"fact": "a\u{0}b"}),
            idempotency_key: "k".into(),
        };
        assert_eq!(tool(&t).unwrap_err().status_code().0, 422);
        t.arguments = json!({"fact": "x".repeat(MAX_STEP_TEXT_BYTES + 1)});
        assert_eq!(tool(&t).unwrap_err().status_code().0, 413);
    }
}

//! What makes a crew definition storable, each refusal a 422 naming the field.

use std::collections::{HashMap, HashSet};

use daarion_crews_client::{CrewSpec, Process};

use crate::CrewsError;

pub const MAX_AGENTS: usize = 32;
pub const MAX_TASKS: usize = 64;
const MAX_TOOLS: usize = 32;
const MAX_CONTEXT: usize = 64;
/// Short texts (names, roles, goals) and long ones (backstories, descriptions).
const SHORT: usize = 4 * 1024;
const LONG: usize = 16 * 1024;
const MAX_MAX_ITER: u32 = 200;
const MAX_RETRY: u32 = 10;

/// `^[a-z0-9][a-z0-9_-]{0,63}$`: a crew's id.
pub fn crew_id(id: &str) -> Result<(), CrewsError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && id.as_bytes()[0] != b'_'
        && id.as_bytes()[0] != b'-';
    if ok {
        Ok(())
    } else {
        Err(CrewsError::invalid(
            "id",
            format!("`{id}` is not a crew id (lower-case letters, digits, `_`, `-`; up to 64)"),
        ))
    }
}

/// An agent's or task's key, as CrewAI's YAML keys are: letters, digits, `_`, `-`.
fn key(field: &str, key: &str) -> Result<(), CrewsError> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CrewsError::invalid(
            field,
            format!("`{key}` is not a key (letters, digits, `_`, `-`; up to 64)"),
        ))
    }
}

fn text(field: impl Into<String>, value: &str, max: usize) -> Result<(), CrewsError> {
    if value.contains('\0') {
        return Err(CrewsError::invalid(field, "contains a NUL character"));
    }
    if value.len() > max {
        return Err(CrewsError::invalid(
            field,
            format!("is {} bytes; at most {max}", value.len()),
        ));
    }
    Ok(())
}

fn required(field: impl Into<String>, value: &str, max: usize) -> Result<(), CrewsError> {
    let field = field.into();
    if value.trim().is_empty() {
        return Err(CrewsError::invalid(field, "must not be empty"));
    }
    text(field, value, max)
}

fn tools(field: &str, tools: &[String]) -> Result<(), CrewsError> {
    if tools.len() > MAX_TOOLS {
        return Err(CrewsError::invalid(
            field,
            format!("{} tools; at most {MAX_TOOLS}", tools.len()),
        ));
    }
    for (i, tool) in tools.iter().enumerate() {
        key(&format!("{field}[{i}]"), tool)?;
    }
    Ok(())
}

/// Checks `spec` whole; the first problem found is the answer.
pub fn spec(spec: &CrewSpec) -> Result<(), CrewsError> {
    crew_id(&spec.id)?;
    text("name", &spec.name, 200)?;
    text("description", &spec.description, LONG)?;
    for (field, value) in [("agent", &spec.agent), ("manager_llm", &spec.manager_llm)] {
        if let Some(value) = value {
            required(field, value, 200)?;
        }
    }
    budget(&spec.budget)?;
    if spec.agents.is_empty() || spec.agents.len() > MAX_AGENTS {
        return Err(CrewsError::invalid(
            "agents",
            format!("{} agents; from 1 to {MAX_AGENTS}", spec.agents.len()),
        ));
    }
    if spec.tasks.is_empty() || spec.tasks.len() > MAX_TASKS {
        return Err(CrewsError::invalid(
            "tasks",
            format!("{} tasks; from 1 to {MAX_TASKS}", spec.tasks.len()),
        ));
    }
    let mut agents = HashSet::new();
    for agent in &spec.agents {
        let at = |f: &str| format!("agents.{}.{f}", agent.key);
        key("agents[].key", &agent.key)?;
        if !agents.insert(agent.key.as_str()) {
            return Err(CrewsError::invalid(
                "agents",
                format!("agent `{}` appears twice", agent.key),
            ));
        }
        required(at("role"), &agent.role, SHORT)?;
        required(at("goal"), &agent.goal, SHORT)?;
        text(at("backstory"), &agent.backstory, LONG)?;
        if let Some(llm) = &agent.llm {
            required(at("llm"), llm, 200)?;
        }
        tools(&at("tools"), &agent.tools)?;
        if agent.max_iter == 0 || agent.max_iter > MAX_MAX_ITER {
            return Err(CrewsError::invalid(
                at("max_iter"),
                format!("from 1 to {MAX_MAX_ITER}"),
            ));
        }
        if agent.max_rpm == Some(0) {
            return Err(CrewsError::invalid(at("max_rpm"), "must be at least 1"));
        }
        if agent.max_retry_limit > MAX_RETRY {
            return Err(CrewsError::invalid(
                at("max_retry_limit"),
                format!("at most {MAX_RETRY}"),
            ));
        }
    }
    // Keys first: a context naming a duplicated key would otherwise be judged by the wrong one.
    let mut position: HashMap<&str, usize> = HashMap::new();
    for (i, task) in spec.tasks.iter().enumerate() {
        key("tasks[].key", &task.key)?;
        if position.insert(task.key.as_str(), i).is_some() {
            return Err(CrewsError::invalid(
                "tasks",
                format!("task `{}` appears twice", task.key),
            ));
        }
    }
    for (i, task) in spec.tasks.iter().enumerate() {
        let at = |f: &str| format!("tasks.{}.{f}", task.key);
        required(at("description"), &task.description, LONG)?;
        text(at("expected_output"), &task.expected_output, LONG)?;
        if let Some(guardrail) = &task.guardrail {
            required(at("guardrail"), guardrail, SHORT)?;
        }
        match &task.agent {
            Some(agent) if !agents.contains(agent.as_str()) => {
                return Err(CrewsError::invalid(
                    at("agent"),
                    format!("`{agent}` is not an agent of this crew"),
                ));
            }
            None if spec.process == Process::Sequential => {
                return Err(CrewsError::invalid(
                    at("agent"),
                    "a sequential crew's task names its agent (only a hierarchical crew's manager chooses)",
                ));
            }
            _ => {}
        }
        tools(&at("tools"), &task.tools)?;
        if task.context.len() > MAX_CONTEXT {
            return Err(CrewsError::invalid(at("context"), "too many tasks named"));
        }
        for name in &task.context {
            match position.get(name.as_str()) {
                None => {
                    return Err(CrewsError::invalid(
                        at("context"),
                        format!("`{name}` is not a task of this crew"),
                    ));
                }
                Some(&j) if j >= i => {
                    let why = if reaches(spec, j, i) {
                        format!("`{name}` and `{}` depend on each other (a cycle)", task.key)
                    } else {
                        format!("`{name}` comes later; a task sees only earlier tasks' outputs")
                    };
                    return Err(CrewsError::invalid(at("context"), why));
                }
                Some(_) => {}
            }
        }
        if let Some(schema) = &task.output_json
            && !schema.is_object()
        {
            return Err(CrewsError::invalid(
                at("output_json"),
                "must be a JSON schema (an object)",
            ));
        }
    }
    Ok(())
}

/// Whether task `from` depends, through `context`, on task `to` (or is it).
fn reaches(spec: &CrewSpec, from: usize, to: usize) -> bool {
    let mut stack = vec![from];
    let mut seen = HashSet::new();
    while let Some(i) = stack.pop() {
        if i == to {
            return true;
        }
        if !seen.insert(i) {
            continue;
        }
        for name in &spec.tasks[i].context {
            if let Some(j) = spec.tasks.iter().position(|t| &t.key == name) {
                stack.push(j);
            }
        }
    }
    false
}

pub fn budget(budget: &daarion_crews_client::Budget) -> Result<(), CrewsError> {
    for (field, value) in [
        ("budget.max_cost", budget.max_cost),
        ("budget.max_gpu_seconds", budget.max_gpu_seconds),
    ] {
        if let Some(v) = value
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(CrewsError::invalid(field, "must be a number ≥ 0"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use daarion_crews_client::{CrewAgent, CrewTask};

    fn agent(key: &str) -> CrewAgent {
        CrewAgent {
            key: key.into(),
            role: "Researcher".into(),
            goal: "Find things".into(),
            backstory: String::new(),
            llm: None,
            tools: vec![],
            allow_delegation: false,
            max_iter: 20,
            max_rpm: None,
            max_retry_limit: 2,
        }
    }

    fn task(key: &str, context: &[&str]) -> CrewTask {
        CrewTask {
            key: key.into(),
            description: "Do {topic}".into(),
            expected_output: "A list".into(),
            agent: Some("a".into()),
            context: context.iter().map(|s| (*s).into()).collect(),
            tools: vec![],
            async_execution: false,
            human_input: false,
            output_json: None,
            guardrail: None,
        }
    }

    fn crew() -> CrewSpec {
        CrewSpec {
            id: "c".into(),
            name: String::new(),
            description: String::new(),
            process: Process::Sequential,
            agent: None,
            manager_llm: None,
            agents: vec![agent("a")],
            tasks: vec![task("t1", &[]), task("t2", &["t1"])],
            budget: Default::default(),
        }
    }

    #[test]
    fn refusals_name_their_field() {
        type Edit = fn(&mut CrewSpec);
        let cases: [(&str, Edit, &str); 12] = [
            ("bad id", |s| s.id = "Bad Id".into(), "id"),
            ("no agents", |s| s.agents.clear(), "agents"),
            ("dup agent", |s| s.agents.push(agent("a")), "agents"),
            ("dup task", |s| s.tasks.push(task("t1", &[])), "tasks"),
            (
                "unknown agent",
                |s| s.tasks[0].agent = Some("x".into()),
                "tasks.t1.agent",
            ),
            (
                "unknown context",
                |s| s.tasks[1].context = vec!["nope".into()],
                "tasks.t2.context",
            ),
            (
                "later context",
                |s| s.tasks[0].context = vec!["t2".into()],
                "tasks.t1.context",
            ),
            ("nul", |s| s.agents[0].goal = "a\0b".into(), "agents.a.goal"),
            (
                "long",
                |s| s.tasks[0].description = "x".repeat(LONG + 1),
                "tasks.t1.description",
            ),
            (
                "too many tasks",
                |s| {
                    s.tasks = (0..=MAX_TASKS)
                        .map(|i| task(&format!("t{i}"), &[]))
                        .collect()
                },
                "tasks",
            ),
            (
                "max_iter",
                |s| s.agents[0].max_iter = 0,
                "agents.a.max_iter",
            ),
            (
                "no agent in sequential",
                |s| s.tasks[0].agent = None,
                "tasks.t1.agent",
            ),
        ];
        assert!(spec(&crew()).is_ok());
        for (what, edit, field) in cases {
            let mut s = crew();
            edit(&mut s);
            match spec(&s) {
                Err(CrewsError::Invalid { field: f, .. }) => assert_eq!(f, field, "{what}"),
                other => panic!("{what}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_cycle_is_called_one() {
        let mut s = crew();
        s.tasks[0].context = vec!["t2".into()];
        let Err(CrewsError::Invalid { message, .. }) = spec(&s) else {
            panic!()
        };
        assert!(message.contains("cycle"), "{message}");
        s.tasks[0].context = vec!["t1".into()];
        let Err(CrewsError::Invalid { message, .. }) = spec(&s) else {
            panic!()
        };
        assert!(message.contains("cycle"), "self-reference: {message}");
    }
}

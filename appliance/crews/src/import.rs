//! A CrewAI project's `agents.yaml` + `tasks.yaml` made a [`CrewSpec`]: the keys this
//! appliance uses are taken, every other key is reported as a path (`agents.researcher.verbose`)
//! so nothing is dropped silently, and the `{placeholder}`s the texts use are listed as the
//! inputs a run must give.

use std::collections::BTreeSet;

use daarion_crews_client::{CrewAgent, CrewSpec, CrewTask, ImportReport, ImportRequest};
use serde_json::Value as Json;
use serde_yaml_ng::{Mapping, Value};

use crate::CrewsError;

/// Each file's limit: CrewAI projects' YAML is a few KiB; this bounds what a parser is given.
pub const MAX_YAML_BYTES: usize = 256 * 1024;

const AGENT_KEYS: [&str; 9] = [
    "role",
    "goal",
    "backstory",
    "llm",
    "tools",
    "allow_delegation",
    "max_iter",
    "max_rpm",
    "max_retry_limit",
];

const TASK_KEYS: [&str; 9] = [
    "description",
    "expected_output",
    "agent",
    "context",
    "tools",
    "async_execution",
    "human_input",
    "output_json",
    "guardrail",
];

/// Reads the two files; `validate` runs afterwards on the spec.
pub fn import(request: &ImportRequest) -> Result<ImportReport, CrewsError> {
    let mut report = Report::default();
    let agents = mapping("agents_yaml", &request.agents_yaml)?;
    let tasks = mapping("tasks_yaml", &request.tasks_yaml)?;
    let agents = agents
        .iter()
        .map(|(k, v)| agent(&mut report, k, v))
        .collect::<Result<Vec<_>, _>>()?;
    let tasks = tasks
        .iter()
        .map(|(k, v)| task(&mut report, k, v))
        .collect::<Result<Vec<_>, _>>()?;
    for text in agents
        .iter()
        .flat_map(|a| [&a.role, &a.goal, &a.backstory])
        .chain(
            tasks
                .iter()
                .flat_map(|t| [&t.description, &t.expected_output]),
        )
    {
        placeholders(text, &mut report.inputs);
    }
    let spec = CrewSpec {
        id: request.id.clone(),
        name: if request.name.is_empty() {
            request.id.clone()
        } else {
            request.name.clone()
        },
        description: String::new(),
        process: request.process,
        agent: None,
        manager_llm: None,
        agents,
        tasks,
        budget: Default::default(),
    };
    Ok(ImportReport {
        spec,
        version: None,
        unknown_keys: report.unknown,
        inputs: report.inputs.into_iter().collect(),
        warnings: report.warnings,
    })
}

#[derive(Default)]
struct Report {
    unknown: Vec<String>,
    inputs: BTreeSet<String>,
    warnings: Vec<String>,
}

fn mapping(field: &str, yaml: &str) -> Result<Mapping, CrewsError> {
    if yaml.len() > MAX_YAML_BYTES {
        return Err(CrewsError::invalid(
            field,
            format!("is {} bytes; at most {MAX_YAML_BYTES}", yaml.len()),
        ));
    }
    if yaml.contains('\0') {
        return Err(CrewsError::invalid(field, "contains a NUL character"));
    }
    match serde_yaml_ng::from_str::<Value>(yaml) {
        Ok(Value::Mapping(m)) => Ok(m),
        Ok(Value::Null) => Ok(Mapping::new()),
        Ok(_) => Err(CrewsError::invalid(
            field,
            "must be a mapping of keys to entries, as CrewAI's is",
        )),
        Err(e) => Err(CrewsError::invalid(field, format!("is not YAML: {e}"))),
    }
}

fn name(file: &str, key: &Value) -> Result<String, CrewsError> {
    match key {
        Value::String(s) => Ok(s.clone()),
        other => Err(CrewsError::invalid(
            file,
            format!("entry key {other:?} is not a name"),
        )),
    }
}

/// One entry's fields by name, unknown ones reported under `prefix`.
struct Entry<'a> {
    path: String,
    fields: &'a Mapping,
}

impl<'a> Entry<'a> {
    fn new(
        report: &mut Report,
        path: String,
        value: &'a Value,
        known: &[&str],
    ) -> Result<Entry<'a>, CrewsError> {
        let Value::Mapping(fields) = value else {
            return Err(CrewsError::invalid(path, "must be a mapping of fields"));
        };
        for key in fields.keys() {
            let key = match key {
                Value::String(s) => s.clone(),
                other => format!("{other:?}"),
            };
            if !known.contains(&key.as_str()) {
                report.unknown.push(format!("{path}.{key}"));
            }
        }
        Ok(Entry { path, fields })
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.fields.get(key).filter(|v| !v.is_null())
    }

    fn at(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn text(&self, key: &str) -> Result<Option<String>, CrewsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim_end().to_owned())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(CrewsError::invalid(self.at(key), "must be text")),
        }
    }

    fn flag(&self, key: &str) -> Result<bool, CrewsError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(CrewsError::invalid(self.at(key), "must be true or false")),
        }
    }

    fn number(&self, key: &str) -> Result<Option<u32>, CrewsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| CrewsError::invalid(self.at(key), "must be a whole number ≥ 0")),
            Some(_) => Err(CrewsError::invalid(self.at(key), "must be a number")),
        }
    }

    /// A list of names (`tools: [search, scrape]`); a single name is taken as a list of one.
    fn names(&self, key: &str) -> Result<Vec<String>, CrewsError> {
        match self.get(key) {
            None => Ok(vec![]),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(CrewsError::invalid(self.at(key), "must be a list of names")),
                })
                .collect(),
            Some(_) => Err(CrewsError::invalid(self.at(key), "must be a list of names")),
        }
    }
}

fn agent(report: &mut Report, key: &Value, value: &Value) -> Result<CrewAgent, CrewsError> {
    let key = name("agents_yaml", key)?;
    let e = Entry::new(report, format!("agents.{key}"), value, &AGENT_KEYS)?;
    Ok(CrewAgent {
        role: e.text("role")?.unwrap_or_default(),
        goal: e.text("goal")?.unwrap_or_default(),
        backstory: e.text("backstory")?.unwrap_or_default(),
        llm: e.text("llm")?,
        tools: e.names("tools")?,
        allow_delegation: e.flag("allow_delegation")?,
        max_iter: e.number("max_iter")?.unwrap_or(20),
        max_rpm: e.number("max_rpm")?,
        max_retry_limit: e.number("max_retry_limit")?.unwrap_or(2),
        key,
    })
}

fn task(report: &mut Report, key: &Value, value: &Value) -> Result<CrewTask, CrewsError> {
    let key = name("tasks_yaml", key)?;
    let e = Entry::new(report, format!("tasks.{key}"), value, &TASK_KEYS)?;
    let output_json = match e.get("output_json") {
        None => None,
        Some(Value::String(class)) => {
            // CrewAI names a Pydantic class here; only a schema can be checked without Python.
            report.warnings.push(format!(
                "tasks.{key}.output_json names `{class}` (a Python class): give its JSON schema to have outputs checked"
            ));
            None
        }
        Some(schema) => Some(
            serde_json::to_value(schema)
                .ok()
                .filter(Json::is_object)
                .ok_or_else(|| {
                    CrewsError::invalid(e.at("output_json"), "must be a JSON schema (a mapping)")
                })?,
        ),
    };
    Ok(CrewTask {
        description: e.text("description")?.unwrap_or_default(),
        expected_output: e.text("expected_output")?.unwrap_or_default(),
        agent: e.text("agent")?,
        context: e.names("context")?,
        tools: e.names("tools")?,
        async_execution: e.flag("async_execution")?,
        human_input: e.flag("human_input")?,
        output_json,
        guardrail: e.text("guardrail")?,
        key,
    })
}

/// `{name}` in `text`, as CrewAI interpolates inputs (`{{` escapes nothing there either).
pub(crate) fn placeholders(text: &str, into: &mut BTreeSet<String>) {
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find('}') else { break };
        let name = &rest[..close];
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            into.insert(name.to_owned());
            rest = &rest[close + 1..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_names_in_braces() {
        let mut found = BTreeSet::new();
        placeholders(
            "Research {topic} in {current_year}; not {} nor {a b} nor {json: 1}",
            &mut found,
        );
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            vec!["current_year", "topic"]
        );
    }

    #[test]
    fn unknown_keys_are_paths_and_types_are_checked() {
        let request = ImportRequest {
            id: "x".into(),
            name: String::new(),
            process: Default::default(),
            agents_yaml: "a:\n  role: R\n  goal: G\n  verbose: true\n".into(),
            tasks_yaml: "t:\n  description: D {x}\n  agent: a\n  callback: f\n".into(),
            dry_run: true,
        };
        let report = import(&request).unwrap();
        assert_eq!(
            report.unknown_keys,
            vec!["agents.a.verbose", "tasks.t.callback"]
        );
        assert_eq!(report.inputs, vec!["x"]);
        let bad = ImportRequest {
            agents_yaml: "a:\n  role: R\n  goal: G\n  max_iter: lots\n".into(),
            ..request.clone()
        };
        match import(&bad) {
            Err(CrewsError::Invalid { field, .. }) => assert_eq!(field, "agents.a.max_iter"),
            other => panic!("{other:?}"),
        }
        let huge = ImportRequest {
            tasks_yaml: "#".repeat(MAX_YAML_BYTES + 1),
            ..request
        };
        assert!(matches!(import(&huge), Err(CrewsError::Invalid { .. })));
    }
}

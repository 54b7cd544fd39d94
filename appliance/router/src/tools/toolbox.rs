//! The tools this router knows: their definitions for the model, argument checking, and the
//! call.

use serde_json::{Value, json};

use super::context::ToolContext;
use super::spec::{ToolResult, ToolSpec};
use super::{
    describe_image, explore_memory, generate_image, recall_facts, remember_fact, remember_relation,
    search_memory, speak, start_crew_run,
};

/// Every built-in tool, in the order they are offered.
const BUILTIN: [ToolSpec; 9] = [
    search_memory::SPEC,
    remember_fact::SPEC,
    recall_facts::SPEC,
    remember_relation::SPEC,
    explore_memory::SPEC,
    speak::SPEC,
    describe_image::SPEC,
    generate_image::SPEC,
    start_crew_run::SPEC,
];

struct Registered {
    spec: ToolSpec,
    /// The OpenAI function definition, made once.
    definition: Value,
    schema: jsonschema::Validator,
}

pub struct Toolbox {
    tools: Vec<Registered>,
}

impl Toolbox {
    /// # Panics
    /// If a tool's schema is not a valid JSON schema (a programming error, caught by tests).
    pub fn new(specs: &[ToolSpec]) -> Toolbox {
        let tools = specs
            .iter()
            .map(|spec| {
                let parameters = (spec.parameters)();
                Registered {
                    schema: jsonschema::validator_for(&parameters)
                        .unwrap_or_else(|e| panic!("tool {}: invalid schema: {e}", spec.name)),
                    definition: json!({
                        "type": "function",
                        "function": {
                            "name": spec.name,
                            "description": spec.description,
                            "parameters": parameters,
                        }
                    }),
                    spec: *spec,
                }
            })
            .collect();
        Toolbox { tools }
    }

    pub fn builtin() -> Toolbox {
        Toolbox::new(&BUILTIN)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tools.iter().map(|r| r.spec.name)
    }

    fn find(&self, name: &str) -> Result<&Registered, String> {
        self.tools
            .iter()
            .find(|r| r.spec.name == name)
            .ok_or_else(|| format!("there is no tool named `{name}`"))
    }

    /// The OpenAI function definition of a tool.
    pub fn spec(&self, name: &str) -> Option<Value> {
        self.find(name).ok().map(|r| r.definition.clone())
    }

    /// Parses and validates the arguments the model wrote; `Err` explains what is wrong, in a
    /// form the model can correct.
    pub fn check(&self, name: &str, arguments: &str) -> Result<Value, String> {
        let r = self.find(name)?;
        let text = if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("arguments are not valid JSON: {e}"))?;
        let errors: Vec<String> = r
            .schema
            .iter_errors(&value)
            .map(|e| {
                let at = e.instance_path.to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(value)
        } else {
            Err(format!("invalid arguments: {}", errors.join("; ")))
        }
    }

    pub async fn call(&self, name: &str, ctx: &ToolContext, arguments: Value) -> ToolResult {
        (self.find(name)?.spec.run)(ctx, arguments).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_offered_in_order() {
        assert_eq!(
            Toolbox::builtin().names().collect::<Vec<_>>(),
            [
                "search_memory",
                "remember_fact",
                "recall_facts",
                "remember_relation",
                "explore_memory",
                "speak",
                "describe_image",
                "generate_image",
                "start_crew_run"
            ]
        );
    }

    #[test]
    fn arguments_are_checked_against_each_schema() {
        let toolbox = Toolbox::builtin();
        let ok = [
            ("remember_fact", r#"{"fact": "likes tea"}"#),
            ("recall_facts", ""),
        ];
        for (tool, arguments) in ok {
            assert!(toolbox.check(tool, arguments).is_ok(), "{tool} {arguments}");
        }
        // (tool, arguments, what the error names; "" when any refusal will do)
        let refused = [
            ("remember_fact", r#"{"fact": 3}"#, "/fact"),
            ("remember_fact", "{not json", "not valid JSON"),
            ("remember_fact", "{}", "fact"),
            (
                "remember_relation",
                r#"{"subject": "Olena", "relation": "lives in", "object": "Lviv"}"#,
                "/relation",
            ),
            ("start_crew_run", r#"{"crew": "Bad Name", "task": "x"}"#, ""),
            ("nope", "{}", "no tool"),
            (
                "generate_image",
                r#"{"prompt": "a fox", "size": "100x100"}"#,
                "/size",
            ),
            ("describe_image", r#"{"question": "what?", "image": 0}"#, ""),
        ];
        for (tool, arguments, says) in refused {
            let err = toolbox.check(tool, arguments).unwrap_err();
            assert!(err.contains(says), "{tool} {arguments}: {err}");
        }
    }

    #[test]
    fn definitions_are_openai_functions() {
        let toolbox = Toolbox::builtin();
        for name in toolbox.names() {
            let definition = toolbox.spec(name).unwrap();
            assert_eq!(definition["type"], "function");
            assert_eq!(definition["function"]["name"], name);
            assert_eq!(definition["function"]["parameters"]["type"], "object");
        }
        assert!(toolbox.spec("nope").is_none());
    }
}

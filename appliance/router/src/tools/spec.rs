//! What a tool is: data the toolbox reads, not a type per tool.

use futures::future::BoxFuture;
use serde_json::Value;

use super::context::ToolContext;

/// A tool's answer for the model: a JSON value, or why it failed in words the model can act on.
pub type ToolResult = Result<Value, String>;

/// One tool, as the model is told about it and as it runs.
#[derive(Clone, Copy)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// A JSON schema for the arguments object.
    pub parameters: fn() -> Value,
    /// Runs with arguments already validated against `parameters`.
    pub run: for<'a> fn(&'a ToolContext, Value) -> BoxFuture<'a, ToolResult>,
}

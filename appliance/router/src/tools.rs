//! Built-in tools the model may call, each described by a JSON schema that its arguments are
//! validated against before it runs, and each gated by the agent's policy (`tools.allow`).

use std::sync::Arc;

use daarion_bus::{Bus, Envelope};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::memory::MemoryClient;

/// What a tool may touch on behalf of one turn.
#[derive(Clone)]
pub struct ToolContext {
    pub memory: MemoryClient,
    pub bus: Bus,
    pub user_id: Uuid,
    pub agent_id: String,
    pub session_id: Uuid,
    /// The user message that started the turn: facts remembered now point back to it.
    pub source_message: Uuid,
    /// The swapper, for tools that use its models (speech).
    pub swapper: Swapper,
    /// Audio and other media a tool made, sent to the user with the answer.
    pub media: Arc<std::sync::Mutex<Vec<Media>>>,
    /// Pictures the user sent with this message.
    pub images: Arc<Vec<crate::inbound::Picture>>,
    /// The agent's swapper vision model, for `describe_image`.
    pub vision_model: Option<String>,
    /// The agent's `provider/model` for `generate_image`.
    pub image_model: Option<String>,
    pub providers: Arc<crate::providers::Providers>,
    pub control: daarion_control_client::ControlClient,
}

/// Media a tool produced for the user.
#[derive(Debug, Clone)]
pub struct Media {
    pub mime: &'static str,
    pub bytes: Vec<u8>,
}

/// The swapper's OpenAI-compatible API, with the appliance's root token.
#[derive(Clone)]
pub struct Swapper {
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
    /// The text-to-speech model the `speak` tool uses.
    pub tts_model: String,
}

impl Swapper {
    /// A POST to the swapper. A failure is logged with its details and told to the model only
    /// as "<what> is unavailable right now".
    async fn post(
        &self,
        path: &str,
        body: &Value,
        what: &str,
    ) -> Result<reqwest::Response, String> {
        let unavailable = || format!("{what} is unavailable right now");
        let response = self
            .http
            .post(format!("{}/{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, what, "cannot reach the swapper");
                unavailable()
            })?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            tracing::warn!(%status, %body, what, "the swapper refused");
            return Err(unavailable());
        }
        Ok(response)
    }

    async fn post_json(&self, path: &str, body: &Value, what: &str) -> Result<Value, String> {
        self.post(path, body, what)
            .await?
            .json()
            .await
            .map_err(|_| format!("{what} is unavailable right now"))
    }
}

pub trait Tool: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// A JSON schema for the arguments object.
    fn parameters(&self) -> Value;
    /// Runs with validated arguments; `Err` is a message for the model.
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        arguments: Value,
    ) -> BoxFuture<'a, Result<Value, String>>;
}

struct Registered {
    tool: Arc<dyn Tool>,
    schema: jsonschema::Validator,
}

/// The tools this router knows.
pub struct Toolbox {
    tools: Vec<Registered>,
}

impl Toolbox {
    /// # Panics
    /// If a tool's schema is not a valid JSON schema (a programming error, caught by tests).
    pub fn new(tools: Vec<Arc<dyn Tool>>) -> Toolbox {
        let tools = tools
            .into_iter()
            .map(|tool| Registered {
                schema: jsonschema::validator_for(&tool.parameters())
                    .unwrap_or_else(|e| panic!("tool {}: invalid schema: {e}", tool.name())),
                tool,
            })
            .collect();
        Toolbox { tools }
    }

    pub fn builtin() -> Toolbox {
        Toolbox::new(vec![
            Arc::new(SearchMemory),
            Arc::new(RememberFact),
            Arc::new(RecallFacts),
            Arc::new(RememberRelation),
            Arc::new(ExploreMemory),
            Arc::new(Speak),
            Arc::new(DescribeImage),
            Arc::new(GenerateImage),
            Arc::new(StartCrewRun),
        ])
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.tools.iter().map(|r| r.tool.name())
    }

    fn find(&self, name: &str) -> Option<&Registered> {
        self.tools.iter().find(|r| r.tool.name() == name)
    }

    /// The OpenAI function definition of a tool.
    pub fn spec(&self, name: &str) -> Option<Value> {
        let r = self.find(name)?;
        Some(json!({
            "type": "function",
            "function": {
                "name": r.tool.name(),
                "description": r.tool.description(),
                "parameters": r.tool.parameters(),
            }
        }))
    }

    /// Parses and validates the arguments the model wrote; `Err` explains what is wrong, in a
    /// form the model can correct.
    pub fn check(&self, name: &str, arguments: &str) -> Result<Value, String> {
        let r = self
            .find(name)
            .ok_or_else(|| format!("there is no tool named `{name}`"))?;
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

    pub async fn call(
        &self,
        name: &str,
        ctx: &ToolContext,
        arguments: Value,
    ) -> Result<Value, String> {
        let r = self
            .find(name)
            .ok_or_else(|| format!("there is no tool named `{name}`"))?;
        r.tool.call(ctx, arguments).await
    }
}

fn memory_err(e: crate::memory::MemoryError) -> String {
    tracing::warn!(error = %e, "tool could not reach memory");
    "memory is unavailable right now".into()
}

struct SearchMemory;

impl Tool for SearchMemory {
    fn name(&self) -> &'static str {
        "search_memory"
    }
    fn description(&self) -> &'static str {
        "Search this user's earlier messages and remembered facts."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "maxLength": 1000},
                "limit": {"type": "integer", "minimum": 1, "maximum": 20}
            },
            "required": ["query"],
            "additionalProperties": false
        })
    }
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let query = args["query"].as_str().unwrap_or_default();
            let limit = args["limit"].as_u64().unwrap_or(5) as u32;
            let hits = ctx
                .memory
                .search(ctx.user_id, query, limit)
                .await
                .map_err(memory_err)?;
            Ok(json!(
                hits.iter()
                    .map(|h| json!({"kind": h.kind, "content": h.content, "why": h.why}))
                    .collect::<Vec<_>>()
            ))
        })
    }
}

struct RememberFact;

impl Tool for RememberFact {
    fn name(&self) -> &'static str {
        "remember_fact"
    }
    fn description(&self) -> &'static str {
        "Remember a lasting fact about the user (a preference, a name, a circumstance)."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"fact": {"type": "string", "minLength": 3, "maxLength": 1000}},
            "required": ["fact"],
            "additionalProperties": false
        })
    }
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let fact = args["fact"].as_str().unwrap_or_default().trim();
            let stored = ctx
                .memory
                .add_fact(ctx.user_id, fact, &ctx.agent_id, Some(ctx.source_message))
                .await
                .map_err(memory_err)?;
            Ok(json!({"remembered": stored.content, "id": stored.id}))
        })
    }
}

struct RecallFacts;

impl Tool for RecallFacts {
    fn name(&self) -> &'static str {
        "recall_facts"
    }
    fn description(&self) -> &'static str {
        "List every fact remembered about the user."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {}, "additionalProperties": false})
    }
    fn call<'a>(&'a self, ctx: &'a ToolContext, _: Value) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let facts = ctx.memory.facts(ctx.user_id).await.map_err(memory_err)?;
            Ok(json!(
                facts.iter().map(|f| f.content.as_str()).collect::<Vec<_>>()
            ))
        })
    }
}

/// A relation between two things the user mentioned, into their knowledge graph.
struct RememberRelation;

impl Tool for RememberRelation {
    fn name(&self) -> &'static str {
        "remember_relation"
    }
    fn description(&self) -> &'static str {
        "Remember how two people, places or things in the user's life are related (e.g. Olena sister_of user, Olena lives_in Lviv)."
    }
    fn parameters(&self) -> Value {
        let kind = json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{0,31}$", "description": "person, place, topic, organisation, thing…"});
        json!({
            "type": "object",
            "properties": {
                "subject": {"type": "string", "minLength": 1, "maxLength": 200},
                "subject_kind": kind,
                "relation": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$", "description": "snake_case verb: knows, lives_in, works_at…"},
                "object": {"type": "string", "minLength": 1, "maxLength": 200},
                "object_kind": kind,
            },
            "required": ["subject", "relation", "object"],
            "additionalProperties": false
        })
    }
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let text = |k: &str| args[k].as_str().unwrap_or_default().to_owned();
            let kind = |k: &str| args[k].as_str().unwrap_or("thing").to_owned();
            let stored = ctx
                .memory
                .relate(
                    ctx.user_id,
                    (&kind("subject_kind"), &text("subject")),
                    &text("relation"),
                    (&kind("object_kind"), &text("object")),
                    Some(ctx.source_message),
                )
                .await
                .map_err(|e| match e {
                    crate::memory::MemoryError::Refused { message, .. } => message,
                    other => memory_err(other),
                })?;
            Ok(
                json!({"remembered": format!("{} {} {}", stored["from"]["name"], stored["edge"]["relation"], stored["to"]["name"])}),
            )
        })
    }
}

/// What the user's graph holds around a name.
struct ExploreMemory;

impl Tool for ExploreMemory {
    fn name(&self) -> &'static str {
        "explore_memory"
    }
    fn description(&self) -> &'static str {
        "Look up what is known about a person, place or thing in the user's life, and how it relates to others."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200}},
            "required": ["name"],
            "additionalProperties": false
        })
    }
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let name = args["name"].as_str().unwrap_or_default();
            let Some(around) = ctx
                .memory
                .explore(ctx.user_id, name)
                .await
                .map_err(memory_err)?
            else {
                return Ok(json!({"known": false}));
            };
            let name_of = |id: &Value| {
                around["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|n| n["id"] == *id)
                    .and_then(|n| n["name"].as_str())
                    .unwrap_or("?")
                    .to_owned()
            };
            let relations: Vec<String> = around["edges"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    format!(
                        "{} {} {}",
                        name_of(&e["from_node"]),
                        e["relation"].as_str().unwrap_or("?"),
                        name_of(&e["to_node"])
                    )
                })
                .collect();
            Ok(json!({"known": true, "relations": relations}))
        })
    }
}

/// Says something aloud: the swapper's text-to-speech model makes an OGG/Opus voice message that
/// goes to the user with the answer.
struct Speak;

impl Tool for Speak {
    fn name(&self) -> &'static str {
        "speak"
    }
    fn description(&self) -> &'static str {
        "Say a short text aloud to the user as a voice message (when they ask to hear something)."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 1000}},
            "required": ["text"],
            "additionalProperties": false
        })
    }
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let text = args["text"].as_str().unwrap_or_default();
            let body =
                json!({"model": ctx.swapper.tts_model, "input": text, "response_format": "opus"});
            let response = ctx.swapper.post("audio/speech", &body, "speech").await?;
            let bytes = response
                .bytes()
                .await
                .map_err(|_| "speech is unavailable right now".to_owned())?
                .to_vec();
            let size = bytes.len();
            ctx.media
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Media {
                    mime: "audio/ogg",
                    bytes,
                });
            Ok(json!({"spoken": true, "bytes": size}))
        })
    }
}

/// Asks the agent's vision model (in the swapper) about a picture the user sent.
struct DescribeImage;

impl Tool for DescribeImage {
    fn name(&self) -> &'static str {
        "describe_image"
    }
    fn description(&self) -> &'static str {
        "Look at a picture the user sent with this message and answer a question about it (what it shows, text in it, details)."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "question": {"type": "string", "minLength": 1, "maxLength": 1000},
                "image": {"type": "integer", "minimum": 1, "maximum": crate::inbound::MAX_PICTURES, "description": "which picture, from 1; the last by default"}
            },
            "required": ["question"],
            "additionalProperties": false
        })
    }
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let Some(model) = &ctx.vision_model else {
                return Err("this agent has no vision model to look at pictures with".into());
            };
            if ctx.images.is_empty() {
                return Err("the user sent no picture with this message".into());
            }
            let index = args["image"]
                .as_u64()
                .map_or(ctx.images.len(), |i| i as usize);
            let picture = ctx
                .images
                .get(index - 1)
                .ok_or_else(|| format!("there are only {} pictures", ctx.images.len()))?;
            let question = args["question"].as_str().unwrap_or_default();
            let body = json!({
                "model": model,
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": question},
                    {"type": "image_url", "image_url": {"url": picture.data_url()}}
                ]}],
                "max_tokens": 256,
                "temperature": 0,
            });
            let answer = ctx
                .swapper
                .post_json("chat/completions", &body, "vision")
                .await?;
            let text = answer["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_owned();
            Ok(json!({"answer": text}))
        })
    }
}

/// Makes a picture with the agent's image model (the swapper's, or a cloud provider's images
/// API); it goes to the user with the answer.
struct GenerateImage;

impl Tool for GenerateImage {
    fn name(&self) -> &'static str {
        "generate_image"
    }
    fn description(&self) -> &'static str {
        "Draw a picture from a detailed description and send it to the user (when they ask for an image)."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "prompt": {"type": "string", "minLength": 3, "maxLength": 2000},
                "size": {"type": "string", "enum": ["512x512", "768x768", "1024x1024", "1024x768", "768x1024"]}
            },
            "required": ["prompt"],
            "additionalProperties": false
        })
    }
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let Some(image_model) = &ctx.image_model else {
                return Err("this agent has no image model to draw with".into());
            };
            let unavailable = |e: &dyn std::fmt::Display| {
                tracing::warn!(model = %image_model, error = %e, "image generation failed");
                "image generation is unavailable right now".to_owned()
            };
            let link = ctx
                .providers
                .links(&ctx.control, std::slice::from_ref(image_model))
                .await
                .map_err(|e| unavailable(&e))?
                .remove(0);
            let pictures = link
                .provider
                .generate_images(daarion_llm::ImageRequest {
                    model: link.model.clone(),
                    prompt: args["prompt"].as_str().unwrap_or_default().to_owned(),
                    size: args["size"].as_str().map(str::to_owned),
                    n: 1,
                })
                .await
                .map_err(|e| unavailable(&e))?;
            let mut sent = 0;
            for bytes in pictures {
                let Some(mime) = picture_type(&bytes) else {
                    tracing::warn!(model = %image_model, "the image model returned no picture");
                    continue;
                };
                ctx.media
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Media { mime, bytes });
                sent += 1;
            }
            if sent == 0 {
                return Err("the image model returned no picture".into());
            }
            Ok(json!({"sent_to_user": sent}))
        })
    }
}

/// A picture's type by its first bytes; `None` for anything that is not one.
fn picture_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Asks the crews service for a multi-agent run; the request is durable once this returns.
struct StartCrewRun;

impl Tool for StartCrewRun {
    fn name(&self) -> &'static str {
        "start_crew_run"
    }
    fn description(&self) -> &'static str {
        "Start a background crew run for a long task; the result is delivered later."
    }
    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "crew": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
                "task": {"type": "string", "minLength": 1, "maxLength": 4000}
            },
            "required": ["crew", "task"],
            "additionalProperties": false
        })
    }
    fn call<'a>(
        &'a self,
        ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let run_id = Uuid::now_v7();
            let event = Envelope::new(
                "agent.run.requested",
                "router",
                json!({
                    "run_id": run_id,
                    "crew": args["crew"],
                    "task": args["task"],
                    "user_id": ctx.user_id,
                    "agent_id": ctx.agent_id,
                    "session_id": ctx.session_id,
                }),
            );
            ctx.bus.publish(&event).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot request a crew run");
                "the crew service cannot be reached right now".to_owned()
            })?;
            Ok(json!({"run_id": run_id, "status": "requested"}))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_schema_compiles_and_validates() {
        let toolbox = Toolbox::builtin();
        assert_eq!(
            toolbox.names().collect::<Vec<_>>(),
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
        assert!(
            toolbox
                .check("remember_fact", r#"{"fact": "likes tea"}"#)
                .is_ok()
        );
        let err = toolbox
            .check("remember_fact", r#"{"fact": 3}"#)
            .unwrap_err();
        assert!(err.contains("/fact"), "{err}");
        let err = toolbox.check("remember_fact", "{not json").unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = toolbox.check("remember_fact", "{}").unwrap_err();
        assert!(err.contains("fact"), "{err}");
        assert!(toolbox.check("recall_facts", "").is_ok());
        assert!(
            toolbox
                .check(
                    "remember_relation",
                    r#"{"subject": "Olena", "relation": "lives in", "object": "Lviv"}"#
                )
                .unwrap_err()
                .contains("/relation")
        );
        assert!(
            toolbox
                .check("start_crew_run", r#"{"crew": "Bad Name", "task": "x"}"#)
                .is_err()
        );
        assert!(toolbox.check("nope", "{}").unwrap_err().contains("no tool"));
        assert!(
            toolbox
                .check(
                    "generate_image",
                    r#"{"prompt": "a fox", "size": "100x100"}"#
                )
                .unwrap_err()
                .contains("/size")
        );
        assert!(
            toolbox
                .check("describe_image", r#"{"question": "what?", "image": 0}"#)
                .is_err()
        );
        assert_eq!(
            toolbox.spec("recall_facts").unwrap()["function"]["name"],
            "recall_facts"
        );
    }

    #[test]
    fn pictures_are_known_by_their_first_bytes() {
        assert_eq!(picture_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(picture_type(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(picture_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(picture_type(b"{\"error\": 1}"), None);
    }
}

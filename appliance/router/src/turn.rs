//! One turn of a conversation: admission (who, which agent, may they, is there quota), then the
//! model and its tools, with everything stored in memory as it happens.
//!
//! Quota is reserved before every model call for the most that call can use (the agent's whole
//! context), and the turn settles what was really used at its end, so concurrent turns can never
//! spend past a limit: a call without a reservation is never made.

use std::time::Instant;

use daarion_bus::Envelope;
use daarion_control_client::{Agent, ClientError};
use daarion_llm::{ChatEvent, ChatRequest, Message, Role, ToolCall, Usage};
use daarion_policy::{Action, AgentSettings, GroupMode, RouteKey, Routing};
use daarion_telemetry::TraceContext;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::context::{self, estimate_tokens};
use crate::error::Refusal;
use crate::event::Event;
use crate::inbound::{ChatKind, Inbound, UserRef};
use crate::memory::{MemoryError, NewMessage, Session};
use crate::metrics;
use crate::providers::Link;
use crate::tools::ToolContext;
use crate::{App, RouterError};

/// The history read from memory per turn, before fitting it to the context.
const HISTORY_LIMIT: u32 = 100;
const SUMMARY_MAX_TOKENS: u32 = 256;

/// A turn that passed admission.
pub struct Admitted {
    pub trace_id: String,
    pub user_id: Uuid,
    pub user_name: String,
    pub agent: Agent,
    pub settings: AgentSettings,
    pub links: Vec<Link>,
    /// The tools offered to the model: configured for the agent and allowed for this user.
    pub tools: Vec<&'static str>,
    pub session: Session,
    pub system_prompt: String,
    pub versions: Value,
    pub text: String,
    /// The text is a voice message's transcript.
    pub voice: bool,
    /// Pictures sent with the message, for the `describe_image` tool.
    pub images: Vec<crate::inbound::Picture>,
    /// The conversation as an OpenAI client sent it, used instead of the stored session.
    pub history: Option<Vec<Message>>,
    reserved: Reservation,
}

pub enum Admission {
    Go(Box<Admitted>),
    /// Not for this agent to answer (a group message not addressed to it).
    Ignored(String),
}

/// Usage in the control plane's quota units.
#[derive(Debug, Clone, Copy, Default)]
struct Reservation {
    requests: u32,
    tokens: u64,
    gpu_seconds: f64,
    cost: f64,
}

impl Reservation {
    fn json(&self) -> Value {
        json!({"requests": self.requests, "tokens": self.tokens, "gpu_seconds": self.gpu_seconds, "cost": self.cost})
    }

    fn add(&mut self, other: Reservation) {
        self.requests += other.requests;
        self.tokens += other.tokens;
        self.gpu_seconds += other.gpu_seconds;
        self.cost += other.cost;
    }
}

/// The most one model call of this agent can use: its whole context, at the dearest link.
fn call_reservation(settings: &AgentSettings, links: &[Link]) -> Reservation {
    let tokens = settings.context_tokens;
    Reservation {
        requests: 0,
        tokens: u64::from(tokens),
        gpu_seconds: 0.0,
        // Either side could take the whole context; the dearer side bounds the cost.
        cost: links
            .iter()
            .filter_map(|l| l.price.as_ref().map(|p| p.most_for(tokens)))
            .fold(0.0, f64::max),
    }
}

fn refused(code: &'static str, reason: impl Into<String>) -> RouterError {
    RouterError::Refused(Refusal {
        code,
        reason: reason.into(),
    })
}

async fn reserve(app: &App, user: Uuid, amount: Reservation) -> Result<(), RouterError> {
    match app.control.consume(&user.to_string(), &amount.json()).await {
        Ok(()) => Ok(()),
        Err(ClientError::QuotaExceeded(which)) => Err(refused(
            "quota",
            format!("You have used up your allowance ({which}). Please try again later."),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Which agent a message is for: the user's choice, an `@agent` mention, the routing table.
async fn pick_agent(app: &App, inbound: &Inbound) -> Result<(Agent, i64, bool), RouterError> {
    let lookup = |id: String| async move {
        match app.control.agent(&id).await {
            Ok(agent) => Ok(Some(agent.value)),
            Err(ClientError::NotFound(_)) => Ok(None),
            Err(e) => Err(RouterError::from(e)),
        }
    };
    if let Some(id) = &inbound.agent {
        let agent = lookup(id.clone())
            .await?
            .ok_or_else(|| RouterError::UnknownAgent(id.clone()))?;
        return Ok((agent, 0, false));
    }
    for mention in inbound.mentions() {
        if let Some(agent) = lookup(mention.to_owned()).await? {
            return Ok((agent, 0, true));
        }
    }
    let (routing, version) = match app.control.config("routing.main").await {
        Ok(v) => (
            serde_json::from_value::<Routing>(v.value).map_err(|e| RouterError::Provider {
                name: "routing.main".into(),
                message: e.to_string(),
            })?,
            v.version,
        ),
        Err(ClientError::NotFound(_)) => (Routing::default(), 0),
        Err(e) => return Err(e.into()),
    };
    let id = routing
        .pick(&RouteKey {
            bot: inbound.bot.as_deref(),
            chat: Some(inbound.chat_id.as_str()),
            command: inbound.command(),
        })
        .ok_or(RouterError::NoRoute)?
        .to_owned();
    let agent = lookup(id.clone())
        .await?
        .ok_or(RouterError::UnknownAgent(id))?;
    Ok((agent, version, false))
}

/// Who sent it, as a DAARION user id and a name for the prompt.
async fn resolve_user(app: &App, inbound: &Inbound) -> Result<(Uuid, String), RouterError> {
    match &inbound.user {
        UserRef::Id { id } => match app.memory.display_name(*id).await {
            Ok(name) => Ok((*id, name)),
            Err(MemoryError::Refused { status: 404, .. }) => {
                Err(RouterError::UnknownUser(id.to_string()))
            }
            Err(e) => Err(e.into()),
        },
        UserRef::Identity {
            external_id,
            display_name,
        } => {
            let id = app
                .memory
                .resolve(&inbound.channel, external_id, display_name)
                .await?;
            Ok((id, display_name.clone()))
        }
    }
}

/// Checks everything that can say no before any model is called, and reserves the first call.
pub async fn admit(
    app: &App,
    inbound: Inbound,
    history: Option<Vec<Message>>,
) -> Result<Admission, RouterError> {
    inbound.validate()?;
    let (agent, routing_version, mentioned) = pick_agent(app, &inbound).await?;
    let settings = match app.control.config(&format!("agents.{}", agent.id)).await {
        Ok(v) => (
            serde_json::from_value::<AgentSettings>(v.value).map_err(|e| {
                RouterError::Provider {
                    name: format!("agents.{}", agent.id),
                    message: e.to_string(),
                }
            })?,
            v.version,
        ),
        Err(ClientError::NotFound(_)) => (AgentSettings::default(), 0),
        Err(e) => return Err(e.into()),
    };
    let (settings, settings_version) = settings;
    let addressed = inbound.addressed || mentioned || inbound.command().is_some();
    if inbound.chat_kind != ChatKind::Private
        && settings.group_mode == GroupMode::Addressed
        && !addressed
    {
        return Ok(Admission::Ignored(format!(
            "{} answers in {} chats only when addressed",
            agent.name,
            inbound.chat_kind.as_str()
        )));
    }
    let (user_id, user_name) = resolve_user(app, &inbound).await?;
    let user = user_id.to_string();

    let use_decision = app.control.decide(&user, &agent.id, &Action::Use).await?;
    if !use_decision.decision.allow {
        tracing::info!(agent = %agent.id, rule = %use_decision.decision.rule, "refused by policy");
        return Err(refused(
            "policy",
            format!("You are not allowed to talk to {}.", agent.name),
        ));
    }
    let mode = inbound.chat_kind.as_str();
    if !app
        .control
        .decide(&user, &agent.id, &Action::Mode(mode))
        .await?
        .decision
        .allow
    {
        return Err(refused(
            "policy",
            format!("{} is not available to you in {mode} chats.", agent.name),
        ));
    }
    let wanted: Vec<String> = if settings.models.is_empty() {
        match &agent.default_model {
            Some(m) if m.contains('/') => vec![m.clone()],
            Some(m) => vec![format!("{}/{m}", daarion_policy::LOCAL_PROVIDER)],
            None => return Err(RouterError::NoModel(agent.id.clone())),
        }
    } else {
        settings.models.clone()
    };
    let mut allowed_links = Vec::new();
    for link in wanted {
        if app
            .control
            .decide(&user, &agent.id, &Action::Model(&link))
            .await?
            .decision
            .allow
        {
            allowed_links.push(link);
        }
    }
    if allowed_links.is_empty() {
        return Err(refused(
            "policy",
            format!("None of {}'s models are allowed for you.", agent.name),
        ));
    }
    let links = app.providers.links(&app.control, &allowed_links).await?;
    let mut tools = Vec::new();
    for name in app.toolbox.names() {
        let configured = settings
            .tools
            .as_ref()
            .is_none_or(|list| list.iter().any(|t| t == name));
        if configured
            && app
                .control
                .decide(&user, &agent.id, &Action::Tool(name))
                .await?
                .decision
                .allow
        {
            tools.push(name);
        }
    }
    let (prompt, prompt_version) = match app.control.active_prompt(&agent.id).await {
        Ok(p) => (p.value.content, p.version),
        Err(ClientError::NotFound(_)) => {
            (format!("You are {}, a helpful assistant.", agent.name), 0)
        }
        Err(e) => return Err(e.into()),
    };
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let system_prompt = context::render_prompt(
        &prompt,
        &[
            ("user_name", user_name.as_str()),
            ("agent_name", agent.name.as_str()),
            ("date", today.as_str()),
        ],
    );

    let mut first = call_reservation(&settings, &links);
    first.requests = 1;
    reserve(app, user_id, first).await?;

    let chat = format!("{}:{}", inbound.channel, inbound.chat_id);
    let session = match app.memory.open_session(user_id, &agent.id, &chat).await {
        Ok(s) => s,
        Err(e) => {
            release(app, user_id, first).await;
            return Err(e.into());
        }
    };
    let versions = json!({
        "prompt": prompt_version,
        "policy": use_decision.policy_version,
        "routing": routing_version,
        "agent": agent.revision,
        "settings": settings_version,
    });
    Ok(Admission::Go(Box::new(Admitted {
        trace_id: TraceContext::current_or_new().trace_id(),
        user_id,
        user_name,
        agent,
        settings,
        links,
        tools,
        session,
        system_prompt,
        versions,
        voice: inbound.voice,
        images: inbound.images,
        text: inbound.text,
        history,
        reserved: first,
    })))
}

/// `/new` and `/reset` in a chat: ends the session the chat's next message would continue, so
/// it starts afresh (the old one stays in memory).
pub async fn reset(app: &App, inbound: Inbound) -> Result<Value, RouterError> {
    inbound.validate()?;
    let (agent, _, _) = pick_agent(app, &inbound).await?;
    let (user_id, _) = resolve_user(app, &inbound).await?;
    let chat = format!("{}:{}", inbound.channel, inbound.chat_id);
    let session = app.memory.open_session(user_id, &agent.id, &chat).await?;
    app.memory.end_session(session.id).await?;
    Ok(json!({"agent": agent.id, "agent_name": agent.name, "ended": session.id}))
}

/// Gives back a reservation that was never used.
async fn release(app: &App, user: Uuid, reserved: Reservation) {
    settle(app, user, reserved, Reservation::default()).await;
}

async fn settle(app: &App, user: Uuid, reserved: Reservation, actual: Reservation) {
    if let Err(e) = app
        .control
        .settle(&user.to_string(), &reserved.json(), &actual.json())
        .await
    {
        // The reservation stays counted: the user is over-charged, never under.
        tracing::error!(error = %e, %user, "cannot settle quota usage");
    }
}

/// Where a turn's events go; `false` once the client went away.
struct Sink {
    tx: mpsc::Sender<Event>,
    open: bool,
}

impl Sink {
    async fn emit(&mut self, event: Event) -> bool {
        if self.open && self.tx.send(event).await.is_err() {
            self.open = false;
        }
        self.open
    }
}

struct CallOutcome {
    content: String,
    tool_calls: Vec<ToolCall>,
    usage: Usage,
    link: usize,
    seconds: f64,
    /// Why the answer stopped early, when it did.
    interrupted: Option<String>,
}

/// One model call down the fallback chain. A link that fails before its first token is skipped
/// for the next; one that fails mid-answer keeps what it said (a half-told answer cannot be
/// taken back).
async fn call_model(
    links: &[Link],
    request: &ChatRequest,
    sink: &mut Sink,
    stream_tokens: bool,
) -> Result<CallOutcome, RouterError> {
    let mut failures = Vec::new();
    for (index, link) in links.iter().enumerate() {
        let mut attempt = request.clone();
        attempt.model = link.model.clone();
        let started = Instant::now();
        let mut stream = match link.provider.chat_stream(attempt).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(link = %link.id(), error = %e, "model call failed; trying the next");
                metrics::LLM_FAILURES
                    .with_label_values(&[&link.provider_name])
                    .inc();
                failures.push(format!("{}: {e}", link.id()));
                continue;
            }
        };
        let mut out = CallOutcome {
            content: String::new(),
            tool_calls: Vec::new(),
            usage: Usage::default(),
            link: index,
            seconds: 0.0,
            interrupted: None,
        };
        let mut failed = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(ChatEvent::Token(text)) => {
                    out.content.push_str(&text);
                    if stream_tokens && !sink.emit(Event::Token { text }).await {
                        out.interrupted = Some("the client went away".into());
                        break;
                    }
                }
                Ok(ChatEvent::ToolCall(call)) => out.tool_calls.push(call),
                Ok(ChatEvent::Done { usage, .. }) => out.usage = usage,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        out.seconds = started.elapsed().as_secs_f64();
        metrics::LLM_SECONDS
            .with_label_values(&[&link.provider_name])
            .observe(out.seconds);
        if let Some(e) = failed {
            metrics::LLM_FAILURES
                .with_label_values(&[&link.provider_name])
                .inc();
            if out.content.is_empty() && out.tool_calls.is_empty() {
                tracing::warn!(link = %link.id(), error = %e, "model failed before answering; trying the next");
                failures.push(format!("{}: {e}", link.id()));
                continue;
            }
            tracing::warn!(link = %link.id(), error = %e, "model failed mid-answer");
            out.interrupted = Some(format!("the model stopped mid-answer: {e}"));
        }
        if out.usage == Usage::default() {
            // A provider that reports no usage is charged by estimate, never for free.
            out.usage = Usage {
                prompt_tokens: request.messages.iter().map(context::message_tokens).sum(),
                completion_tokens: estimate_tokens(&out.content),
            };
        }
        if index > 0 {
            metrics::FALLBACKS
                .with_label_values(&[&link.provider_name])
                .inc();
        }
        return Ok(out);
    }
    Err(RouterError::Llm(format!(
        "no model could answer: {}",
        failures.join("; ")
    )))
}

/// What a turn used, added up over its calls.
#[derive(Default)]
struct Spent {
    usage: Usage,
    cost: f64,
    gpu_seconds: f64,
}

impl Spent {
    fn add(&mut self, link: &Link, outcome: &CallOutcome) {
        self.usage.prompt_tokens += outcome.usage.prompt_tokens;
        self.usage.completion_tokens += outcome.usage.completion_tokens;
        self.cost += link.cost(&outcome.usage);
        if link.local {
            self.gpu_seconds += outcome.seconds;
        }
    }

    fn as_reservation(&self) -> Reservation {
        Reservation {
            requests: 1,
            tokens: u64::from(self.usage.total()),
            gpu_seconds: self.gpu_seconds,
            cost: self.cost,
        }
    }
}

/// Runs an admitted turn to its end, sending its events to `tx`. Whatever happens, the user's
/// message and what was answered are stored, and the quota is settled.
pub async fn run(app: &App, mut turn: Admitted, tx: mpsc::Sender<Event>) {
    let started = Instant::now();
    let mut sink = Sink { tx, open: true };
    sink.emit(Event::Start {
        trace_id: turn.trace_id.clone(),
        agent: turn.agent.id.clone(),
        user_id: turn.user_id,
        session_id: turn.session.id,
        versions: turn.versions.clone(),
    })
    .await;
    let mut spent = Spent::default();
    let outcome = converse(app, &mut turn, &mut sink, &mut spent).await;
    settle(app, turn.user_id, turn.reserved, spent.as_reservation()).await;
    let label = match &outcome {
        Ok(true) => "answered",
        Ok(false) => "interrupted",
        Err(RouterError::Refused(_)) => "refused",
        Err(_) => "failed",
    };
    metrics::TURNS.with_label_values(&[label]).inc();
    metrics::TURN_SECONDS.observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(_) => {}
        Err(RouterError::Refused(r)) => {
            sink.emit(Event::Refused {
                code: r.code.into(),
                reason: r.reason,
            })
            .await;
        }
        Err(e) => {
            let (_, code) = e.status_code();
            tracing::error!(error = %e, "turn failed");
            sink.emit(Event::Error {
                code: code.into(),
                message: e.public_message(),
            })
            .await;
        }
    }
}

fn stored_calls(calls: &[ToolCall]) -> Value {
    serde_json::to_value(calls).unwrap_or(Value::Null)
}

/// The conversation itself; `Ok(false)` when the answer was cut short.
async fn converse(
    app: &App,
    turn: &mut Admitted,
    sink: &mut Sink,
    spent: &mut Spent,
) -> Result<bool, RouterError> {
    let base = NewMessage {
        agent_id: Some(turn.agent.id.clone()),
        trace_id: Some(turn.trace_id.clone()),
        versions: turn.versions.clone(),
        ..NewMessage::default()
    };
    let question = app
        .memory
        .add_message(
            turn.session.id,
            NewMessage {
                role: "user",
                content: turn.text.clone(),
                versions: {
                    let mut v = turn.versions.clone();
                    if turn.voice {
                        v["input"] = json!("voice");
                    }
                    // The pictures themselves are not kept; that there were some is.
                    if !turn.images.is_empty() {
                        v["images"] = json!(turn.images.len());
                    }
                    v
                },
                ..base.clone()
            },
        )
        .await?;
    let mut messages = build_context(app, turn, question.id, sink, spent).await?;
    let tool_specs: Vec<Value> = turn
        .tools
        .iter()
        .filter_map(|t| app.toolbox.spec(t))
        .collect();
    let ctx = ToolContext {
        memory: app.memory.clone(),
        bus: app.bus.clone(),
        user_id: turn.user_id,
        agent_id: turn.agent.id.clone(),
        session_id: turn.session.id,
        source_message: question.id,
        swapper: crate::tools::Swapper {
            tts_model: turn.settings.tts_model.clone(),
            ..app.swapper.clone()
        },
        media: Default::default(),
        images: std::sync::Arc::new(turn.images.clone()),
        vision_model: turn.settings.vision_model.clone(),
        image_model: turn.settings.image_model.clone(),
        providers: app.providers.clone(),
        control: app.control.clone(),
    };
    let mut steps = 0;
    let mut calls_made = 0;
    loop {
        if calls_made > 0 {
            // Every further call is reserved like the first; no reservation, no call.
            let next = call_reservation(&turn.settings, &turn.links);
            reserve(app, turn.user_id, next).await?;
            turn.reserved.add(next);
        }
        calls_made += 1;
        let offer_tools = steps < turn.settings.max_tool_steps && !tool_specs.is_empty();
        let request = ChatRequest {
            model: String::new(),
            messages: messages.clone(),
            tools: if offer_tools {
                tool_specs.clone()
            } else {
                Vec::new()
            },
            temperature: turn.settings.temperature,
            max_tokens: Some(turn.settings.max_tokens),
        };
        let outcome = call_model(&turn.links, &request, sink, true).await?;
        let link = &turn.links[outcome.link];
        spent.add(link, &outcome);
        let wants_tools = offer_tools && !outcome.tool_calls.is_empty();
        if !wants_tools || outcome.interrupted.is_some() {
            let mut content = outcome.content;
            if content.trim().is_empty() && outcome.interrupted.is_none() {
                content = if outcome.tool_calls.is_empty() {
                    "(no answer)".into()
                } else {
                    format!("I stopped after {steps} tool steps without reaching an answer.")
                };
                sink.emit(Event::Token {
                    text: content.clone(),
                })
                .await;
            }
            let interrupted = outcome.interrupted.is_some();
            let mut versions = turn.versions.clone();
            if let Some(why) = &outcome.interrupted {
                versions["interrupted"] = json!(why);
            }
            let answer = app
                .memory
                .add_message(
                    turn.session.id,
                    NewMessage {
                        role: "assistant",
                        content: content.clone(),
                        model: Some(link.id()),
                        prompt_tokens: Some(spent.usage.prompt_tokens),
                        completion_tokens: Some(spent.usage.completion_tokens),
                        versions,
                        ..base.clone()
                    },
                )
                .await?;
            publish_processed(app, turn, answer.id, link, spent, steps).await;
            sink.emit(Event::Message {
                id: answer.id,
                content,
                provider: link.provider_name.clone(),
                model: link.model.clone(),
                interrupted,
            })
            .await;
            sink.emit(Event::Usage {
                prompt_tokens: spent.usage.prompt_tokens,
                completion_tokens: spent.usage.completion_tokens,
                cost: spent.cost,
                currency: link.currency().to_owned(),
                gpu_seconds: spent.gpu_seconds,
            })
            .await;
            return Ok(!interrupted);
        }
        steps += 1;
        app.memory
            .add_message(
                turn.session.id,
                NewMessage {
                    role: "assistant",
                    content: outcome.content.clone(),
                    model: Some(link.id()),
                    tool_calls: Some(stored_calls(&outcome.tool_calls)),
                    ..base.clone()
                },
            )
            .await?;
        let mut call_message = Message::new(Role::Assistant, outcome.content.clone());
        call_message.tool_calls = outcome.tool_calls.clone();
        messages.push(call_message);
        for call in &outcome.tool_calls {
            sink.emit(Event::ToolCall {
                id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
            })
            .await;
            let (ok, content) = run_tool(app, turn, &ctx, call).await;
            app.memory
                .add_message(
                    turn.session.id,
                    NewMessage {
                        role: "tool",
                        content: content.clone(),
                        tool_call_id: Some(call.id.clone()),
                        ..base.clone()
                    },
                )
                .await?;
            sink.emit(Event::ToolResult {
                id: call.id.clone(),
                name: call.name.clone(),
                ok,
                content: content.clone(),
            })
            .await;
            let mut result = Message::new(Role::Tool, content);
            result.tool_call_id = Some(call.id.clone());
            messages.push(result);
            let made: Vec<crate::tools::Media> =
                std::mem::take(&mut *ctx.media.lock().unwrap_or_else(|e| e.into_inner()));
            for media in made {
                use base64::Engine;
                sink.emit(Event::Media {
                    mime: media.mime.into(),
                    data: base64::engine::general_purpose::STANDARD.encode(&media.bytes),
                })
                .await;
            }
        }
        if !sink.open {
            return Ok(false);
        }
    }
}

/// Policy, then the schema, then the tool under its timeout. The text is for the model.
async fn run_tool(
    app: &App,
    turn: &Admitted,
    ctx: &ToolContext,
    call: &ToolCall,
) -> (bool, String) {
    let name = call.name.as_str();
    let label = app
        .toolbox
        .names()
        .find(|n| *n == name)
        .unwrap_or("unknown");
    let (ok, content, outcome) = if !turn.tools.contains(&name) {
        let why = if label == "unknown" {
            format!("there is no tool named `{name}`")
        } else {
            format!("the tool `{name}` is not allowed for this user")
        };
        (false, why, "refused")
    } else {
        match app.toolbox.check(name, &call.arguments) {
            Err(why) => (false, why, "invalid"),
            Ok(arguments) => {
                let limit = std::time::Duration::from_secs(turn.settings.tool_timeout_secs);
                match tokio::time::timeout(limit, app.toolbox.call(name, ctx, arguments)).await {
                    Ok(Ok(value)) => (true, value.to_string(), "ok"),
                    Ok(Err(why)) => (false, why, "failed"),
                    Err(_) => (
                        false,
                        format!("the tool did not finish within {} s", limit.as_secs()),
                        "timeout",
                    ),
                }
            }
        }
    };
    metrics::TOOL_CALLS
        .with_label_values(&[label, outcome])
        .inc();
    tracing::info!(tool = name, outcome, "tool call");
    (ok, content)
}

/// System prompt, memory, history (summarised past the budget) and the new message.
async fn build_context(
    app: &App,
    turn: &Admitted,
    question: Uuid,
    sink: &mut Sink,
    spent: &mut Spent,
) -> Result<Vec<Message>, RouterError> {
    let (summary, history) = match &turn.history {
        Some(given) => (
            None,
            given.iter().cloned().map(|m| (Uuid::nil(), m)).collect(),
        ),
        None => {
            let stored = app.memory.history(turn.session.id, HISTORY_LIMIT).await?;
            let before: Vec<_> = stored.into_iter().filter(|m| m.id != question).collect();
            context::history_messages(&before)
        }
    };
    let hits = turn.settings.memory_hits;
    let facts = if hits > 0 {
        app.memory.facts(turn.user_id).await?
    } else {
        Vec::new()
    };
    let found = if hits > 0 {
        // Memory takes queries up to 1000 characters; the start of a long message says enough.
        let query: String = turn.text.chars().take(500).collect();
        match app.memory.search(turn.user_id, &query, hits + 1).await {
            // What the history already shows is not repeated as a memory.
            Ok(found) => found
                .into_iter()
                .filter(|h| h.id != question && !history.iter().any(|(id, _)| *id == h.id))
                .collect(),
            Err(e) => {
                // A query memory cannot parse must not cost the user their answer.
                tracing::warn!(error = %e, "memory search failed; answering without it");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let mut system = turn.system_prompt.clone();
    system.push_str(&context::memory_block(&facts, &found, hits as usize));

    let question_message = Message::new(Role::User, turn.text.clone());
    let budget = turn
        .settings
        .context_tokens
        .saturating_sub(turn.settings.max_tokens)
        .saturating_sub(estimate_tokens(&system))
        .saturating_sub(estimate_tokens(&turn.text))
        // The summary itself and the tool definitions need room too.
        .saturating_sub(SUMMARY_MAX_TOKENS);
    let (older, kept) = context::fit(history, budget);
    let summary = if older.is_empty() || turn.history.is_some() {
        summary
    } else {
        summarise(app, turn, summary, &older, sink, spent).await
    };
    let mut messages = vec![Message::new(Role::System, system)];
    if let Some(summary) = summary {
        messages.push(Message::new(
            Role::System,
            format!("Summary of the conversation so far: {summary}"),
        ));
    }
    messages.extend(kept.into_iter().map(|(_, m)| m));
    messages.push(question_message);
    Ok(messages)
}

/// Folds the messages that no longer fit into the running summary and stores it, so later
/// turns start from it. On failure the old messages are left out, and the turn goes on.
async fn summarise(
    app: &App,
    turn: &Admitted,
    previous: Option<String>,
    older: &[(Uuid, Message)],
    sink: &mut Sink,
    spent: &mut Spent,
) -> Option<String> {
    let through = older.last()?.0;
    let mut text = String::new();
    if let Some(p) = &previous {
        text.push_str(&format!("Earlier summary: {p}\n\n"));
    }
    text.push_str(&context::transcript(older));
    let request = ChatRequest {
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
    };
    let outcome = match call_model(&turn.links, &request, sink, false).await {
        Ok(o) if !o.content.trim().is_empty() => o,
        Ok(_) => return previous,
        Err(e) => {
            tracing::warn!(error = %e, "cannot summarise the history; older messages left out");
            return previous;
        }
    };
    spent.add(&turn.links[outcome.link], &outcome);
    let summary = outcome.content.trim().to_owned();
    let stored = app
        .memory
        .add_message(
            turn.session.id,
            NewMessage {
                role: "system",
                content: summary.clone(),
                agent_id: Some(turn.agent.id.clone()),
                model: Some(turn.links[outcome.link].id()),
                trace_id: Some(turn.trace_id.clone()),
                versions: context::summary_versions(through),
                ..NewMessage::default()
            },
        )
        .await;
    if let Err(e) = stored {
        tracing::warn!(error = %e, "cannot store the summary; it will be made again");
    }
    metrics::SUMMARIES.inc();
    Some(summary)
}

/// `message.processed`: the answer is stored; other services (indexer, analytics) may act on it.
async fn publish_processed(
    app: &App,
    turn: &Admitted,
    message: Uuid,
    link: &Link,
    spent: &Spent,
    tool_steps: u32,
) {
    let event = Envelope::new(
        "message.processed",
        "router",
        json!({
            "message_id": message,
            "session_id": turn.session.id,
            "user_id": turn.user_id,
            "agent_id": turn.agent.id,
            "provider": link.provider_name,
            "model": link.model,
            "prompt_tokens": spent.usage.prompt_tokens,
            "completion_tokens": spent.usage.completion_tokens,
            "cost": spent.cost,
            "currency": link.currency(),
            "gpu_seconds": spent.gpu_seconds,
            "tool_steps": tool_steps,
            "versions": turn.versions,
        }),
    );
    if let Err(e) = app.bus.publish(&event).await {
        // The answer is stored; only the notification is lost, and it is logged.
        tracing::error!(error = %e, %message, "cannot publish message.processed");
    }
}

//! Admission: which agent a message is for, who sent it, and everything that can say no
//! (addressing in groups, policy, quota) before any model is called.

use daarion_bus::events::AttachmentOrigin;
use daarion_control_client::{Agent, ClientError, Versioned};
use daarion_llm::Message;
use daarion_memory_client::MemoryError;
use daarion_policy::Action;
use daarion_router_client::{ChatKind, Inbound, ResetResponse, UserRef};
use daarion_settings::{AgentSettings, GroupMode, LOCAL_PROVIDER, RouteKey, Routing};
use daarion_telemetry::TraceContext;
use serde_json::json;
use uuid::Uuid;

use super::admitted::{Admission, Admitted};
use super::quota::{call_reservation, refused, release, reserve};
use crate::{App, RouterError, context};

/// A missing config document means its defaults (version 0).
fn or_default<T: Default>(
    found: Result<Versioned<T>, ClientError>,
) -> Result<(T, i64), RouterError> {
    match found {
        Ok(v) => Ok((v.value, v.version)),
        Err(ClientError::NotFound(_)) => Ok((T::default(), 0)),
        Err(e) => Err(e.into()),
    }
}

/// Which agent a message is for: the user's choice, an `@agent` mention, the routing table.
/// Also the routing version used, and whether a mention picked it.
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
    let (routing, version) = or_default(app.control.config::<Routing>().await)?;
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

/// The agent's model links this user may use, in the agent's order.
pub(crate) async fn allowed_links(
    app: &App,
    user: &str,
    agent: &Agent,
    settings: &AgentSettings,
) -> Result<Vec<String>, RouterError> {
    let wanted: Vec<String> = if settings.models.is_empty() {
        match &agent.default_model {
            Some(m) if m.contains('/') => vec![m.clone()],
            Some(m) => vec![format!("{LOCAL_PROVIDER}/{m}")],
            None => return Err(RouterError::NoModel(agent.id.clone())),
        }
    } else {
        settings.models.clone()
    };
    let mut allowed = Vec::new();
    for link in wanted {
        if app
            .control
            .decide(user, &agent.id, &Action::Model(&link))
            .await?
            .decision
            .allow
        {
            allowed.push(link);
        }
    }
    if allowed.is_empty() {
        return Err(refused(
            "policy",
            format!("None of {}'s models are allowed for you.", agent.name),
        ));
    }
    Ok(allowed)
}

/// The tools configured for the agent that this user may use.
async fn allowed_tools(
    app: &App,
    user: &str,
    agent: &Agent,
    settings: &AgentSettings,
) -> Result<Vec<&'static str>, RouterError> {
    let mut tools = Vec::new();
    for name in app.toolbox.names() {
        let configured = settings
            .tools
            .as_ref()
            .is_none_or(|list| list.iter().any(|t| t == name));
        if configured
            && app
                .control
                .decide(user, &agent.id, &Action::Tool(name))
                .await?
                .decision
                .allow
        {
            tools.push(name);
        }
    }
    Ok(tools)
}

/// `link` as policy names it: `provider/model`, a bare model being the swapper's.
pub(crate) fn qualified(link: &str) -> String {
    if link.contains('/') {
        link.to_owned()
    } else {
        format!("{LOCAL_PROVIDER}/{link}")
    }
}

/// The operator speaking as itself (root token, admin token, admin session) is the appliance's
/// administrator: its memory user gets the `admin` role the first time, so an agent the operator
/// just created answers them at once, and every later decision (tools, models, steps) agrees.
/// The change goes through the control plane with the root token, audited like any other.
async fn ensure_operator_is_admin(app: &App, user: &str) -> Result<(), RouterError> {
    let roles = app.control.roles(user).await?.value;
    if roles.iter().any(|r| r == "admin") {
        return Ok(());
    }
    let mut credential = axum::http::HeaderMap::new();
    let bearer = format!("Bearer {}", app.root_token);
    // The token file's content is printable; a value that is not cannot authorise anything.
    let value = bearer.parse().map_err(|_| RouterError::AuthUnavailable)?;
    credential.insert(axum::http::header::AUTHORIZATION, value);
    let mut wanted = roles;
    wanted.push("admin".into());
    app.control.set_roles_as(&credential, user, &wanted).await?;
    // The change is announced over the bus too; this turn must not wait for it.
    app.control.forget_roles(user);
    Ok(())
}

/// Checks everything that can say no before any model is called, and reserves the first call.
pub async fn admit(
    app: &App,
    inbound: Inbound,
    history: Option<Vec<Message>>,
) -> Result<Admission, RouterError> {
    inbound.validate()?;
    let (agent, routing_version, mentioned) = pick_agent(app, &inbound).await?;
    let (settings, settings_version) =
        or_default(app.control.config_for::<AgentSettings>(&agent.id).await)?;
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
    if inbound.operator {
        ensure_operator_is_admin(app, &user).await?;
    }

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
    let links = allowed_links(app, &user, &agent, &settings).await?;
    let links = app.providers.links(&app.control, &links).await?;
    let tools = allowed_tools(app, &user, &agent, &settings).await?;
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

    let mut first = call_reservation(&settings, &links, settings.max_tokens, &app.gpu);
    first.requests = 1;
    reserve(&app.control, user_id, first).await?;

    let chat = format!("{}:{}", inbound.channel, inbound.chat_id);
    let origin = AttachmentOrigin {
        channel: inbound.channel.clone(),
        bot: inbound.bot.clone(),
        // Telegram's chats are numbers; other channels' are not chats a bot can answer in.
        chat_id: inbound.chat_id.parse().ok(),
        message_id: None,
    };
    let session = match app.memory.open_session(user_id, &agent.id, &chat).await {
        Ok(s) => s,
        Err(e) => {
            release(&app.control, user_id, first).await;
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
        origin,
        reserved: first,
    })))
}

/// `/new` and `/reset` in a chat: ends the session the chat's next message would continue, so
/// it starts afresh (the old one stays in memory).
pub async fn reset(app: &App, inbound: Inbound) -> Result<ResetResponse, RouterError> {
    inbound.validate()?;
    let (agent, _, _) = pick_agent(app, &inbound).await?;
    let (user_id, _) = resolve_user(app, &inbound).await?;
    let chat = format!("{}:{}", inbound.channel, inbound.chat_id);
    let session = app.memory.open_session(user_id, &agent.id, &chat).await?;
    app.memory.end_session(session.id).await?;
    Ok(ResetResponse {
        agent: agent.id,
        agent_name: agent.name,
        ended: session.id,
    })
}

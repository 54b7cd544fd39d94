//! Pairing, for bots with `pairing = true`: a Telegram user the appliance does not know yet (no
//! role but `guest`) gets a code instead of an agent, and an administrator approves the code
//! (`POST /v1/pairings/{code}/approve`, or `daarion telegram approve CODE`), which gives the user
//! the bot's `pairing_role` in the control plane, with the approver's own credential, so the
//! audit log says who let them in.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName};
use daarion_control_client::Principal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::caller;
use crate::bots::ConfiguredBot;
use crate::telegram::say;
use crate::update::{Chat, Sender};
use crate::{App, GatewayError};

/// Codes wait a week for their approval.
const CODE_TTL_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub code: String,
    pub bot: String,
    pub user_id: String,
    pub telegram_user: i64,
    pub name: String,
    pub chat_id: i64,
}

fn code_key(app: &App, code: &str) -> String {
    format!("{}gateway:pairing:code:{code}", app.config.redis.key_prefix)
}

fn user_key(app: &App, bot: &str, telegram_user: i64) -> String {
    format!(
        "{}gateway:pairing:user:{bot}:{telegram_user}",
        app.config.redis.key_prefix
    )
}

/// The DAARION user behind a Telegram user (created on first contact).
pub async fn resolve_user(app: &App, from: &Sender) -> Result<String, GatewayError> {
    let user = app
        .memory
        .resolve("telegram", &from.id.to_string(), &from.name)
        .await
        .map_err(|e| GatewayError::unavailable("memory", e))?;
    Ok(user.to_string())
}

/// `None` when the user may talk to the agents; otherwise what to tell them.
pub async fn gate(
    app: &App,
    bot: &ConfiguredBot,
    chat: Chat,
    from: &Sender,
) -> Result<Option<String>, GatewayError> {
    if !bot.settings.pairing {
        return Ok(None);
    }
    let user = resolve_user(app, from).await?;
    let roles = app
        .control
        .roles(&user)
        .await
        .map_err(|e| GatewayError::unavailable("the control plane", e))?;
    if roles.value.iter().any(|r| r != "guest") {
        return Ok(None);
    }
    let mut redis = app.redis.clone();
    let by_user = user_key(app, &bot.name, from.id);
    let existing: Option<String> = redis::cmd("GET")
        .arg(&by_user)
        .query_async(&mut redis)
        .await
        .map_err(|e| GatewayError::unavailable("Redis", e))?;
    let code = match existing {
        Some(code) => code,
        None => {
            let raw = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
            let code = format!("{}-{}", &raw[..4], &raw[4..8]);
            let pending = Pending {
                code: code.clone(),
                bot: bot.name.clone(),
                user_id: user,
                telegram_user: from.id,
                name: from.name.clone(),
                chat_id: chat.id,
            };
            let _: () = redis::pipe()
                .cmd("SET")
                .arg(code_key(app, &code))
                .arg(serde_json::to_string(&pending).unwrap_or_default())
                .arg("EX")
                .arg(CODE_TTL_SECS)
                .ignore()
                .cmd("SET")
                .arg(&by_user)
                .arg(&code)
                .arg("EX")
                .arg(CODE_TTL_SECS)
                .ignore()
                .query_async(&mut redis)
                .await
                .map_err(|e| GatewayError::unavailable("Redis", e))?;
            tracing::info!(bot = %bot.name, %code, "new pairing request");
            code
        }
    };
    Ok(Some(format!(
        "This assistant is private. Ask its administrator to approve your pairing code {code}; I will tell you when you are in."
    )))
}

/// An administrator: the root token, an `admin` API token, or an admin's browser session (the
/// admin UI). Returns the headers that carry the credential, for calls made on their behalf.
async fn admin_credential(app: &App, headers: &HeaderMap) -> Result<HeaderMap, GatewayError> {
    let principal = caller(app, headers).await?;
    if !principal.is_admin() {
        return Err(GatewayError::Forbidden);
    }
    let carried = match principal {
        Principal::Session { .. } => vec![
            axum::http::header::COOKIE,
            HeaderName::from_static(daarion_control_client::CSRF_HEADER),
        ],
        Principal::Root | Principal::Token { .. } => vec![axum::http::header::AUTHORIZATION],
    };
    let mut forward = HeaderMap::new();
    for name in carried {
        if let Some(value) = headers.get(&name) {
            forward.insert(name, value.clone());
        }
    }
    Ok(forward)
}

/// `GET /v1/pairings`: the codes waiting for approval.
pub async fn list(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<Vec<Pending>>, GatewayError> {
    admin_credential(&app, &headers).await?;
    let mut redis = app.redis.clone();
    let pattern = code_key(&app, "*");
    // SCAN, not KEYS: the Redis may be shared, and KEYS blocks it for its whole key space.
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(&mut redis)
            .await
            .map_err(|e| GatewayError::unavailable("Redis", e))?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    let mut pending = Vec::new();
    for key in keys {
        let raw: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .map_err(|e| GatewayError::unavailable("Redis", e))?;
        if let Some(p) = raw.and_then(|r| serde_json::from_str::<Pending>(&r).ok()) {
            pending.push(p);
        }
    }
    pending.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(Json(pending))
}

/// `POST /v1/pairings/{code}/approve`.
pub async fn approve(
    State(app): State<App>,
    Path(code): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, GatewayError> {
    let credential = admin_credential(&app, &headers).await?;
    let code = code.trim().to_uppercase();
    let mut redis = app.redis.clone();
    let raw: Option<String> = redis::cmd("GET")
        .arg(code_key(&app, &code))
        .query_async(&mut redis)
        .await
        .map_err(|e| GatewayError::unavailable("Redis", e))?;
    let pending: Pending = raw
        .and_then(|r| serde_json::from_str(&r).ok())
        .ok_or_else(|| GatewayError::NotFound(format!("pairing code {code}")))?;
    let bot = app.bots.get(&app.control, &pending.bot).await?;
    let roles = app
        .control
        .roles(&pending.user_id)
        .await
        .map_err(|e| GatewayError::unavailable("the control plane", e))?;
    let mut granted: Vec<String> = roles.value.into_iter().filter(|r| r != "guest").collect();
    if !granted.contains(&bot.settings.pairing_role) {
        granted.push(bot.settings.pairing_role.clone());
    }
    let set = app
        .control
        .set_roles_as(&credential, &pending.user_id, &granted)
        .await
        .map_err(|e| match e {
            daarion_control_client::ClientError::Unauthorized(_) => GatewayError::Forbidden,
            other => GatewayError::unavailable("the control plane", other),
        })?;
    app.control.forget_roles(&pending.user_id);
    let _: Result<(), _> = redis::pipe()
        .cmd("DEL")
        .arg(code_key(&app, &code))
        .ignore()
        .cmd("DEL")
        .arg(user_key(&app, &pending.bot, pending.telegram_user))
        .ignore()
        .query_async(&mut redis)
        .await;
    tracing::info!(bot = %pending.bot, user = %pending.user_id, "pairing approved");
    let chat = Chat {
        id: pending.chat_id,
        group: pending.chat_id < 0,
    };
    say(
        &app,
        &bot,
        chat,
        "You are approved. Welcome! Just write to me.",
    )
    .await;
    Ok(Json(
        json!({"user_id": pending.user_id, "roles": set["roles"]}),
    ))
}

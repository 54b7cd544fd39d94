//! What a chat chose for itself, kept in Redis per bot and chat: the agent it talks to
//! (`/agent NAME`) and whether answers are also spoken (`/voice on`).

use crate::App;
use crate::bots::ConfiguredBot;
use crate::update::Chat;

fn voice_key(app: &App, bot: &str, chat: Chat) -> String {
    format!(
        "{}gateway:voice:{bot}:{}",
        app.config.redis.key_prefix, chat.id
    )
}

fn agent_key(app: &App, bot: &str, chat: Chat) -> String {
    format!(
        "{}gateway:agent:{bot}:{}",
        app.config.redis.key_prefix, chat.id
    )
}

/// Whether this chat asked for spoken answers (`/voice on`). Unreadable counts as no: the
/// text answer is what matters.
pub async fn voice_replies(app: &App, bot: &ConfiguredBot, chat: Chat) -> bool {
    let mut redis = app.redis.clone();
    redis::cmd("EXISTS")
        .arg(voice_key(app, &bot.name, chat))
        .query_async::<bool>(&mut redis)
        .await
        .unwrap_or(false)
}

pub async fn set_voice_replies(
    app: &App,
    bot: &ConfiguredBot,
    chat: Chat,
    on: bool,
) -> redis::RedisResult<()> {
    let mut redis = app.redis.clone();
    let key = voice_key(app, &bot.name, chat);
    let cmd = if on {
        redis::cmd("SET").arg(&key).arg(1).clone()
    } else {
        redis::cmd("DEL").arg(&key).clone()
    };
    cmd.query_async::<()>(&mut redis).await
}

/// The agent chosen in this chat with `/agent`, else the bot's own.
pub async fn chosen_agent(app: &App, bot: &ConfiguredBot, chat: Chat) -> Option<String> {
    let mut redis = app.redis.clone();
    let chosen: Option<String> = redis::cmd("GET")
        .arg(agent_key(app, &bot.name, chat))
        .query_async(&mut redis)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the chat's agent; using the bot's");
            None
        });
    chosen.or_else(|| bot.settings.agent.clone())
}

pub async fn choose_agent(
    app: &App,
    bot: &ConfiguredBot,
    chat: Chat,
    agent_id: &str,
) -> redis::RedisResult<()> {
    let mut redis = app.redis.clone();
    redis::cmd("SET")
        .arg(agent_key(app, &bot.name, chat))
        .arg(agent_id)
        .query_async(&mut redis)
        .await
}

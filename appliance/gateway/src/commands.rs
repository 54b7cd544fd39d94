//! The gateway's own commands ([`crate::update::COMMANDS`]): `/start` and `/help`, `/new`
//! (`/reset`), `/agent`, `/voice`, `/status`, and `/runs` and `/cancel` ([`crate::runs`]),
//! each answered with one message.

use daarion_control_client::{ClientError, QuotaStatus};
use daarion_router_client::ClientError as RouterError;
use serde_json::{Value, json};

use crate::bots::ConfiguredBot;
use crate::conversation::{SORRY, Said};
use crate::update::{Chat, Sender};
use crate::{App, GatewayError, chat_settings};

/// The reply to `/name args`.
pub async fn answer(
    app: &App,
    bot: &ConfiguredBot,
    chat: Chat,
    from: &Sender,
    name: &str,
    args: &str,
) -> String {
    match name {
        "start" | "help" => help(from),
        "new" | "reset" => start_afresh(app, bot, chat, from, name).await,
        "agent" if args.is_empty() => match chat_settings::chosen_agent(app, bot, chat).await {
            Some(agent) => format!("You are talking to `{agent}`. Switch with /agent NAME."),
            None => "You are talking to the default agent. Switch with /agent NAME.".into(),
        },
        "agent" => switch_agent(app, bot, chat, args).await,
        "voice" => voice(app, bot, chat, args).await,
        "runs" => crate::runs::commands::runs(app, from).await,
        "cancel" => crate::runs::commands::cancel(app, from, args).await,
        "status" => match status(app, from).await {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the quota");
                SORRY.into()
            }
        },
        _ => SORRY.into(),
    }
}

fn help(from: &Sender) -> String {
    format!(
        "Hi {}! Just write to me and I will answer.\n\n/new — start a new conversation\n/agent NAME — talk to another agent\n/voice on|off — spoken answers as voice messages\n/status — your usage and limits\n/runs — your crew runs; /cancel stops one\n/help — this message",
        from.name
    )
}

/// `/new`: the router closes the chat's session with its agent, so the next message starts one.
async fn start_afresh(
    app: &App,
    bot: &ConfiguredBot,
    chat: Chat,
    from: &Sender,
    name: &str,
) -> String {
    let agent = chat_settings::chosen_agent(app, bot, chat).await;
    let message = Said::typed(chat, from, format!("/{name}")).into_inbound(&bot.name, agent);
    match app.router.reset(&message).await {
        Ok(done) => format!("Started a new conversation with {}.", done.agent_name),
        Err(RouterError::Refused { body, .. }) => {
            format!("I could not start afresh: {}", body.message)
        }
        Err(e) => {
            tracing::error!(error = %e, "reset failed");
            SORRY.into()
        }
    }
}

/// `/agent NAME`: checked with the control plane, then remembered for the chat.
async fn switch_agent(app: &App, bot: &ConfiguredBot, chat: Chat, args: &str) -> String {
    let wanted = args
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_lowercase();
    match app.control.agent(&wanted).await {
        Ok(agent) => match chat_settings::choose_agent(app, bot, chat, &agent.value.id).await {
            Ok(()) => format!("You are now talking to {}.", agent.value.name),
            Err(e) => {
                tracing::error!(error = %e, "cannot store the chat's agent");
                SORRY.into()
            }
        },
        Err(ClientError::NotFound(_)) => format!("There is no agent called `{wanted}`."),
        Err(e) => {
            tracing::error!(error = %e, "cannot look the agent up");
            SORRY.into()
        }
    }
}

/// `/voice on|off`.
async fn voice(app: &App, bot: &ConfiguredBot, chat: Chat, args: &str) -> String {
    let (on, reply) = match args.to_lowercase().as_str() {
        "on" => (
            true,
            "Voice replies are on: answers come as text and as a voice message.",
        ),
        "off" => (false, "Voice replies are off."),
        _ => return "Use /voice on or /voice off.".into(),
    };
    match chat_settings::set_voice_replies(app, bot, chat, on).await {
        Ok(()) => reply.into(),
        Err(e) => {
            tracing::error!(error = %e, "cannot store the voice setting");
            SORRY.into()
        }
    }
}

/// `/status`: what the user used and may still use.
async fn status(app: &App, from: &Sender) -> Result<String, GatewayError> {
    let user = crate::pairing::resolve_user(app, from).await?;
    let quota = app
        .control
        .quota_status(&user)
        .await
        .map_err(|e| GatewayError::unavailable("the control plane", e))?;
    Ok(usage_report(&quota))
}

fn usage_report(quota: &QuotaStatus) -> String {
    // Used amounts are written as JSON writes them (`0.0`, not `0`), as `/status` always showed
    // the control plane's numbers.
    let line = |label: &str, used: Value, limit: Option<f64>| match limit {
        Some(limit) => format!("{label}: {used} of {limit}"),
        None => format!("{label}: {used} (no limit)"),
    };
    let (u, l) = (&quota.usage, &quota.limits);
    [
        "Your usage:".to_owned(),
        line(
            "requests this minute",
            json!(u.requests_this_minute),
            l.requests_per_minute.map(|n| n as f64),
        ),
        line(
            "tokens today",
            json!(u.tokens_today),
            l.tokens_per_day.map(|n| n as f64),
        ),
        line(
            "GPU-seconds today",
            json!(u.gpu_seconds_today),
            l.gpu_seconds_per_day,
        ),
        line(
            &format!("cost this month ({})", l.currency),
            json!(u.cost_this_month),
            l.cost_per_month,
        ),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use daarion_control_client::{LimitSources, Limits, UsageNow};

    use super::*;

    #[test]
    fn status_shows_each_budget_with_its_limit_or_none() {
        let quota = |limits: Limits| QuotaStatus {
            user_id: "u".into(),
            roles: vec!["user".into()],
            limits,
            sources: LimitSources::default(),
            usage: UsageNow {
                requests_this_minute: 3,
                tokens_today: 120,
                gpu_seconds_today: 0.0,
                cost_this_month: 0.25,
            },
        };
        for (limits, expected) in [
            (
                Limits {
                    currency: "USD".into(),
                    ..Limits::default()
                },
                "Your usage:\nrequests this minute: 3 (no limit)\ntokens today: 120 (no limit)\n\
                 GPU-seconds today: 0.0 (no limit)\ncost this month (USD): 0.25 (no limit)",
            ),
            (
                Limits {
                    requests_per_minute: Some(60),
                    tokens_per_day: Some(100_000),
                    gpu_seconds_per_day: Some(1.5),
                    cost_per_month: Some(20.0),
                    currency: "EUR".into(),
                },
                "Your usage:\nrequests this minute: 3 of 60\ntokens today: 120 of 100000\n\
                 GPU-seconds today: 0.0 of 1.5\ncost this month (EUR): 0.25 of 20",
            ),
        ] {
            assert_eq!(usage_report(&quota(limits)), expected);
        }
    }
}

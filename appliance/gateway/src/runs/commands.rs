//! What a Telegram user does with their crew runs: `/runs`, `/cancel [ID]`, and answering a
//! run's question with their next message. The gateway calls the crews service with the root
//! credential, so it checks itself that every run it touches is the asking user's: runs are
//! only ever found through the list filtered by that user, and a waiting question is answered
//! only by the user whose run asked it.

use daarion_crews_client::{ClientError, ResumeRequest, Run, RunsQuery};
use uuid::Uuid;

use super::{state, text};
use crate::bots::ConfiguredBot;
use crate::conversation::SORRY;
use crate::metrics::RUN_ANSWERS;
use crate::telegram::say;
use crate::update::{Chat, Sender};
use crate::{App, GatewayError, pairing};

/// How many of a user's runs `/runs` shows, and `/cancel ID` looks through.
const LISTED: u32 = 20;
/// The fewest characters of an id taken to name a run.
const MIN_TYPED: usize = 4;

/// The reply to `/runs`.
pub async fn runs(app: &App, from: &Sender) -> String {
    if app.crews.is_none() {
        return text::CREWS_OFF.into();
    }
    match own_runs(app, from).await {
        Ok((_, runs)) => text::list(&runs),
        Err(e) => {
            tracing::error!(error = %e, "cannot list a user's runs");
            SORRY.into()
        }
    }
}

/// The reply to `/cancel ID` (`args`) or `/cancel` (the latest unfinished run).
pub async fn cancel(app: &App, from: &Sender, args: &str) -> String {
    let Some(crews) = &app.crews else {
        return text::CREWS_OFF.into();
    };
    let (user, runs) = match own_runs(app, from).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "cannot list a user's runs");
            return SORRY.into();
        }
    };
    let wanted = args
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_lowercase();
    let run = if wanted.is_empty() {
        match runs.iter().find(|r| !r.state.is_final()) {
            Some(r) => r,
            None => return text::nothing_to_cancel(),
        }
    } else {
        match chosen(&runs, &wanted) {
            Some(r) => r,
            None => return text::no_such_run(&wanted),
        }
    };
    if run.user_id != user {
        // The crews service answered a list filtered by this user with someone else's run.
        tracing::error!(run = %run.id, "the crews service listed another user's run");
        return SORRY.into();
    }
    if run.state.is_final() {
        return text::already_finished(run);
    }
    match crews.cancel(run.id).await {
        Ok(run) => text::cancelled(&run),
        // It finished between the list and the cancel.
        Err(ClientError::Refused { status: 409, .. }) => text::already_finished(run),
        Err(e) => {
            tracing::error!(error = %e, run = %run.id, "cannot cancel a run");
            SORRY.into()
        }
    }
}

/// The run `wanted` names: its short id, or its whole id.
fn chosen<'a>(runs: &'a [Run], wanted: &str) -> Option<&'a Run> {
    let wanted = wanted.replace('-', "");
    runs.iter().find(|r| {
        let id = r.id.simple().to_string();
        id == wanted || (wanted.len() >= MIN_TYPED && id.ends_with(&wanted))
    })
}

/// The asking user's DAARION id and their latest runs, newest first.
async fn own_runs(app: &App, from: &Sender) -> Result<(Uuid, Vec<Run>), GatewayError> {
    let crews = app
        .crews
        .as_ref()
        .ok_or_else(|| GatewayError::NotFound("crews service".into()))?;
    let user: Uuid = pairing::resolve_user(app, from)
        .await?
        .parse()
        .map_err(|e| GatewayError::unavailable("memory", e))?;
    let query = RunsQuery {
        user_id: Some(user),
        limit: Some(LISTED),
        ..RunsQuery::default()
    };
    let mut runs = crews
        .runs(&query)
        .await
        .map_err(|e| GatewayError::unavailable("the crews service", e))?;
    runs.retain(|r| r.user_id == user);
    runs.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    Ok((user, runs))
}

/// A message in a chat where a run waits for its user's answer: when it is that user's, it
/// resumes the run (and `Some` outcome is returned) instead of going to the router.
pub async fn answer_waiting(
    app: &App,
    bot: &ConfiguredBot,
    chat: Chat,
    from: &Sender,
    answer: &str,
) -> Option<&'static str> {
    let crews = app.crews.as_ref()?;
    let waiting = match state::waiting(app, &bot.name, chat.id).await {
        Ok(w) => w?,
        Err(e) => {
            // The message is not lost: it goes to the agent as usual.
            tracing::warn!(error = %e, "cannot read whether a run waits in this chat");
            return None;
        }
    };
    let user = match pairing::resolve_user(app, from).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "cannot resolve who answers a run");
            say(app, bot, chat, SORRY).await;
            return Some("failed");
        }
    };
    if user.parse::<Uuid>().ok() != Some(waiting.user) {
        // Someone else in a group: their message is theirs.
        return None;
    }
    let request = ResumeRequest {
        answer: Some(answer.to_owned()),
        budget: None,
    };
    match crews.resume(waiting.run, &request).await {
        Ok(_) => {
            state::clear_waiting(app, &bot.name, chat.id, waiting.run).await;
            RUN_ANSWERS.with_label_values(&["resumed"]).inc();
            say(app, bot, chat, text::CONTINUES).await;
            Some("run_answered")
        }
        Err(ClientError::Refused { status, .. }) if status < 500 => {
            // Answered elsewhere, cancelled or gone: an ordinary message after all.
            tracing::info!(run = %waiting.run, status, "the waiting run no longer waits");
            state::clear_waiting(app, &bot.name, chat.id, waiting.run).await;
            RUN_ANSWERS.with_label_values(&["stale"]).inc();
            None
        }
        Err(e) => {
            tracing::error!(error = %e, run = %waiting.run, "cannot resume a run");
            RUN_ANSWERS.with_label_values(&["failed"]).inc();
            say(app, bot, chat, SORRY).await;
            Some("failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_chosen_by_its_short_or_whole_id_only() {
        let run = |id: &str| -> Run {
            serde_json::from_value(serde_json::json!({
                "id": id, "crew": "c", "crew_version": 1, "user_id": Uuid::nil(),
                "agent_id": "a", "state": "running", "inputs": {}, "task": "",
                "budget": {}, "usage": {}, "tasks_done": 0, "tasks_total": 1,
                "created_at": "2026-01-01T00:00:00Z"
            }))
            .unwrap()
        };
        let runs = [
            run("0190f3a2-7b4c-7d00-8e11-22334455abcd"),
            run("0190f3a2-7b4c-7d00-8e11-99887766dcba"),
        ];
        for (wanted, found) in [
            ("4455abcd", Some(0)),
            ("7766dcba", Some(1)),
            ("0190f3a2-7b4c-7d00-8e11-99887766dcba", Some(1)),
            ("0190f3a2", None),
            ("abcd", Some(0)),
            ("cd", None),
            ("ffffffff", None),
        ] {
            assert_eq!(
                chosen(&runs, wanted).map(|r| r.id),
                found.map(|i| runs[i].id),
                "{wanted}"
            );
        }
    }
}

//! What a Telegram user reads about their crew runs: one place for the wording, so it stays
//! the same in the progress line, the result, `/runs` and `/cancel`.

use daarion_crews_client::{Run, RunState, StopCode};
use uuid::Uuid;

/// How many characters of a run's id a user types: the id's tail, because run ids are UUIDv7
/// and their head is a timestamp that runs started in the same minute share.
pub const SHORT_ID: usize = 8;

pub fn short_id(id: Uuid) -> String {
    let simple = id.simple().to_string();
    simple[simple.len() - SHORT_ID..].to_owned()
}

/// The one progress message of a run, as it is edited.
pub fn progress(crew: &str, line: &str) -> String {
    format!("⏳ {crew}: {line}")
}

pub fn progress_done(crew: &str) -> String {
    format!("✅ {crew}: done")
}

pub fn progress_stopped(crew: &str) -> String {
    format!("⛔ {crew}: stopped")
}

pub fn question(crew: &str, question: &str) -> String {
    format!("❓ {crew} asks:\n{question}\n\nYour next message here is the answer.")
}

pub const CONTINUES: &str = "Got it — the crew continues.";
pub const CREWS_OFF: &str = "Crew runs are off on this appliance.";

/// The budget a stop code names, as a person says it.
fn budget(code: StopCode) -> Option<&'static str> {
    Some(match code {
        StopCode::Tokens => "token",
        StopCode::Cost => "cost",
        StopCode::GpuSeconds => "GPU-seconds",
        StopCode::Steps => "step",
        StopCode::WallTime => "time",
        _ => return None,
    })
}

/// `agent.run.failed`, in a sentence: budgets named, a cancel said as one.
pub fn failed(crew: &str, stop: &str, reason: &str) -> String {
    let reason = reason.trim();
    match StopCode::parse(stop) {
        Some(StopCode::Cancelled) => format!("The {crew} run was cancelled."),
        Some(code) => match budget(code) {
            Some(name) if reason.is_empty() => {
                format!("The {crew} run stopped: it reached its {name} budget.")
            }
            Some(name) => {
                format!("The {crew} run stopped: it reached its {name} budget ({reason}).")
            }
            None if reason.is_empty() => format!("The {crew} run failed."),
            None => format!("The {crew} run failed: {reason}"),
        },
        None if reason.is_empty() => format!("The {crew} run failed."),
        None => format!("The {crew} run failed: {reason}"),
    }
}

fn state(run: &Run) -> String {
    match run.state {
        RunState::Queued => "queued".into(),
        RunState::Running => format!("running, {}/{} tasks", run.tasks_done, run.tasks_total),
        RunState::WaitingInput => "waiting for your answer".into(),
        RunState::Completed => "done".into(),
        RunState::Failed => match &run.stop {
            Some(stop) => format!("stopped ({})", stop.code.as_str()),
            None => "failed".into(),
        },
        RunState::Cancelled => "cancelled".into(),
    }
}

/// `/runs`: newest first, one line each.
pub fn list(runs: &[Run]) -> String {
    if runs.is_empty() {
        return "You have no crew runs.".into();
    }
    let mut lines = vec!["Your crew runs:".to_owned()];
    lines.extend(
        runs.iter()
            .map(|r| format!("{} · {} — {}", short_id(r.id), r.crew, state(r))),
    );
    if runs.iter().any(|r| !r.state.is_final()) {
        lines.push(String::new());
        lines.push("/cancel ID stops one; /cancel alone the latest.".into());
    }
    lines.join("\n")
}

pub fn cancelled(run: &Run) -> String {
    format!("Cancelled {} · {}.", short_id(run.id), run.crew)
}

pub fn nothing_to_cancel() -> String {
    "You have no running crew runs.".into()
}

pub fn no_such_run(wanted: &str) -> String {
    format!("You have no crew run {wanted}. /runs lists them.")
}

pub fn already_finished(run: &Run) -> String {
    format!(
        "{} · {} has already finished ({}).",
        short_id(run.id),
        run.crew,
        state(run)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_the_budget_that_ran_out() {
        for (stop, reason, said) in [
            (
                "tokens",
                "200000 tokens used",
                "The research run stopped: it reached its token budget (200000 tokens used).",
            ),
            (
                "cost",
                "",
                "The research run stopped: it reached its cost budget.",
            ),
            (
                "gpu_seconds",
                "31 s",
                "The research run stopped: it reached its GPU-seconds budget (31 s).",
            ),
            (
                "wall_time",
                "1 h",
                "The research run stopped: it reached its time budget (1 h).",
            ),
            (
                "cancelled",
                "by the user",
                "The research run was cancelled.",
            ),
            (
                "delegation_loop",
                "a asked b asked a",
                "The research run failed: a asked b asked a",
            ),
            ("", "", "The research run failed."),
            ("something_new", "why", "The research run failed: why"),
        ] {
            assert_eq!(failed("research", stop, reason), said, "{stop}");
        }
    }

    #[test]
    fn short_ids_are_the_random_tail() {
        let id: Uuid = "0190f3a2-7b4c-7d00-8e11-22334455abcd".parse().unwrap();
        assert_eq!(short_id(id), "4455abcd");
    }
}

//! What the model is sent for this turn: the system prompt with what memory knows, the history
//! (summarised past the budget) and the new message.

use daarion_llm::Message;
use uuid::Uuid;

use super::admitted::Admitted;
use super::quota::Spent;
use super::sink::Sink;
use super::summary::summarise;
use crate::context::{self, Entry};
use crate::{App, RouterError};

/// The history read from memory per turn, before fitting it to the context.
const HISTORY_LIMIT: u32 = 100;

/// `question` is the stored user message of this turn (left out of history and search hits).
pub async fn build(
    app: &App,
    turn: &Admitted,
    question: Uuid,
    sink: &mut Sink,
    spent: &mut Spent,
) -> Result<Vec<Message>, RouterError> {
    let (summary, history) = match &turn.history {
        Some(given) => (None, context::given_history(given)),
        None => {
            let stored = app.memory.history(turn.session.id, HISTORY_LIMIT).await?;
            let before: Vec<_> = stored.into_iter().filter(|m| m.id != question).collect();
            context::history_messages(&before)
        }
    };
    let mut system = turn.system_prompt.clone();
    system.push_str(&memory_block(app, turn, question, &history).await?);

    let budget = context::history_budget(&turn.settings, &system, &turn.text);
    let (older, kept) = context::fit(history, budget);
    // A client's own history is not stored, so there is no session to keep a summary in.
    let summary = if older.is_empty() || turn.history.is_some() {
        summary
    } else {
        summarise(app, turn, summary, &older, sink, spent).await
    };
    Ok(context::assemble(system, summary, kept, &turn.text))
}

/// The facts and related earlier messages memory holds for this question, as a section of the
/// system prompt.
async fn memory_block(
    app: &App,
    turn: &Admitted,
    question: Uuid,
    history: &[Entry],
) -> Result<String, RouterError> {
    let hits = turn.settings.memory_hits;
    if hits == 0 {
        return Ok(String::new());
    }
    let facts = app.memory.facts(turn.user_id).await?;
    // Memory takes queries up to 1000 characters; the start of a long message says enough.
    let query: String = turn.text.chars().take(500).collect();
    let found = match app.memory.search(turn.user_id, &query, hits + 1).await {
        Ok(found) => context::unseen(found, question, history),
        Err(e) => {
            // A query memory cannot parse must not cost the user their answer.
            tracing::warn!(error = %e, "memory search failed; answering without it");
            Vec::new()
        }
    };
    Ok(context::memory_block(&facts, &found, hits as usize))
}

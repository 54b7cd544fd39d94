//! Summarising the history that no longer fits the context.

use uuid::Uuid;

use super::admitted::Admitted;
use super::chain::call_model;
use super::quota::Spent;
use super::sink::Sink;
use crate::context::{self, Entry};
use crate::{App, metrics};

/// Folds the messages that no longer fit into the running summary and stores it, so later
/// turns start from it. On failure the old messages are left out, and the turn goes on.
pub async fn summarise(
    app: &App,
    turn: &Admitted,
    previous: Option<String>,
    older: &[Entry],
    sink: &mut Sink,
    spent: &mut Spent,
) -> Option<String> {
    let through: Uuid = older.last()?.0;
    let request = context::summary_request(previous.as_deref(), older);
    let outcome = match call_model(&turn.links, &request, sink, false).await {
        Ok(o) if !o.content.trim().is_empty() => o,
        Ok(_) => return previous,
        Err(e) => {
            tracing::warn!(error = %e, "cannot summarise the history; older messages left out");
            return previous;
        }
    };
    let link = &turn.links[outcome.link];
    spent.add(link, &outcome, &app.gpu);
    let summary = outcome.content.trim().to_owned();
    let stored = app
        .memory
        .add_message(
            turn.session.id,
            daarion_memory_client::NewMessage {
                agent_id: Some(turn.agent.id.clone()),
                model: Some(link.id()),
                trace_id: Some(turn.trace_id.clone()),
                versions: context::summary_versions(through),
                ..daarion_memory_client::NewMessage::new("system", summary.clone())
            },
        )
        .await;
    if let Err(e) = stored {
        tracing::warn!(error = %e, "cannot store the summary; it will be made again");
    }
    metrics::SUMMARIES.inc();
    Some(summary)
}

//! `POST /v1/steps/llm` and `/v1/steps/tool`: one model call or one tool call of a crew run's
//! step, for any user, under the same policy, quota, fallback chain and tools as a turn (the
//! contract is `daarion_router_client::step`). Both are idempotent by key ([`journal`]): a
//! repeat answers the kept answer with `replayed: true` and calls nothing; a repeat while the
//! first call still runs is 409 `step_in_progress`.

mod bounds;
mod journal;
mod llm;
mod tool;
mod who;

use axum::Json;
use axum::extract::State;
use daarion_router_client::{StepRequest, StepResponse, ToolRequest, ToolResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use journal::Begin;
pub use journal::Journal;

use crate::{App, RouterError, metrics};

/// The outcome label of a step that did not answer.
fn failure(e: &RouterError) -> &'static str {
    match e {
        RouterError::Refused(_) => "refused",
        RouterError::StepInProgress => "in_progress",
        RouterError::Invalid { .. } | RouterError::StepTooLarge { .. } => "invalid",
        _ => "failed",
    }
}

/// Runs `work` once per key: the kept answer if there is one, else `work` under the key's lock,
/// its answer kept before it is returned.
async fn once<T, F>(
    app: &App,
    kind: &'static str,
    user: Uuid,
    key: &str,
    work: F,
) -> Result<(T, bool), RouterError>
where
    T: Serialize + DeserializeOwned,
    F: Future<Output = Result<T, RouterError>>,
{
    match app.steps.begin::<T>(kind, user, key).await? {
        Begin::Replay(kept) => Ok((kept, true)),
        Begin::Run(lock) => match work.await {
            Ok(answer) => {
                app.steps.keep(lock, &answer).await?;
                Ok((answer, false))
            }
            Err(e) => {
                app.steps.abandon(lock).await;
                Err(e)
            }
        },
    }
}

fn count<T>(kind: &str, result: &Result<(T, bool), RouterError>) {
    let outcome = match result {
        Ok((_, true)) => "replayed",
        Ok((_, false)) => "answered",
        Err(e) => failure(e),
    };
    metrics::STEPS.with_label_values(&[kind, outcome]).inc();
}

pub async fn llm_step(
    State(app): State<App>,
    Json(step): Json<StepRequest>,
) -> Result<Json<StepResponse>, RouterError> {
    let result = match bounds::llm(&step) {
        Err(e) => Err(e),
        Ok(()) => {
            let (user, key) = (step.user_id, step.idempotency_key.clone());
            once(&app, "llm", user, &key, llm::run(&app, step)).await
        }
    };
    count("llm", &result);
    let (mut answer, replayed) = result?;
    answer.replayed = replayed;
    Ok(Json(answer))
}

pub async fn tool_step(
    State(app): State<App>,
    Json(step): Json<ToolRequest>,
) -> Result<Json<ToolResponse>, RouterError> {
    // A name no tool has is refused before any kept answer is looked at.
    let known = bounds::tool(&step).and_then(|()| {
        if app.toolbox.names().any(|n| n == step.name) {
            Ok(())
        } else {
            Err(RouterError::invalid(
                "name",
                format!("there is no tool named `{}`", step.name),
            ))
        }
    });
    let result = match known {
        Err(e) => Err(e),
        Ok(()) => {
            let (user, key) = (step.user_id, step.idempotency_key.clone());
            once(&app, "tool", user, &key, tool::run(&app, step)).await
        }
    };
    count("tool", &result);
    let (mut answer, replayed) = result?;
    answer.replayed = replayed;
    Ok(Json(answer))
}

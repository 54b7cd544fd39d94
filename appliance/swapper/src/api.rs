//! The swapper's own routes (models, status, admin), embeddings, and what every OpenAI
//! endpoint shares: authentication, the model kind check, one request to a worker.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use daarion_swapper_client::embeddings::{
    EMBEDDING, Embedding, EmbeddingInput, EmbeddingUsage, EmbeddingsRequest, EmbeddingsResponse,
    LIST, MAX_EMBEDDING_INPUTS,
};
use daarion_swapper_client::{ModelAction, ModelEntry, ModelList};
use daarion_worker_io::{Embed, Event, codes};
use serde_json::{Value, json};

use crate::App;
use crate::error::SwapError;
use crate::manifest::Kind;
use crate::metrics::TOKENS;

/// Root token (everything), or a control-plane API token with `models:use`, or an admin's
/// browser session; admin routes need `admin`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub admin: bool,
}

pub async fn authenticate(
    State(app): State<App>,
    mut request: Request,
    next: Next,
) -> Result<Response, SwapError> {
    let principal = daarion_control_client::identify(
        app.root_token.as_deref(),
        app.introspector.as_ref(),
        request.headers(),
    )
    .await
    .map_err(|e| {
        tracing::warn!(error = %e, "token introspection failed");
        SwapError::AuthUnavailable
    })?
    .ok_or(SwapError::Unauthenticated)?;
    if !principal.has("models:use") {
        return Err(SwapError::Forbidden("models:use"));
    }
    let caller = Caller {
        admin: principal.is_admin(),
    };
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

pub async fn models(State(app): State<App>) -> Json<ModelList> {
    let data = app
        .scheduler
        .manifests()
        .iter()
        .map(|m| ModelEntry {
            id: m.id.clone(),
            object: "model".into(),
            created: 0,
            owned_by: "daarion".into(),
            kind: m.kind.name().into(),
        })
        .collect();
    Json(ModelList {
        object: LIST.into(),
        data,
    })
}

pub(crate) fn check_kind(app: &App, model: &str, want: Kind) -> Result<(), SwapError> {
    let manifest = app
        .scheduler
        .manifest(model)
        .ok_or_else(|| crate::scheduler::ScheduleError::UnknownModel(model.to_owned()))?;
    if manifest.kind != want {
        let (kind, endpoint) = match manifest.kind {
            Kind::Chat => ("chat", "/v1/chat/completions"),
            Kind::Vision => ("vision", "/v1/chat/completions"),
            Kind::Embedding => ("embedding", "/v1/embeddings"),
            Kind::Stt => ("speech-to-text", "/v1/audio/transcriptions"),
            Kind::Tts => ("text-to-speech", "/v1/audio/speech"),
            Kind::Image => ("image", "/v1/images/generations"),
        };
        return Err(SwapError::WrongKind {
            model: model.to_owned(),
            kind,
            endpoint,
        });
    }
    Ok(())
}

/// Holds `model` for one request answered by a single event, and lets the model go as soon
/// as it has answered. An error event is the worker's error; the caller takes the event it
/// expects and answers any other with [`worker_error`].
pub(crate) async fn ask_once(
    app: &App,
    model: &str,
    request: daarion_worker_io::Request,
) -> Result<Event, SwapError> {
    let lease = app.scheduler.acquire(model).await?;
    let (_, mut events) = lease
        .worker
        .request(request)
        .await
        .map_err(SwapError::WorkerFailed)?;
    let event = events
        .recv()
        .await
        .ok_or_else(|| SwapError::WorkerFailed("the worker went away".into()))?;
    drop(lease);
    if matches!(event, Event::Error { .. }) {
        return Err(worker_error(&event));
    }
    Ok(event)
}

/// What a worker's error event (or an event that was not the one expected) means for the
/// client.
pub(crate) fn worker_error(event: &Event) -> SwapError {
    let Event::Error { code, message, .. } = event else {
        return SwapError::WorkerFailed("the worker failed".into());
    };
    let message = message.clone();
    match code.as_str() {
        codes::CONTEXT_LENGTH_EXCEEDED => SwapError::ContextLength(message),
        codes::BAD_REQUEST | codes::TEMPLATE => SwapError::BadRequest(message),
        codes::BAD_AUDIO => {
            SwapError::BadRequest(format!("unsupported or damaged audio: {message}"))
        }
        codes::BAD_IMAGE | codes::NO_VISION => SwapError::BadRequest(message),
        _ => SwapError::WorkerFailed(message),
    }
}

/// The texts of an `input`, or why it is none: read here rather than by the JSON extractor so
/// the answer is a 400 in the swapper's words.
fn embedding_inputs(input: Value) -> Result<Vec<String>, SwapError> {
    let listed = input.as_array().is_some_and(|items| !items.is_empty());
    match serde_json::from_value::<EmbeddingInput>(input) {
        Ok(input) if listed || matches!(input, EmbeddingInput::One(_)) => Ok(input.into_texts()),
        Err(_) if listed => Err(SwapError::BadRequest(
            "input must be a string or a list of strings".into(),
        )),
        _ => Err(SwapError::BadRequest(
            "input must be a string or a non-empty list of strings".into(),
        )),
    }
}

pub async fn embeddings(
    State(app): State<App>,
    Json(body): Json<EmbeddingsRequest<Value>>,
) -> Result<Json<EmbeddingsResponse>, SwapError> {
    let inputs = embedding_inputs(body.input)?;
    if inputs.len() > MAX_EMBEDDING_INPUTS {
        return Err(SwapError::BadRequest(format!(
            "at most {MAX_EMBEDDING_INPUTS} inputs per request"
        )));
    }
    check_kind(&app, &body.model, Kind::Embedding)?;
    let request = daarion_worker_io::Request::Embed(Embed {
        id: 0,
        input: inputs,
    });
    let event = ask_once(&app, &body.model, request).await?;
    let Event::Embeddings {
        data,
        prompt_tokens,
        ..
    } = event
    else {
        return Err(worker_error(&event));
    };
    TOKENS
        .with_label_values(&[&body.model, "prompt"])
        .inc_by(prompt_tokens);
    let data = data
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| Embedding {
            object: EMBEDDING.into(),
            index,
            embedding,
        })
        .collect();
    Ok(Json(EmbeddingsResponse {
        object: LIST.into(),
        data,
        model: body.model,
        usage: EmbeddingUsage {
            prompt_tokens,
            total_tokens: prompt_tokens,
        },
    }))
}

pub async fn status(State(app): State<App>) -> Json<Value> {
    let models_dir = &app.config.general.models_dir;
    let present: serde_json::Map<String, Value> = app
        .scheduler
        .manifests()
        .iter()
        // Present means ready to load: a vision model's projector and an image model's
        // parts too; an online voice needs nothing on disk.
        .map(|m| {
            let present = m.files(models_dir).iter().all(|f| f.path.is_file());
            (m.id.clone(), Value::Bool(present))
        })
        .collect();
    Json(json!({
        "budget_bytes": app.scheduler.budget,
        "budget_source": app.budget.source,
        "models": app.scheduler.status(),
        "files_present": present,
        "pulls": app.pulls.snapshot(),
    }))
}

/// `POST /v1/swapper/models/{id}/{load|unload|pin|unpin|pull}` (admin); a pull runs in the
/// background, its progress in `status`.
pub async fn admin(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path((model, action)): Path<(String, String)>,
) -> Result<Json<ModelAction>, SwapError> {
    if !caller.admin {
        return Err(SwapError::Forbidden("admin"));
    }
    match action.as_str() {
        "load" => drop(app.scheduler.acquire(&model).await?),
        "unload" => {
            app.scheduler.unload(&model, "operator").await?;
        }
        "pin" => app.scheduler.set_pinned(&model, true)?,
        "unpin" => app.scheduler.set_pinned(&model, false)?,
        "pull" => {
            let manifest = app
                .scheduler
                .manifest(&model)
                .ok_or_else(|| crate::scheduler::ScheduleError::UnknownModel(model.clone()))?;
            if manifest.url.is_none() {
                return Err(SwapError::BadRequest(format!(
                    "model `{model}` has no url in its manifest"
                )));
            }
            let started = app
                .pulls
                .start(manifest, app.config.general.models_dir.clone());
            let done = if started {
                "pull started"
            } else {
                "pull already running"
            };
            return Ok(Json(ModelAction {
                model,
                done: done.into(),
            }));
        }
        other => {
            return Err(SwapError::BadRequest(format!(
                "unknown action `{other}`: load, unload, pin, unpin or pull"
            )));
        }
    }
    Ok(Json(ModelAction {
        model,
        done: action,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_inputs_are_explained() {
        assert_eq!(embedding_inputs(json!("a")).unwrap(), vec!["a".to_owned()]);
        assert_eq!(embedding_inputs(json!(["a", "b"])).unwrap().len(), 2);
        for (input, says) in [
            (json!([]), "non-empty list"),
            (json!(5), "non-empty list"),
            (json!(null), "non-empty list"),
            (json!(["a", 1]), "a list of strings"),
        ] {
            let e = embedding_inputs(input.clone()).unwrap_err().to_string();
            assert!(e.contains(says), "{input}: {e}");
        }
    }
}

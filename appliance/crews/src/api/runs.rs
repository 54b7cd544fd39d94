//! Runs: start, list, read with steps, live events, cancel, resume, re-run. A `crews:run`
//! credential reaches only its user's runs (or, unbound, those it started); `read` reads all.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, KeepAliveStream, Sse};
use daarion_crews_client::{
    CrewVersion, Rerun, ResumeRequest, Run, RunCreated, RunEvent, RunRequest, RunState, StepKind,
    Stop, StopCode,
};
use daarion_telemetry::TraceContext;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;
use serde_json::json;
use sqlx::types::Json as Jsonb;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::body;
use crate::store::defs;
use crate::store::runs::{self, NewRun, NewStep, RunRow};
use crate::{App, CrewsError, auth, budget, import, metrics, validate};

const MAX_INPUTS: usize = 64;
const MAX_INPUT_BYTES: usize = 16 * 1024;
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

fn text(field: &str, value: &str) -> Result<(), CrewsError> {
    if value.contains('\0') {
        return Err(CrewsError::invalid(field, "contains a NUL character"));
    }
    if value.len() > MAX_INPUT_BYTES {
        return Err(CrewsError::invalid(
            field,
            format!("is {} bytes; at most {MAX_INPUT_BYTES}", value.len()),
        ));
    }
    Ok(())
}

/// The inputs a run gives: bounded, and covering every `{placeholder}` of the crew (`{task}`
/// is covered by the request's task too).
fn check_inputs(
    crew: &CrewVersion,
    inputs: &BTreeMap<String, String>,
    task: &str,
) -> Result<(), CrewsError> {
    text("task", task)?;
    if inputs.len() > MAX_INPUTS {
        return Err(CrewsError::invalid(
            "inputs",
            format!("at most {MAX_INPUTS}"),
        ));
    }
    for (k, v) in inputs {
        text(&format!("inputs.{k}"), k)?;
        text(&format!("inputs.{k}"), v)?;
    }
    let mut wanted = BTreeSet::new();
    for t in &crew.spec.tasks {
        import::placeholders(&t.description, &mut wanted);
        import::placeholders(&t.expected_output, &mut wanted);
    }
    for a in &crew.spec.agents {
        for text in [&a.role, &a.goal, &a.backstory] {
            import::placeholders(text, &mut wanted);
        }
    }
    let missing: Vec<_> = wanted
        .into_iter()
        .filter(|w| !inputs.contains_key(w) && (w != "task" || task.is_empty()))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(CrewsError::invalid(
            "inputs",
            format!("the crew needs {}", missing.join(", ")),
        ))
    }
}

fn current_trace() -> Option<String> {
    Some(TraceContext::current_or_new().trace_id())
}

/// Commits a run change and tells the live streams.
async fn committed(
    app: &App,
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    row: &RunRow,
) -> Result<(), CrewsError> {
    tx.commit().await?;
    app.hub.state(row);
    Ok(())
}

#[utoipa::path(
    post, path = "/v1/crews/{id}/runs", tag = "runs", params(("id" = String, Path)),
    request_body(content = Object, description = "RunRequest: inputs, task, user_id, agent_id, budget, origin"),
    responses((status = 201, description = "the run, queued, with the crew's active version and its budget"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "lacks `crews:run`, or names another user than its own"),
              (status = 404, description = "no such crew"),
              (status = 422, description = "missing inputs, bad budget, no user or agent")),
    security(("bearer" = []))
)]
pub async fn start(
    State(app): State<App>,
    headers: HeaderMap,
    Path(crew): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<RunCreated>), CrewsError> {
    let caller = auth::caller(&app, &headers).await?;
    let request: RunRequest = body(&bytes)?;
    let user = caller.start_for(request.user_id)?;
    let version = defs::active_or_404(&app.pool, &crew).await?;
    check_inputs(&version, &request.inputs, &request.task)?;
    if let Some(b) = &request.budget {
        validate::budget(b)?;
    }
    let agent_id = version
        .spec
        .agent
        .clone()
        .or(request.agent_id.clone())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            CrewsError::invalid("agent_id", "the crew names no agent: the run must name one")
        })?;
    let mut tx = app.pool.begin().await?;
    let row = runs::insert(
        &mut tx,
        NewRun {
            id: Uuid::now_v7(),
            crew: crew.clone(),
            crew_version: version.version,
            user_id: user,
            agent_id,
            session_id: None,
            state: RunState::Queued,
            inputs: request.inputs,
            task: request.task,
            budget: budget::effective(&version.spec.budget, request.budget.as_ref(), &app.defaults),
            tasks_total: version.spec.tasks.len() as u32,
            stop: None,
            origin: request.origin,
            trace_id: current_trace(),
            started_by: caller.name(),
        },
    )
    .await?;
    row.announce(&mut tx).await?;
    committed(&app, tx, &row).await?;
    Ok((
        StatusCode::CREATED,
        Json(RunCreated {
            run: row.run(vec![]),
        }),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RunsQuery {
    /// queued, running, waiting_input, completed, failed, cancelled
    pub state: Option<String>,
    pub user_id: Option<Uuid>,
    pub crew: Option<String>,
    /// At most 500; 50 when not given.
    pub limit: Option<u32>,
}

#[utoipa::path(
    get, path = "/v1/runs", tag = "runs", params(RunsQuery),
    responses((status = 200, description = "runs newest first, without steps"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "lacks `read` / `crews:run`, or names another user"),
              (status = 422, description = "unknown state")),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<RunsQuery>,
) -> Result<Json<Vec<Run>>, CrewsError> {
    let caller = auth::caller(&app, &headers).await?;
    let scope = caller.list_scope(query.user_id)?;
    let state = query
        .state
        .as_deref()
        .map(|s| {
            RunState::parse(s)
                .ok_or_else(|| CrewsError::invalid("state", format!("`{s}` is not a run state")))
        })
        .transpose()?;
    let filter = runs::Filter {
        state,
        user_id: query.user_id,
        crew: query.crew,
        limit: query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
    };
    let rows = runs::list(&app.pool, &filter, &scope).await?;
    Ok(Json(rows.iter().map(|r| r.run(vec![])).collect()))
}

async fn visible(app: &App, headers: &HeaderMap, id: Uuid) -> Result<RunRow, CrewsError> {
    let caller = auth::caller(app, headers).await?;
    let row = runs::get_or_404(&app.pool, id).await?;
    caller.see(&row)?;
    Ok(row)
}

#[utoipa::path(
    get, path = "/v1/runs/{id}", tag = "runs", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the run with every step"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "not a run this credential may see"),
              (status = 404, description = "no such run")),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Json<Run>, CrewsError> {
    let row = visible(&app, &headers, id).await?;
    let steps = runs::steps(&app.pool, id).await?;
    Ok(Json(row.run(steps)))
}

fn sse(event: &RunEvent) -> Result<SseEvent, Infallible> {
    let name = match event {
        RunEvent::Snapshot { .. } => "snapshot",
        RunEvent::Step { .. } => "step",
        RunEvent::State { .. } => "state",
    };
    Ok(SseEvent::default()
        .event(name)
        .data(serde_json::to_string(event).unwrap_or_default()))
}

async fn snapshot(app: &App, id: Uuid) -> Result<RunEvent, CrewsError> {
    let row = runs::get_or_404(&app.pool, id).await?;
    let steps = runs::steps(&app.pool, id).await?;
    Ok(RunEvent::Snapshot {
        run: Box::new(row.run(steps)),
    })
}

#[utoipa::path(
    get, path = "/v1/runs/{id}/events", tag = "runs", params(("id" = Uuid, Path)),
    responses((status = 200, description = "server-sent events: `snapshot`, then `step` and `state` until the run is final", content_type = "text/event-stream"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "not a run this credential may see"),
              (status = 404, description = "no such run")),
    security(("bearer" = []))
)]
pub async fn events(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Sse<KeepAliveStream<BoxStream<'static, Result<SseEvent, Infallible>>>>, CrewsError> {
    visible(&app, &headers, id).await?;
    // Subscribed before the snapshot is read, so nothing written in between is missed (a step
    // may arrive twice: its `seq` tells).
    let rx = app.hub.subscribe();
    let first = snapshot(&app, id).await?;
    let done = matches!(&first, RunEvent::Snapshot { run } if run.state.is_final());
    let head = futures::stream::once(async move { sse(&first) });
    if done {
        return Ok(Sse::new(head.boxed()).keep_alive(KeepAlive::default()));
    }
    let rest = futures::stream::unfold((rx, app, false), move |(mut rx, app, done)| async move {
        if done {
            return None;
        }
        loop {
            match rx.recv().await {
                Ok((run, event)) if run == id => {
                    let done = matches!(&event, RunEvent::State { state, .. } if state.is_final());
                    return Some((sse(&event), (rx, app, done)));
                }
                Ok(_) => {}
                // Fell behind: the whole run again rather than a gap.
                Err(RecvError::Lagged(_)) => {
                    let event = snapshot(&app, id).await.ok()?;
                    return Some((sse(&event), (rx, app, false)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(head.chain(rest).boxed()).keep_alive(KeepAlive::default()))
}

/// Locks a run the caller may act on.
async fn locked(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    caller: &auth::Caller,
    id: Uuid,
) -> Result<RunRow, CrewsError> {
    let row = runs::lock(tx, id)
        .await?
        .ok_or_else(|| CrewsError::NotFound(format!("run {id}")))?;
    caller.act_on(&row)?;
    Ok(row)
}

#[utoipa::path(
    post, path = "/v1/runs/{id}/cancel", tag = "runs", params(("id" = Uuid, Path)),
    responses((status = 200, description = "cancelled (queued or waiting), or asked to stop (running: the worker stops at its next step)"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "not a run this credential may act on"),
              (status = 404, description = "no such run"),
              (status = 409, description = "run_final: it already ended")),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Json<Run>, CrewsError> {
    let caller = auth::caller(&app, &headers).await?;
    let mut tx = app.pool.begin().await?;
    let row = locked(&mut tx, &caller, id).await?;
    let row: RunRow = match row.state() {
        s if s.is_final() => return Err(CrewsError::run_final(s.as_str())),
        RunState::Running => {
            sqlx::query_as("UPDATE crew_runs SET cancel_requested = true WHERE id = $1 RETURNING *")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
        }
        _ => {
            let stop = Stop {
                code: StopCode::Cancelled,
                detail: format!("cancelled by {}", caller.name()),
            };
            let row: RunRow = sqlx::query_as(
                "UPDATE crew_runs SET state = 'cancelled', stop = $2, question = NULL, \
                     finished_at = clock_timestamp(), paused_at = clock_timestamp(), \
                     lease_holder = NULL, lease_until = NULL \
                 WHERE id = $1 RETURNING *",
            )
            .bind(id)
            .bind(Jsonb(stop))
            .fetch_one(&mut *tx)
            .await?;
            row.announce(&mut tx).await?;
            metrics::stopped(StopCode::Cancelled);
            row
        }
    };
    committed(&app, tx, &row).await?;
    Ok(Json(row.run(vec![])))
}

/// The journal key of the answer to a waiting run's question (see the crews-client worker
/// module): `human/<task>/<round>`, the task being the one of the run's last step.
async fn answer_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    run: Uuid,
) -> Result<(String, String), CrewsError> {
    let task: Option<String> = sqlx::query_scalar(
        "SELECT task FROM crew_run_steps WHERE run_id = $1 AND task IS NOT NULL \
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(run)
    .fetch_optional(&mut **tx)
    .await?;
    let task = task.unwrap_or_else(|| "run".into());
    let rounds: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM crew_run_steps WHERE run_id = $1 AND kind = 'human_input' AND task = $2",
    )
    .bind(run)
    .bind(&task)
    .fetch_one(&mut **tx)
    .await?;
    let key = daarion_crews_client::worker::human_input_key(&task, (rounds + 1) as u32);
    Ok((key, task))
}

#[utoipa::path(
    post, path = "/v1/runs/{id}/resume", tag = "runs", params(("id" = Uuid, Path)),
    request_body(content = Object, description = "ResumeRequest: answer (a waiting run), budget (raised limits)"),
    responses((status = 200, description = "queued again and re-requested; a waiting run's answer journalled"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "not a run this credential may act on"),
              (status = 404, description = "no such run"),
              (status = 409, description = "run_final (completed) or the run is still going"),
              (status = 422, description = "bad answer or budget")),
    security(("bearer" = []))
)]
pub async fn resume(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    bytes: Bytes,
) -> Result<Json<Run>, CrewsError> {
    let caller = auth::caller(&app, &headers).await?;
    let request: ResumeRequest = body(&bytes)?;
    if let Some(answer) = &request.answer {
        text("answer", answer)?;
    }
    if let Some(b) = &request.budget {
        validate::budget(b)?;
    }
    let mut tx = app.pool.begin().await?;
    let row = locked(&mut tx, &caller, id).await?;
    if row.crew_version == 0 {
        return Err(CrewsError::conflict(
            "the run's crew was unknown when it was asked for: start a new run",
        ));
    }
    let mut step = None;
    match row.state() {
        RunState::Completed => return Err(CrewsError::run_final("completed")),
        RunState::Queued | RunState::Running => {
            return Err(CrewsError::conflict(format!(
                "the run is {}: nothing to resume",
                row.state().as_str()
            )));
        }
        RunState::WaitingInput => {
            let (key, task) = answer_key(&mut tx, id).await?;
            let answer = request.answer.clone().unwrap_or_default();
            let input = json!({"question": row.question});
            let output = json!({"answer": answer});
            step = Some(
                runs::insert_step(
                    &mut tx,
                    id,
                    NewStep {
                        key: &key,
                        kind: StepKind::HumanInput,
                        task: Some(&task),
                        agent: None,
                        tool: None,
                        model: None,
                        input: &input,
                        output: &output,
                        error: None,
                        usage: Default::default(),
                        duration_ms: 0,
                    },
                )
                .await?,
            );
        }
        RunState::Failed | RunState::Cancelled => {}
    }
    let budget = match &request.budget {
        Some(raise) => budget::raised(&row.budget.0, raise),
        None => row.budget.0.clone(),
    };
    let row: RunRow = sqlx::query_as(
        "UPDATE crew_runs SET state = 'queued', question = NULL, stop = NULL, result = NULL, \
             finished_at = NULL, cancel_requested = false, lease_holder = NULL, lease_until = NULL, \
             started_at = started_at + (clock_timestamp() - coalesce(paused_at, clock_timestamp())), \
             paused_at = NULL, budget = $2 \
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(Jsonb(budget))
    .fetch_one(&mut *tx)
    .await?;
    row.announce(&mut tx).await?;
    tx.commit().await?;
    if let Some(step) = &step {
        app.hub.step(step);
    }
    app.hub.state(&row);
    Ok(Json(row.run(vec![])))
}

#[utoipa::path(
    post, path = "/v1/runs/{id}/rerun", tag = "runs", params(("id" = Uuid, Path)),
    request_body(content = Object, description = "Rerun: latest (the crew's newest version instead of the run's)"),
    responses((status = 201, description = "a new run of the same crew with the same inputs, queued"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "not a run this credential may act on"),
              (status = 404, description = "no such run, or its crew is gone"),
              (status = 409, description = "the run's crew was unknown")),
    security(("bearer" = []))
)]
pub async fn rerun(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Run>), CrewsError> {
    let caller = auth::caller(&app, &headers).await?;
    let request: Rerun = body(&bytes)?;
    let old = runs::get_or_404(&app.pool, id).await?;
    caller.act_on(&old)?;
    if old.crew_version == 0 {
        return Err(CrewsError::conflict(
            "the run's crew was unknown when it was asked for: start a new run",
        ));
    }
    let version = if request.latest {
        defs::active_or_404(&app.pool, &old.crew).await?
    } else {
        defs::version(&app.pool, &old.crew, old.crew_version as u32)
            .await?
            .ok_or_else(|| CrewsError::NotFound(format!("crew `{}`", old.crew)))?
    };
    let mut tx = app.pool.begin().await?;
    let row = runs::insert(
        &mut tx,
        NewRun {
            id: Uuid::now_v7(),
            crew: old.crew.clone(),
            crew_version: version.version,
            user_id: old.user_id,
            agent_id: old.agent_id.clone(),
            session_id: old.session_id,
            state: RunState::Queued,
            inputs: old.inputs.0.clone(),
            task: old.task.clone(),
            budget: old.budget.0.clone(),
            tasks_total: version.spec.tasks.len() as u32,
            stop: None,
            origin: old.origin.as_ref().map(|o| o.0.clone()),
            trace_id: current_trace(),
            started_by: caller.name(),
        },
    )
    .await?;
    row.announce(&mut tx).await?;
    committed(&app, tx, &row).await?;
    Ok((StatusCode::CREATED, Json(row.run(vec![]))))
}

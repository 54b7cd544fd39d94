//! The crews worker's journal (`/v1/worker/runs/{id}/…`): claim a run under a lease, journal
//! its steps, renew the lease, finish it. Every write names the worker; one that no longer
//! holds the lease is refused (`409 lease_lost`) rather than writing beside the new holder.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use daarion_crews_client::worker::{
    Claim, ClaimRequest, Finish, Heartbeat, HeartbeatAnswer, Outcome, Recorded, StepRecord,
};
use daarion_crews_client::{Run, RunState, StepKind, Stop, StopCode};
use sqlx::types::Json as Jsonb;
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use super::body;
use crate::store::defs;
use crate::store::runs::{self, NewRun, NewStep, RunRow};
use crate::{App, CrewsError, auth, budget, metrics};

const MAX_LEASE_SECS: u32 = 3600;
const MAX_KEY: usize = 256;

fn worker_name(worker: &str) -> Result<(), CrewsError> {
    if worker.is_empty() || worker.len() > 200 || worker.contains('\0') {
        return Err(CrewsError::invalid("worker", "1 to 200 characters"));
    }
    Ok(())
}

fn lease_secs(secs: u32) -> Result<(), CrewsError> {
    if secs == 0 || secs > MAX_LEASE_SECS {
        return Err(CrewsError::invalid(
            "lease_secs",
            format!("from 1 to {MAX_LEASE_SECS}"),
        ));
    }
    Ok(())
}

async fn lock(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<RunRow, CrewsError> {
    runs::lock(tx, id)
        .await?
        .ok_or_else(|| CrewsError::NotFound(format!("run {id}")))
}

/// The run is running under `worker`'s lease.
fn holds(row: &RunRow, worker: &str) -> Result<(), CrewsError> {
    let state = row.state();
    if state.is_final() {
        return Err(CrewsError::run_final(state.as_str()));
    }
    if state != RunState::Running || row.lease_holder.as_deref() != Some(worker) {
        return Err(CrewsError::lease_lost());
    }
    Ok(())
}

fn is_unique_violation(e: &CrewsError) -> bool {
    matches!(e, CrewsError::Db(sqlx::Error::Database(d)) if d.is_unique_violation())
}

/// Records a run that cannot run (its crew is unknown) as failed, with its event.
async fn fail_invalid(
    app: &App,
    mut tx: Transaction<'_, Postgres>,
    id: Uuid,
    request: ClaimRequest,
    detail: String,
) -> Result<CrewsError, CrewsError> {
    let row = runs::insert(
        &mut tx,
        NewRun {
            id,
            crew: request.crew,
            crew_version: 0,
            user_id: request.user_id,
            agent_id: request.agent_id,
            session_id: request.session_id,
            state: RunState::Failed,
            inputs: request.inputs,
            task: request.task,
            budget: Default::default(),
            tasks_total: 0,
            stop: Some(Stop {
                code: StopCode::Invalid,
                detail,
            }),
            origin: request.origin,
            trace_id: request.trace_id,
            started_by: "bus".into(),
        },
    )
    .await?;
    row.announce(&mut tx).await?;
    tx.commit().await?;
    metrics::stopped(StopCode::Invalid);
    app.hub.state(&row);
    Ok(CrewsError::run_final("failed"))
}

#[utoipa::path(
    post, path = "/v1/worker/runs/{id}/claim", tag = "worker", params(("id" = Uuid, Path)),
    request_body(content = Object, description = "ClaimRequest: worker, lease_secs and the bus request's fields"),
    responses((status = 200, description = "the run (running, leased to the worker) with its journal and crew version"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "not a service credential"),
              (status = 409, description = "run_final (ended, or its crew is unknown: recorded failed), run_leased, waiting_input"),
              (status = 422, description = "bad request")),
    security(("bearer" = []))
)]
pub async fn claim(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    bytes: Bytes,
) -> Result<Json<Claim>, CrewsError> {
    auth::caller(&app, &headers).await?.service_write()?;
    let request: ClaimRequest = body(&bytes)?;
    worker_name(&request.worker)?;
    lease_secs(request.lease_secs)?;
    let mut tx = app.pool.begin().await?;
    let row = match runs::lock(&mut tx, id).await? {
        Some(row) => row,
        None => {
            let Some(version) = defs::active(&mut *tx, &request.crew).await? else {
                let detail = format!("there is no crew `{}`", request.crew);
                return Err(fail_invalid(&app, tx, id, request, detail).await?);
            };
            let inserted = runs::insert(
                &mut tx,
                NewRun {
                    id,
                    crew: request.crew.clone(),
                    crew_version: version.version,
                    user_id: request.user_id,
                    agent_id: request.agent_id.clone(),
                    session_id: request.session_id,
                    state: RunState::Queued,
                    inputs: request.inputs.clone(),
                    task: request.task.clone(),
                    budget: budget::effective(&version.spec.budget, None, &app.defaults),
                    tasks_total: version.spec.tasks.len() as u32,
                    stop: None,
                    origin: request.origin.clone(),
                    trace_id: request.trace_id.clone(),
                    started_by: "bus".into(),
                },
            )
            .await;
            match inserted {
                Ok(row) => row,
                // Another worker's claim of the same request recorded it first.
                Err(e) if is_unique_violation(&e) => {
                    return Err(CrewsError::run_leased("another worker"));
                }
                Err(e) => return Err(e),
            }
        }
    };
    match row.state() {
        s if s.is_final() => return Err(CrewsError::run_final(s.as_str())),
        RunState::WaitingInput => return Err(CrewsError::waiting_input()),
        _ => {}
    }
    if let Some(holder) = row.leased_by_other(&request.worker, OffsetDateTime::now_utc()) {
        return Err(CrewsError::run_leased(holder));
    }
    let Some(version) = defs::version(&mut *tx, &row.crew, row.crew_version as u32).await? else {
        return Err(CrewsError::NotFound(format!(
            "version {} of crew `{}`",
            row.crew_version, row.crew
        )));
    };
    let row: RunRow = sqlx::query_as(
        "UPDATE crew_runs SET state = 'running', started_at = coalesce(started_at, clock_timestamp()), \
             lease_holder = $2, lease_until = clock_timestamp() + make_interval(secs => $3) \
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(&request.worker)
    .bind(f64::from(request.lease_secs))
    .fetch_one(&mut *tx)
    .await?;
    let steps = runs::steps(&mut *tx, id).await?;
    tx.commit().await?;
    app.hub.state(&row);
    Ok(Json(Claim {
        lease_until: row.lease_until.unwrap_or_else(OffsetDateTime::now_utc),
        run: row.run(steps),
        spec: version.spec,
    }))
}

#[utoipa::path(
    post, path = "/v1/worker/runs/{id}/steps", tag = "worker", params(("id" = Uuid, Path)),
    request_body(content = Object, description = "StepRecord: one journal entry, by key"),
    responses((status = 200, description = "the stored step (created: false when its key was journalled already) and whether to cancel"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "not a service credential"),
              (status = 404, description = "no such run"),
              (status = 409, description = "lease_lost or run_final"),
              (status = 422, description = "bad step")),
    security(("bearer" = []))
)]
pub async fn record(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    bytes: Bytes,
) -> Result<Json<Recorded>, CrewsError> {
    auth::caller(&app, &headers).await?.service_write()?;
    let step: StepRecord = body(&bytes)?;
    worker_name(&step.worker)?;
    if step.key.is_empty() || step.key.len() > MAX_KEY || step.key.contains('\0') {
        return Err(CrewsError::invalid(
            "key",
            format!("1 to {MAX_KEY} characters"),
        ));
    }
    let mut tx = app.pool.begin().await?;
    let row = lock(&mut tx, id).await?;
    holds(&row, &step.worker)?;
    if let Some(stored) = runs::step_by_key(&mut tx, id, &step.key).await? {
        return Ok(Json(Recorded {
            step: stored,
            created: false,
            cancel: row.cancel_requested,
        }));
    }
    let mut usage = step.usage;
    // A model or tool call is a step of the budget even when the worker left the count out.
    if matches!(step.kind, StepKind::Llm | StepKind::Tool) && usage.steps == 0 {
        usage.steps = 1;
    }
    let stored = runs::insert_step(
        &mut tx,
        id,
        NewStep {
            key: &step.key,
            kind: step.kind,
            task: step.task.as_deref(),
            agent: step.agent.as_deref(),
            tool: step.tool.as_deref(),
            model: step.model.as_deref(),
            input: &step.input,
            output: &step.output,
            error: step.error.as_deref(),
            usage,
            duration_ms: step.duration_ms,
        },
    )
    .await?;
    let mut total = row.usage.0;
    runs::add_usage(&mut total, &usage);
    let done = i32::from(step.kind == StepKind::TaskOutput && step.progress.is_some());
    let row: RunRow = sqlx::query_as(
        "UPDATE crew_runs SET usage = $2, tasks_done = tasks_done + $3 WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(Jsonb(total))
    .bind(done)
    .fetch_one(&mut *tx)
    .await?;
    if let (StepKind::TaskOutput, Some(line)) = (step.kind, step.progress) {
        crate::outbox::record(&mut tx, row.trace_id.as_deref(), row.progress(line, None)).await?;
    }
    tx.commit().await?;
    app.hub.step(&stored);
    Ok(Json(Recorded {
        step: stored,
        created: true,
        cancel: row.cancel_requested,
    }))
}

#[utoipa::path(
    post, path = "/v1/worker/runs/{id}/heartbeat", tag = "worker", params(("id" = Uuid, Path)),
    request_body(content = Object, description = "Heartbeat: worker, lease_secs"),
    responses((status = 200, description = "the lease renewed, and whether to cancel"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "not a service credential"),
              (status = 404, description = "no such run"),
              (status = 409, description = "lease_lost or run_final"),
              (status = 422, description = "bad request")),
    security(("bearer" = []))
)]
pub async fn heartbeat(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    bytes: Bytes,
) -> Result<Json<HeartbeatAnswer>, CrewsError> {
    auth::caller(&app, &headers).await?.service_write()?;
    let beat: Heartbeat = body(&bytes)?;
    worker_name(&beat.worker)?;
    lease_secs(beat.lease_secs)?;
    let mut tx = app.pool.begin().await?;
    let row = lock(&mut tx, id).await?;
    holds(&row, &beat.worker)?;
    let (cancel, until): (bool, OffsetDateTime) = sqlx::query_as(
        "UPDATE crew_runs SET lease_until = clock_timestamp() + make_interval(secs => $2) \
         WHERE id = $1 RETURNING cancel_requested, lease_until",
    )
    .bind(id)
    .bind(f64::from(beat.lease_secs))
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(HeartbeatAnswer {
        cancel,
        lease_until: until,
    }))
}

#[utoipa::path(
    post, path = "/v1/worker/runs/{id}/finish", tag = "worker", params(("id" = Uuid, Path)),
    request_body(content = Object, description = "Finish: worker and outcome (completed, failed with its stop, waiting_input with the question)"),
    responses((status = 200, description = "the run as it ended (or paused); its event is in the outbox"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "not a service credential"),
              (status = 404, description = "no such run"),
              (status = 409, description = "lease_lost or run_final"),
              (status = 422, description = "bad outcome")),
    security(("bearer" = []))
)]
pub async fn finish(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    bytes: Bytes,
) -> Result<Json<Run>, CrewsError> {
    auth::caller(&app, &headers).await?.service_write()?;
    let finish: Finish = body(&bytes)?;
    worker_name(&finish.worker)?;
    let mut tx = app.pool.begin().await?;
    let row = lock(&mut tx, id).await?;
    holds(&row, &finish.worker)?;
    let (state, result, stop, question) = match finish.outcome {
        Outcome::Completed { result } => (RunState::Completed, Some(result), None, None),
        Outcome::Failed { stop } => {
            let state = if stop.code == StopCode::Cancelled {
                RunState::Cancelled
            } else {
                RunState::Failed
            };
            (state, None, Some(stop), None)
        }
        Outcome::WaitingInput { question } => (RunState::WaitingInput, None, None, Some(question)),
    };
    for (field, text) in [("result", &result), ("question", &question)] {
        if text.as_deref().is_some_and(|t| t.contains('\0')) {
            return Err(CrewsError::invalid(field, "contains a NUL character"));
        }
    }
    let code = stop.as_ref().map(|s| s.code);
    let row: RunRow = sqlx::query_as(
        "UPDATE crew_runs SET state = $2, result = $3, stop = $4, question = $5, \
             lease_holder = NULL, lease_until = NULL, paused_at = clock_timestamp(), \
             finished_at = CASE WHEN $6 THEN clock_timestamp() END \
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(state.as_str())
    .bind(result)
    .bind(stop.map(Jsonb))
    .bind(question)
    .bind(state.is_final())
    .fetch_one(&mut *tx)
    .await?;
    row.announce(&mut tx).await?;
    tx.commit().await?;
    if let Some(code) = code {
        metrics::stopped(code);
    }
    app.hub.state(&row);
    Ok(Json(row.run(vec![])))
}

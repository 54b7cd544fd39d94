//! Crew definitions: list, read, save (a new version), delete, versions, diff, rollback and
//! the CrewAI import. Changes need `crews:write`, reads `read`; every change is audited.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use daarion_crews_client::{
    CrewSpec, CrewSummary, CrewVersion, ImportReport, ImportRequest, RollbackRequest, VersionDiff,
};
use serde::Deserialize;

use super::body;
use crate::store::defs;
use crate::{App, CrewsError, auth, import, validate};

#[utoipa::path(
    get, path = "/v1/crews", tag = "crews",
    responses((status = 200, description = "every crew (not deleted) with its active version"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "lacks `read`")),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<Vec<CrewSummary>>, CrewsError> {
    auth::caller(&app, &headers).await?.read()?;
    Ok(Json(defs::list(&app.pool).await?))
}

#[utoipa::path(
    get, path = "/v1/crews/{id}", tag = "crews", params(("id" = String, Path)),
    responses((status = 200, description = "the crew's active version"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "lacks `read`"),
              (status = 404, description = "no such crew")),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<CrewVersion>, CrewsError> {
    auth::caller(&app, &headers).await?.read()?;
    Ok(Json(defs::active_or_404(&app.pool, &id).await?))
}

#[utoipa::path(
    put, path = "/v1/crews/{id}", tag = "crews", params(("id" = String, Path)),
    request_body(content = Object, description = "the crew (CrewSpec); its id is the path's"),
    responses((status = 200, description = "the saved version (the active one when nothing changed)"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "lacks `crews:write`"),
              (status = 422, description = "invalid crew, naming the field")),
    security(("bearer" = []))
)]
pub async fn put(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<CrewVersion>, CrewsError> {
    let caller = auth::caller(&app, &headers).await?;
    caller.write()?;
    let spec: CrewSpec = body(&bytes)?;
    if spec.id != id {
        return Err(CrewsError::invalid(
            "id",
            format!("the body's id `{}` is not the path's `{id}`", spec.id),
        ));
    }
    validate::spec(&spec)?;
    Ok(Json(
        defs::save(&app.pool, &spec, caller.name(), "", "crew.save").await?,
    ))
}

#[utoipa::path(
    delete, path = "/v1/crews/{id}", tag = "crews", params(("id" = String, Path)),
    responses((status = 204, description = "deleted: no new runs; its versions stay for the runs that use them"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "lacks `crews:write`"),
              (status = 404, description = "no such crew")),
    security(("bearer" = []))
)]
pub async fn delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, CrewsError> {
    let caller = auth::caller(&app, &headers).await?;
    caller.write()?;
    defs::delete(&app.pool, &id, caller.name()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/v1/crews/{id}/versions", tag = "crews", params(("id" = String, Path)),
    responses((status = 200, description = "every version, newest first"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "lacks `read`"),
              (status = 404, description = "no such crew")),
    security(("bearer" = []))
)]
pub async fn versions(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Vec<CrewVersion>>, CrewsError> {
    auth::caller(&app, &headers).await?.read()?;
    Ok(Json(defs::versions(&app.pool, &id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DiffQuery {
    pub from: u32,
    pub to: u32,
}

#[utoipa::path(
    get, path = "/v1/crews/{id}/diff", tag = "crews", params(("id" = String, Path), DiffQuery),
    responses((status = 200, description = "a unified diff of the two versions' pretty JSON"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "lacks `read`"),
              (status = 404, description = "no such crew or version")),
    security(("bearer" = []))
)]
pub async fn diff(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Result<Json<VersionDiff>, CrewsError> {
    auth::caller(&app, &headers).await?.read()?;
    defs::active_or_404(&app.pool, &id).await?;
    let pretty = |v: u32| {
        let pool = app.pool.clone();
        let id = id.clone();
        async move {
            let version = defs::version(&pool, &id, v)
                .await?
                .ok_or_else(|| CrewsError::NotFound(format!("version {v} of crew `{id}`")))?;
            Ok::<_, CrewsError>(
                serde_json::to_string_pretty(&version.spec).unwrap_or_default() + "\n",
            )
        }
    };
    let (old, new) = (pretty(query.from).await?, pretty(query.to).await?);
    let diff = similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("v{}", query.from), &format!("v{}", query.to))
        .to_string();
    Ok(Json(VersionDiff {
        from: query.from,
        to: query.to,
        diff,
    }))
}

#[utoipa::path(
    post, path = "/v1/crews/{id}/rollback", tag = "crews", params(("id" = String, Path)),
    request_body(content = Object, description = "{\"version\": n}"),
    responses((status = 200, description = "a copy of that version, now the newest and active"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "lacks `crews:write`"),
              (status = 404, description = "no such crew or version"),
              (status = 422, description = "bad body")),
    security(("bearer" = []))
)]
pub async fn rollback(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<CrewVersion>, CrewsError> {
    let caller = auth::caller(&app, &headers).await?;
    caller.write()?;
    let request: RollbackRequest = body(&bytes)?;
    defs::active_or_404(&app.pool, &id).await?;
    let old = defs::version(&app.pool, &id, request.version)
        .await?
        .ok_or_else(|| {
            CrewsError::NotFound(format!("version {} of crew `{id}`", request.version))
        })?;
    let note = format!("rollback to version {}", request.version);
    Ok(Json(
        defs::save(&app.pool, &old.spec, caller.name(), &note, "crew.rollback").await?,
    ))
}

#[utoipa::path(
    post, path = "/v1/crews/import", tag = "crews",
    request_body(content = Object, description = "ImportRequest: id, agents_yaml, tasks_yaml, dry_run"),
    responses((status = 200, description = "what was made of the YAML: the spec, its version (none for a dry run), unknown keys, inputs, warnings"),
              (status = 401, description = "no or wrong credential"),
              (status = 403, description = "lacks `crews:write`"),
              (status = 422, description = "not YAML, too large, or the crew it makes is invalid")),
    security(("bearer" = []))
)]
pub async fn import(
    State(app): State<App>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<ImportReport>, CrewsError> {
    let caller = auth::caller(&app, &headers).await?;
    caller.write()?;
    let request: ImportRequest = body(&bytes)?;
    validate::crew_id(&request.id)?;
    let mut report = import::import(&request)?;
    validate::spec(&report.spec)?;
    if !request.dry_run {
        let note = if report.unknown_keys.is_empty() {
            "imported from CrewAI YAML".to_owned()
        } else {
            format!(
                "imported from CrewAI YAML; unused keys: {}",
                report.unknown_keys.join(", ")
            )
        };
        let saved =
            defs::save(&app.pool, &report.spec, caller.name(), &note, "crew.import").await?;
        report.version = Some(saved.version);
    }
    Ok(Json(report))
}

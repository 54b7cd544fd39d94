//! Crew definitions: every save is a new version; the active one is what new runs use.

use daarion_crews_client::{CrewSpec, CrewSummary, CrewVersion};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::{CrewsError, outbox};

#[derive(sqlx::FromRow)]
struct VersionRow {
    crew: String,
    version: i32,
    spec: Value,
    author: String,
    note: String,
    created_at: OffsetDateTime,
}

impl TryFrom<VersionRow> for CrewVersion {
    type Error = CrewsError;
    fn try_from(r: VersionRow) -> Result<CrewVersion, CrewsError> {
        Ok(CrewVersion {
            spec: serde_json::from_value(r.spec)
                .map_err(|e| CrewsError::Db(sqlx::Error::Decode(e.into())))?,
            crew: r.crew,
            version: r.version as u32,
            author: r.author,
            note: r.note,
            created_at: r.created_at,
        })
    }
}

const VERSION_COLUMNS: &str = "crew, version, spec, author, note, created_at";

/// The active version of a crew that is not deleted. Inside a transaction, read it through
/// that transaction: a second connection taken while one is held deadlocks the pool when as
/// many requests as it has connections do so at once.
pub async fn active(
    pool: impl sqlx::PgExecutor<'_>,
    id: &str,
) -> Result<Option<CrewVersion>, CrewsError> {
    sqlx::query_as::<_, VersionRow>(&format!(
        "SELECT v.{} FROM crews c JOIN crew_versions v ON v.crew = c.id AND v.version = c.active_version \
         WHERE c.id = $1 AND c.deleted_at IS NULL",
        VERSION_COLUMNS.replace(", ", ", v.")
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .map(CrewVersion::try_from)
    .transpose()
}

pub async fn active_or_404(pool: &PgPool, id: &str) -> Result<CrewVersion, CrewsError> {
    active(pool, id)
        .await?
        .ok_or_else(|| CrewsError::NotFound(format!("crew `{id}`")))
}

/// Any stored version, the crew deleted or not (a run keeps the version it started with).
pub async fn version(
    pool: impl sqlx::PgExecutor<'_>,
    id: &str,
    version: u32,
) -> Result<Option<CrewVersion>, CrewsError> {
    sqlx::query_as::<_, VersionRow>(&format!(
        "SELECT {VERSION_COLUMNS} FROM crew_versions WHERE crew = $1 AND version = $2"
    ))
    .bind(id)
    .bind(version as i32)
    .fetch_optional(pool)
    .await?
    .map(CrewVersion::try_from)
    .transpose()
}

/// Newest first.
pub async fn versions(pool: &PgPool, id: &str) -> Result<Vec<CrewVersion>, CrewsError> {
    active_or_404(pool, id).await?;
    sqlx::query_as::<_, VersionRow>(&format!(
        "SELECT {VERSION_COLUMNS} FROM crew_versions WHERE crew = $1 ORDER BY version DESC"
    ))
    .bind(id)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(CrewVersion::try_from)
    .collect()
}

pub async fn list(pool: &PgPool) -> Result<Vec<CrewSummary>, CrewsError> {
    let rows: Vec<(Value, i32, i64, OffsetDateTime)> = sqlx::query_as(
        "SELECT v.spec, c.active_version, \
                (SELECT count(*) FROM crew_versions a WHERE a.crew = c.id), c.updated_at \
         FROM crews c JOIN crew_versions v ON v.crew = c.id AND v.version = c.active_version \
         WHERE c.deleted_at IS NULL ORDER BY c.id",
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(spec, version, versions, updated_at)| {
            let spec: CrewSpec = serde_json::from_value(spec)
                .map_err(|e| CrewsError::Db(sqlx::Error::Decode(e.into())))?;
            Ok(CrewSummary {
                id: spec.id,
                name: spec.name,
                description: spec.description,
                process: spec.process,
                version: version as u32,
                versions: versions as u32,
                agents: spec.agents.len() as u32,
                tasks: spec.tasks.len() as u32,
                updated_at,
            })
        })
        .collect()
}

/// Saves `spec` as the crew's next version and makes it active (creating or reviving the
/// crew), audited as `action`. A spec equal to the active one is not saved again.
pub async fn save(
    pool: &PgPool,
    spec: &CrewSpec,
    author: String,
    note: &str,
    action: &str,
) -> Result<CrewVersion, CrewsError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO crews (id, active_version) VALUES ($1, 0) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&spec.id)
    .execute(&mut *tx)
    .await?;
    let (active, deleted): (i32, Option<OffsetDateTime>) =
        sqlx::query_as("SELECT active_version, deleted_at FROM crews WHERE id = $1 FOR UPDATE")
            .bind(&spec.id)
            .fetch_one(&mut *tx)
            .await?;
    let before = current(&mut tx, &spec.id, active).await?;
    if let Some(before) = &before
        && deleted.is_none()
        && &before.spec == spec
    {
        return Ok(before.clone());
    }
    let next: i32 = sqlx::query_scalar(
        "SELECT coalesce(max(version), 0) + 1 FROM crew_versions WHERE crew = $1",
    )
    .bind(&spec.id)
    .fetch_one(&mut *tx)
    .await?;
    let spec_json = serde_json::to_value(spec).map_err(|e| sqlx::Error::Encode(e.into()))?;
    let saved: VersionRow = sqlx::query_as(&format!(
        "INSERT INTO crew_versions (crew, version, spec, author, note) VALUES ($1, $2, $3, $4, $5) \
         RETURNING {VERSION_COLUMNS}"
    ))
    .bind(&spec.id)
    .bind(next)
    .bind(&spec_json)
    .bind(&author)
    .bind(note)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE crews SET active_version = $2, updated_at = now(), deleted_at = NULL WHERE id = $1",
    )
    .bind(&spec.id)
    .bind(next)
    .execute(&mut *tx)
    .await?;
    outbox::audit(
        &mut tx,
        author,
        action,
        &format!("crew:{}", spec.id),
        before
            .filter(|_| deleted.is_none())
            .map(|b| serde_json::json!({"version": b.version, "spec": b.spec})),
        Some(serde_json::json!({"version": next, "spec": spec_json})),
    )
    .await?;
    tx.commit().await?;
    saved.try_into()
}

async fn current(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    version: i32,
) -> Result<Option<CrewVersion>, CrewsError> {
    sqlx::query_as::<_, VersionRow>(&format!(
        "SELECT {VERSION_COLUMNS} FROM crew_versions WHERE crew = $1 AND version = $2"
    ))
    .bind(id)
    .bind(version)
    .fetch_optional(&mut **tx)
    .await?
    .map(CrewVersion::try_from)
    .transpose()
}

/// Marks the crew deleted: no new runs; its versions stay for the runs that use them.
pub async fn delete(pool: &PgPool, id: &str, actor: String) -> Result<(), CrewsError> {
    let mut tx = pool.begin().await?;
    let active: Option<i32> = sqlx::query_scalar(
        "UPDATE crews SET deleted_at = now(), updated_at = now() \
         WHERE id = $1 AND deleted_at IS NULL RETURNING active_version",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(active) = active else {
        return Err(CrewsError::NotFound(format!("crew `{id}`")));
    };
    outbox::audit(
        &mut tx,
        actor,
        "crew.delete",
        &format!("crew:{id}"),
        Some(serde_json::json!({"version": active})),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

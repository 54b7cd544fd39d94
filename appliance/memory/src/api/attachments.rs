//! Attachments: the record of every file a user sent, and every change of its state.
//!
//! Ingest creates the record once the bytes are in the blob store; the parser reports progress,
//! appends the text section by section to the attachment's document (not searchable until it
//! says `parsed`, so nothing partial is ever an answer) and says `parsed` or `failed`; the
//! indexer marks it `indexed` when every chunk has its vector ([`settle_indexed`]). Each change
//! and the bus event announcing it are one transaction (`crate::outbox`). The parser's calls
//! carry the attempt they work on: one of an earlier attempt (before a retry) is a 409.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use daarion_bus::events::{
    AttachmentCreated, AttachmentFailed, AttachmentIndexed, AttachmentOrigin, AttachmentParsed,
    AuditRecord,
};
use daarion_memory_client::attachments::{
    Attachment, AttachmentState, AttachmentsQuery, Created, Deleted, MAX_CHUNKS_PER_SECTION,
    MAX_NAME_CHARS, MAX_SECTIONS_PER_CALL, NewAttachment, NewSections, Origin, ParseDone,
    ParseFailed, ReportProgress, Retry,
};
use serde_json::json;
use sqlx::types::Json as Jsonb;
use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use super::users;
use crate::App;
use crate::outbox;
use crate::rows::Row;

const ATTACHMENT: &str = "SELECT a.id, a.user_id, a.name, a.format, a.mime, a.bytes, a.sha256, a.origin, a.options, \
       a.state, a.attempt, a.progress_done, a.progress_total, a.pages, a.document_id, \
       (SELECT count(*) FROM chunks c WHERE c.document_id = a.document_id) AS chunks, \
       (SELECT count(*) FROM chunks c JOIN index_state s ON s.kind = 'chunk' AND s.item_id = c.id \
         WHERE c.document_id = a.document_id AND s.state = 'indexed') AS indexed, \
       a.error, a.created_at, a.updated_at, a.parsed_at, a.indexed_at \
     FROM attachments a";

/// The longest reason for a failure kept.
const MAX_REASON_CHARS: usize = 1000;

async fn load<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<Attachment, ApiError> {
    sqlx::query_as::<_, Row<Attachment>>(&format!("{ATTACHMENT} WHERE a.id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .map(Row::into_inner)
        .ok_or_else(|| ApiError::NotFound(format!("attachment {id}")))
}

/// The attachment, locked for the rest of `tx`: every change of state goes through here, so
/// two changes (the parser's `parsed` and the indexer's last chunk) never miss each other.
async fn lock(tx: &mut Transaction<'_, Postgres>, id: Uuid) -> Result<Attachment, ApiError> {
    sqlx::query_as::<_, Row<Attachment>>(&format!("{ATTACHMENT} WHERE a.id = $1 FOR UPDATE OF a"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .map(Row::into_inner)
        .ok_or_else(|| ApiError::NotFound(format!("attachment {id}")))
}

/// `name` with at most [`MAX_NAME_CHARS`] characters, a long one cut before its extension.
pub fn cut_name(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        return name.to_owned();
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e)
        .filter(|e| (1..=16).contains(&e.chars().count()));
    match ext {
        Some(ext) => {
            let keep = MAX_NAME_CHARS - ext.chars().count() - 1;
            format!("{}.{ext}", name.chars().take(keep).collect::<String>())
        }
        None => name.chars().take(MAX_NAME_CHARS).collect(),
    }
}

/// What is stored of a new attachment once it is found sound: its name (cut) and its hash in
/// lower case.
fn validate(body: &NewAttachment) -> Result<(String, String), ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "name",
            "1 to 255 characters, no control characters",
        ));
    }
    if daarion_formats::Format::parse(&body.format).is_none() {
        return Err(ApiError::invalid(
            "format",
            format!("`{}` is not a format the parser reads", body.format),
        ));
    }
    if body.mime.is_empty() || body.mime.len() > 100 || body.mime.chars().any(char::is_control) {
        return Err(ApiError::invalid("mime", "1 to 100 characters"));
    }
    if body.bytes == 0 || body.bytes > i64::MAX as u64 {
        return Err(ApiError::invalid("bytes", "more than 0"));
    }
    let sha256 = body.sha256.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid("sha256", "64 hexadecimal digits"));
    }
    if body.options.ocr_languages.len() > 10
        || body.options.ocr_languages.iter().any(|l| {
            l.is_empty()
                || l.len() > 16
                || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
    {
        return Err(ApiError::invalid(
            "options.ocr_languages",
            "at most 10 tesseract language codes",
        ));
    }
    if let Some(origin) = &body.origin
        && (origin.channel.is_empty()
            || origin.channel.len() > 32
            || origin.bot.as_ref().is_some_and(|b| b.len() > 64))
    {
        return Err(ApiError::invalid(
            "origin",
            "channel 1 to 32 characters, bot at most 64",
        ));
    }
    Ok((cut_name(name), sha256))
}

fn origin_of(a: &Attachment) -> Option<AttachmentOrigin> {
    a.origin.as_ref().map(|o: &Origin| AttachmentOrigin {
        channel: o.channel.clone(),
        bot: o.bot.clone(),
        chat_id: o.chat_id,
        message_id: o.message_id,
    })
}

fn attempt_of(a: &Attachment) -> u32 {
    a.attempt.max(1) as u32
}

/// `attachment.created.<format>` for the attachment's current attempt, inside `tx`.
async fn announce_created(
    tx: &mut Transaction<'_, Postgres>,
    a: &Attachment,
) -> Result<(), sqlx::Error> {
    let event = AttachmentCreated {
        attachment_id: a.id,
        user_id: a.user_id,
        name: a.name.clone(),
        mime: a.mime.clone(),
        bytes: a.bytes.max(0) as u64,
        sha256: a.sha256.clone(),
        format: a.format.clone(),
        attempt: attempt_of(a),
        origin: origin_of(a),
    };
    let id = outbox::event_id(&format!("attachment.created:{}:{}", a.id, a.attempt));
    outbox::record(tx, id, Some(&a.format), event).await
}

/// `POST /v1/attachments`: the record of a file already in the blob store, announced to the
/// parser; or the one this user already has for the same content.
#[utoipa::path(post, path = "/v1/attachments", tag = "attachments", request_body = NewAttachment, responses((status = 201, description = "recorded and announced", body = Created), (status = 200, description = "this user already had it", body = Created), (status = 404, description = "no such user", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn create(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Json(body): Json<NewAttachment>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    caller.write(body.user_id)?;
    let (name, sha256) = validate(&body)?;
    users::load(&app.pool, body.user_id).await?;
    let mut tx = app.pool.begin().await?;
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO attachments (id, user_id, name, format, mime, bytes, sha256, origin, options) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (user_id, sha256) DO NOTHING RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(body.user_id)
    .bind(&name)
    .bind(&body.format)
    .bind(&body.mime)
    .bind(body.bytes as i64)
    .bind(&sha256)
    .bind(body.origin.as_ref().map(Jsonb))
    .bind(Jsonb(&body.options))
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = inserted {
        let attachment = load(&mut *tx, id).await?;
        announce_created(&mut tx, &attachment).await?;
        tx.commit().await?;
        return Ok((
            StatusCode::CREATED,
            Json(Created {
                created: true,
                attachment,
            }),
        ));
    }
    tx.rollback().await?;
    let existing: Uuid =
        sqlx::query_scalar("SELECT id FROM attachments WHERE user_id = $1 AND sha256 = $2")
            .bind(body.user_id)
            .bind(&sha256)
            .fetch_one(&app.pool)
            .await?;
    Ok((
        StatusCode::OK,
        Json(Created {
            created: false,
            attachment: load(&app.pool, existing).await?,
        }),
    ))
}

/// `GET /v1/attachments`: newest first; one user's (a confined caller: its own), or everyone's
/// for a reader of all users.
#[utoipa::path(get, path = "/v1/attachments", tag = "attachments", params(AttachmentsQuery), responses((status = 200, body = [Attachment]), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn list(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(query): Query<AttachmentsQuery>,
) -> Result<Json<Vec<Attachment>>, ApiError> {
    let user = query.user_id.or(caller.acting_for);
    match user {
        Some(user) => caller.read(user)?,
        None => caller.read_all()?,
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "1 to 500"));
    }
    Ok(Json(Row::all(
        sqlx::query_as::<_, Row<Attachment>>(&format!(
            "{ATTACHMENT} WHERE ($1::uuid IS NULL OR a.user_id = $1) AND ($2::text IS NULL OR a.state = $2) \
             ORDER BY a.created_at DESC, a.id DESC LIMIT $3"
        ))
        .bind(user)
        .bind(query.state.map(AttachmentState::as_str))
        .bind(limit)
        .fetch_all(&app.pool)
        .await?,
    )))
}

/// `GET /v1/attachments/{id}`.
#[utoipa::path(get, path = "/v1/attachments/{id}", tag = "attachments", params(("id" = Uuid, Path)), responses((status = 200, body = Attachment), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn get(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<Json<Attachment>, ApiError> {
    let attachment = load(&app.pool, id).await?;
    caller.read(attachment.user_id)?;
    Ok(Json(attachment))
}

/// Drops the attachment's document: its chunks, their index rows and (after the commit, by the
/// caller) their vectors. Returns the chunk ids whose vectors are to go.
async fn drop_text(
    tx: &mut Transaction<'_, Postgres>,
    a: &Attachment,
) -> Result<Vec<Uuid>, ApiError> {
    let Some(document) = a.document_id else {
        return Ok(Vec::new());
    };
    let chunks: Vec<Uuid> =
        sqlx::query_scalar("DELETE FROM chunks WHERE document_id = $1 RETURNING id")
            .bind(document)
            .fetch_all(&mut **tx)
            .await?;
    sqlx::query("DELETE FROM index_state WHERE kind = 'chunk' AND item_id = ANY($1)")
        .bind(&chunks)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE attachments SET document_id = NULL WHERE id = $1")
        .bind(a.id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM documents WHERE id = $1")
        .bind(document)
        .execute(&mut **tx)
        .await?;
    Ok(chunks)
}

/// The vectors of dropped chunks. After the commit: were this to fail, the rows are gone
/// already and search never returns a vector without its row (`search.rs` hydrates from rows).
async fn drop_vectors(app: &App, chunks: Vec<Uuid>) {
    if chunks.is_empty() {
        return;
    }
    if let Err(e) = app
        .vectors
        .delete(daarion_vectors::Collection::Chunks, chunks)
        .await
    {
        tracing::warn!(error = %e, "attachment: vectors of dropped chunks not deleted");
    }
}

/// `POST /v1/attachments/{id}/retry`: back to `received` with the next attempt (and other
/// options, if given); its earlier text is dropped and the parser is told again.
#[utoipa::path(post, path = "/v1/attachments/{id}/retry", tag = "attachments", params(("id" = Uuid, Path)), request_body = Retry, responses((status = 200, description = "queued again", body = Attachment), (status = 404, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn retry(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
    Json(body): Json<Retry>,
) -> Result<Json<Attachment>, ApiError> {
    let mut tx = app.pool.begin().await?;
    let before = lock(&mut tx, id).await?;
    caller.write(before.user_id)?;
    let chunks = drop_text(&mut tx, &before).await?;
    sqlx::query(
        "UPDATE attachments SET state = 'received', attempt = attempt + 1, options = coalesce($2, options), \
                progress_done = NULL, progress_total = NULL, pages = NULL, error = NULL, \
                parsed_at = NULL, indexed_at = NULL, updated_at = clock_timestamp() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(body.options.as_ref().map(Jsonb))
    .execute(&mut *tx)
    .await?;
    let after = load(&mut *tx, id).await?;
    announce_created(&mut tx, &after).await?;
    tx.commit().await?;
    drop_vectors(&app, chunks).await;
    Ok(Json(after))
}

/// `DELETE /v1/attachments/{id}`: the record, its document, chunks and vectors (audited).
#[utoipa::path(delete, path = "/v1/attachments/{id}", tag = "attachments", params(("id" = Uuid, Path)), responses((status = 200, body = Deleted), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn delete(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<Json<Deleted>, ApiError> {
    let mut tx = app.pool.begin().await?;
    let before = lock(&mut tx, id).await?;
    caller.write(before.user_id)?;
    let chunks = drop_text(&mut tx, &before).await?;
    sqlx::query("DELETE FROM attachments WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let still_used: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM attachments WHERE sha256 = $1)")
            .bind(&before.sha256)
            .fetch_one(&mut *tx)
            .await?;
    let deleted = Deleted {
        id,
        sha256: before.sha256.clone(),
        blob_unreferenced: !still_used,
    };
    let audit = AuditRecord {
        actor: caller.name.clone(),
        action: "attachment.delete".into(),
        target: Some(format!("attachment:{id}")),
        outcome: "ok".into(),
        before: serde_json::to_value(&before).ok(),
        after: None,
        detail: Some(json!({
            "chunks": chunks.len(),
            "blob_unreferenced": deleted.blob_unreferenced,
        })),
    };
    outbox::record(
        &mut tx,
        outbox::event_id(&format!("attachment.delete:{id}")),
        Some("action"),
        audit,
    )
    .await?;
    tx.commit().await?;
    drop_vectors(&app, chunks).await;
    Ok(Json(deleted))
}

/// The start of every parser call: the caller a service, the attachment locked, the attempt the
/// current one.
async fn step(
    tx: &mut Transaction<'_, Postgres>,
    caller: &Caller,
    id: Uuid,
    attempt: i32,
) -> Result<Attachment, ApiError> {
    // The parser's reports: services only (`memory:write`, unconfined). A user's own token
    // writes their documents, never "this file was read, and this is its text".
    caller.service_write()?;
    let a = lock(tx, id).await?;
    if attempt != a.attempt {
        return Err(ApiError::Conflict(format!(
            "attachment {id} is on attempt {}, not {attempt}",
            a.attempt
        )));
    }
    Ok(a)
}

fn still_reading(a: &Attachment) -> Result<(), ApiError> {
    match a.state {
        AttachmentState::Received | AttachmentState::Parsing => Ok(()),
        state => Err(ApiError::Conflict(format!(
            "attachment {} is {} already",
            a.id,
            state.as_str()
        ))),
    }
}

/// `POST /v1/attachments/{id}/progress` (parser): `done` of `total`; the state becomes `parsing`.
#[utoipa::path(post, path = "/v1/attachments/{id}/progress", tag = "attachments", params(("id" = Uuid, Path)), request_body = ReportProgress, responses((status = 200, body = Attachment), (status = 404, body = ErrorEnvelope), (status = 409, description = "an earlier attempt, or no longer being read", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn progress(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
    Json(body): Json<ReportProgress>,
) -> Result<Json<Attachment>, ApiError> {
    if body.done > i32::MAX as u32 || body.total.is_some_and(|t| t > i32::MAX as u32) {
        return Err(ApiError::invalid("done", "too large"));
    }
    let mut tx = app.pool.begin().await?;
    let a = step(&mut tx, &caller, id, body.attempt).await?;
    still_reading(&a)?;
    sqlx::query(
        "UPDATE attachments SET state = 'parsing', progress_done = $2, progress_total = $3, \
                updated_at = clock_timestamp() WHERE id = $1",
    )
    .bind(id)
    .bind(body.done as i32)
    .bind(body.total.map(|t| t as i32))
    .execute(&mut *tx)
    .await?;
    let after = load(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// The attachment's document, made (not searchable) on first need.
async fn document_of(
    tx: &mut Transaction<'_, Postgres>,
    caller: &Caller,
    a: &Attachment,
) -> Result<Uuid, ApiError> {
    if let Some(id) = a.document_id {
        return Ok(id);
    }
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO documents (id, user_id, title, mime, source, bytes, created_by, attachment_id, ready) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7, false)",
    )
    .bind(id)
    .bind(a.user_id)
    .bind(&a.name)
    .bind(&a.mime)
    .bind(format!("attachment:{}", a.id))
    .bind(&caller.name)
    .bind(a.id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE attachments SET document_id = $2 WHERE id = $1")
        .bind(a.id)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

/// `POST /v1/attachments/{id}/sections` (parser): sections appended to the attachment's
/// document, each cut into chunks that keep its locator and headings. Chunk `k` of section `n`
/// is ordinal `n × 1000 + k`, so a batch delivered twice adds nothing the second time.
#[utoipa::path(post, path = "/v1/attachments/{id}/sections", tag = "attachments", params(("id" = Uuid, Path)), request_body = NewSections, responses((status = 200, body = Attachment), (status = 404, body = ErrorEnvelope), (status = 409, description = "an earlier attempt, or no longer being read", body = ErrorEnvelope), (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn sections(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
    Json(body): Json<NewSections>,
) -> Result<Json<Attachment>, ApiError> {
    if body.sections.is_empty() || body.sections.len() > MAX_SECTIONS_PER_CALL {
        return Err(ApiError::invalid("sections", "1 to 200 per call"));
    }
    let last = body.first_ordinal as u64 + body.sections.len() as u64;
    if last * MAX_CHUNKS_PER_SECTION as u64 > i32::MAX as u64 {
        return Err(ApiError::invalid("first_ordinal", "too large"));
    }
    let mut rows = Vec::new();
    for (i, section) in body.sections.iter().enumerate() {
        if section.headings.len() > 16 || section.headings.iter().any(|h| h.chars().count() > 300) {
            return Err(ApiError::invalid(
                "headings",
                "at most 16, of at most 300 characters each",
            ));
        }
        let pieces = crate::chunk::chunks(&section.text);
        if pieces.len() > MAX_CHUNKS_PER_SECTION as usize {
            return Err(ApiError::TooLarge {
                what: "the section",
                size: section.text.len(),
                limit: MAX_CHUNKS_PER_SECTION as usize * crate::chunk::MAX,
            });
        }
        let base = (body.first_ordinal as i32 + i as i32) * MAX_CHUNKS_PER_SECTION as i32;
        let locator = serde_json::to_value(&section.locator).unwrap_or_default();
        let ordinals: Vec<i32> = (0..pieces.len() as i32).map(|k| base + k).collect();
        rows.push((pieces, ordinals, locator, section.headings.clone()));
    }
    let mut tx = app.pool.begin().await?;
    let a = step(&mut tx, &caller, id, body.attempt).await?;
    still_reading(&a)?;
    let document = document_of(&mut tx, &caller, &a).await?;
    for (pieces, ordinals, locator, headings) in rows {
        if pieces.is_empty() {
            continue;
        }
        let ids: Vec<Uuid> = pieces.iter().map(|_| Uuid::now_v7()).collect();
        sqlx::query(
            "INSERT INTO chunks (id, document_id, user_id, ordinal, content, locator, headings) \
             SELECT t.id, $2, $3, t.ordinal, t.content, $6, $7 \
             FROM unnest($1::uuid[], $4::int[], $5::text[]) AS t(id, ordinal, content) \
             ON CONFLICT (document_id, ordinal) DO NOTHING",
        )
        .bind(&ids)
        .bind(document)
        .bind(a.user_id)
        .bind(&ordinals)
        .bind(&pieces)
        .bind(&locator)
        .bind((!headings.is_empty()).then_some(&headings))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE attachments SET state = 'parsing', updated_at = clock_timestamp() WHERE id = $1",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let after = load(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// `POST /v1/attachments/{id}/parsed` (parser): every section is in; the text becomes
/// searchable and `attachment.parsed` goes out. Said twice, the second changes nothing.
#[utoipa::path(post, path = "/v1/attachments/{id}/parsed", tag = "attachments", params(("id" = Uuid, Path)), request_body = ParseDone, responses((status = 200, body = Attachment), (status = 404, body = ErrorEnvelope), (status = 409, description = "an earlier attempt, or failed", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn parsed(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
    Json(body): Json<ParseDone>,
) -> Result<Json<Attachment>, ApiError> {
    if body.pages > i32::MAX as u32 {
        return Err(ApiError::invalid("pages", "too large"));
    }
    let mut tx = app.pool.begin().await?;
    let a = step(&mut tx, &caller, id, body.attempt).await?;
    if matches!(a.state, AttachmentState::Parsed | AttachmentState::Indexed) {
        return Ok(Json(a));
    }
    still_reading(&a)?;
    let document = document_of(&mut tx, &caller, &a).await?;
    sqlx::query(
        "UPDATE documents SET ready = true, \
                bytes = (SELECT coalesce(sum(octet_length(content)), 0) FROM chunks WHERE document_id = $1) \
         WHERE id = $1",
    )
    .bind(document)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE attachments SET state = 'parsed', pages = $2, parsed_at = clock_timestamp(), \
                updated_at = clock_timestamp() WHERE id = $1",
    )
    .bind(id)
    .bind(body.pages as i32)
    .execute(&mut *tx)
    .await?;
    let event = AttachmentParsed {
        attachment_id: id,
        user_id: a.user_id,
        document_id: document,
        pages: body.pages,
        name: a.name.clone(),
        format: a.format.clone(),
        attempt: attempt_of(&a),
        origin: origin_of(&a),
    };
    let event_id = outbox::event_id(&format!("attachment.parsed:{id}:{}", a.attempt));
    outbox::record(&mut tx, event_id, None, event).await?;
    // The indexer may have embedded every chunk while the parser was still reading.
    settle_indexed(&mut tx, id).await?;
    let after = load(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// `POST /v1/attachments/{id}/failed` (parser): its text is dropped (nothing partial stays)
/// and `attachment.failed` goes out with the reason.
#[utoipa::path(post, path = "/v1/attachments/{id}/failed", tag = "attachments", params(("id" = Uuid, Path)), request_body = ParseFailed, responses((status = 200, body = Attachment), (status = 404, body = ErrorEnvelope), (status = 409, description = "an earlier attempt, or parsed already", body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn failed(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
    Json(body): Json<ParseFailed>,
) -> Result<Json<Attachment>, ApiError> {
    let reason = body.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::invalid("reason", "say why, for a person"));
    }
    let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
    let mut tx = app.pool.begin().await?;
    let a = step(&mut tx, &caller, id, body.attempt).await?;
    if a.state == AttachmentState::Failed {
        return Ok(Json(a));
    }
    still_reading(&a)?;
    let chunks = drop_text(&mut tx, &a).await?;
    sqlx::query(
        "UPDATE attachments SET state = 'failed', error = $2, updated_at = clock_timestamp() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(&reason)
    .execute(&mut *tx)
    .await?;
    let event = AttachmentFailed {
        attachment_id: id,
        user_id: a.user_id,
        name: a.name.clone(),
        format: a.format.clone(),
        attempt: attempt_of(&a),
        reason,
        permanent: body.permanent,
        origin: origin_of(&a),
    };
    let event_id = outbox::event_id(&format!("attachment.failed:{id}:{}", a.attempt));
    outbox::record(&mut tx, event_id, None, event).await?;
    let after = load(&mut *tx, id).await?;
    tx.commit().await?;
    drop_vectors(&app, chunks).await;
    Ok(Json(after))
}

/// A parsed attachment whose every chunk is indexed becomes `indexed`, and
/// `attachment.indexed` goes out, inside `tx` (the indexer's, as it marks a chunk, or the
/// parser's `parsed`). Both lock the attachment first, so the last of the two sees the other.
pub(crate) async fn settle_indexed(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let a = match lock(tx, id).await {
        Ok(a) => a,
        Err(ApiError::Database(e)) => return Err(e),
        Err(_) => return Ok(false),
    };
    let (Some(document), AttachmentState::Parsed) = (a.document_id, a.state) else {
        return Ok(false);
    };
    if a.indexed < a.chunks {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE attachments SET state = 'indexed', indexed_at = clock_timestamp(), \
                updated_at = clock_timestamp() WHERE id = $1",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let event = AttachmentIndexed {
        attachment_id: id,
        user_id: a.user_id,
        document_id: document,
        chunks: a.chunks.max(0) as u32,
        name: a.name.clone(),
        format: a.format.clone(),
        attempt: attempt_of(&a),
        origin: origin_of(&a),
    };
    let event_id = outbox::event_id(&format!("attachment.indexed:{id}:{}", a.attempt));
    outbox::record(tx, event_id, None, event).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_keeping_the_extension() {
        assert_eq!(cut_name("report.pdf"), "report.pdf");
        let long = format!("{}.pdf", "я".repeat(300));
        let cut = cut_name(&long);
        assert_eq!(cut.chars().count(), MAX_NAME_CHARS);
        assert!(cut.ends_with("яя.pdf"));
        let no_ext = "x".repeat(400);
        assert_eq!(cut_name(&no_ext).chars().count(), MAX_NAME_CHARS);
    }
}

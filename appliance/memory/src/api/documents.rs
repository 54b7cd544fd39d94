//! Documents and their chunks: stored as given, cut for search (`crate::chunk`), each chunk
//! full-text searchable at once and indexed as a vector through the index outbox.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use daarion_memory_client::documents::{
    Chunk, Document, DocumentWithChunks, MAX_DOCUMENT_BYTES, NewDocument,
};
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
#[allow(unused_imports)]
use super::openapi::ErrorEnvelope;
use super::users;
use crate::App;
use crate::rows::Row;

const DOCUMENT: &str = "SELECT d.id, d.user_id, d.agent_id, d.title, d.mime, d.source, d.bytes, d.created_by, d.created_at, \
       count(c.id) AS chunks, \
       count(c.id) FILTER (WHERE s.state = 'indexed') AS indexed, \
       count(c.id) FILTER (WHERE s.state = 'pending') AS pending, \
       count(c.id) FILTER (WHERE s.state = 'failed') AS failed \
     FROM documents d LEFT JOIN chunks c ON c.document_id = d.id \
     LEFT JOIN index_state s ON s.kind = 'chunk' AND s.item_id = c.id";

/// `POST /v1/users/{id}/documents`: the document and its chunks, in one transaction.
#[utoipa::path(post, path = "/v1/users/{id}/documents", tag = "documents", params(("id" = Uuid, Path)), request_body = NewDocument, responses((status = 201, body = Document), (status = 404, body = ErrorEnvelope), (status = 413, body = ErrorEnvelope), (status = 422, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn add(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(user_id): Path<Uuid>,
    Json(body): Json<NewDocument>,
) -> Result<(StatusCode, Json<Document>), ApiError> {
    caller.write(user_id)?;
    let title = body.title.trim();
    if title.is_empty() || title.chars().count() > 300 {
        return Err(ApiError::invalid("title", "1 to 300 characters"));
    }
    if body.content.len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::TooLarge {
            what: "the document",
            size: body.content.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let pieces = crate::chunk::chunks(&body.content);
    if pieces.is_empty() {
        return Err(ApiError::invalid("content", "the document has no text"));
    }
    if body.mime.len() > 100 || body.source.len() > 500 {
        return Err(ApiError::invalid(
            "mime",
            "mime ≤ 100 and source ≤ 500 characters",
        ));
    }
    users::load(&app.pool, user_id).await?;
    let id = Uuid::now_v7();
    let mut tx = app.pool.begin().await?;
    sqlx::query(
        "INSERT INTO documents (id, user_id, agent_id, title, mime, source, bytes, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(id)
    .bind(user_id)
    .bind(&body.agent_id)
    .bind(title)
    .bind(&body.mime)
    .bind(&body.source)
    .bind(body.content.len() as i32)
    .bind(&caller.name)
    .execute(&mut *tx)
    .await?;
    let ids: Vec<Uuid> = pieces.iter().map(|_| Uuid::now_v7()).collect();
    let ordinals: Vec<i32> = (0..pieces.len() as i32).collect();
    sqlx::query(
        "INSERT INTO chunks (id, document_id, user_id, ordinal, content) \
         SELECT t.id, $2, $3, t.ordinal, t.content FROM unnest($1::uuid[], $4::int[], $5::text[]) AS t(id, ordinal, content)",
    )
    .bind(&ids)
    .bind(id)
    .bind(user_id)
    .bind(&ordinals)
    .bind(&pieces)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(load(&app, id).await?)))
}

async fn load(app: &App, id: Uuid) -> Result<Document, ApiError> {
    sqlx::query_as::<_, Row<Document>>(&format!("{DOCUMENT} WHERE d.id = $1 GROUP BY d.id"))
        .bind(id)
        .fetch_optional(&app.pool)
        .await?
        .map(Row::into_inner)
        .ok_or_else(|| ApiError::NotFound(format!("document {id}")))
}

/// `GET /v1/users/{id}/documents`: a user's documents with their index state, newest first.
#[utoipa::path(get, path = "/v1/users/{id}/documents", tag = "documents", params(("id" = Uuid, Path)), responses((status = 200, body = [Document]), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn list(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(user_id): Path<Uuid>,
) -> Result<Json<Vec<Document>>, ApiError> {
    caller.read(user_id)?;
    Ok(Json(Row::all(
        sqlx::query_as::<_, Row<Document>>(&format!(
            "{DOCUMENT} WHERE d.user_id = $1 GROUP BY d.id ORDER BY d.created_at DESC LIMIT 200"
        ))
        .bind(user_id)
        .fetch_all(&app.pool)
        .await?,
    )))
}

/// `GET /v1/documents/{id}`: the document and its chunks, each with its index state.
#[utoipa::path(get, path = "/v1/documents/{id}", tag = "documents", params(("id" = Uuid, Path)), responses((status = 200, description = "the document and its chunks", body = DocumentWithChunks), (status = 404, body = ErrorEnvelope), (status = 401, description = "no or wrong credential", body = ErrorEnvelope), (status = 403, description = "missing scope or another user", body = ErrorEnvelope)))]
pub async fn get(
    State(app): State<App>,
    axum::Extension(caller): axum::Extension<Caller>,
    Path(id): Path<Uuid>,
) -> Result<Json<DocumentWithChunks>, ApiError> {
    let document = load(&app, id).await?;
    caller.read(document.user_id)?;
    let chunks = sqlx::query_as::<_, Row<Chunk>>(
        "SELECT c.id, c.ordinal, c.content, coalesce(s.state, 'pending') AS state, s.error, \
                c.locator, c.headings \
         FROM chunks c LEFT JOIN index_state s ON s.kind = 'chunk' AND s.item_id = c.id \
         WHERE c.document_id = $1 ORDER BY c.ordinal",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await?;
    Ok(Json(DocumentWithChunks {
        document,
        chunks: Row::all(chunks),
    }))
}

//! Reading, retrying and deleting attachments, all as the caller on the memory API; and the
//! stored bytes of one the caller may read.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use daarion_blobs::Sha256Hex;
use daarion_memory_client::{Attachment, AttachmentsQuery, Deleted, Retry};
use uuid::Uuid;

use crate::{App, IngestError, auth};

#[utoipa::path(
    get, path = "/v1/attachments", tag = "attachments", params(AttachmentsQuery),
    responses((status = 200, description = "newest first", body = [Attachment])),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<AttachmentsQuery>,
) -> Result<Json<Vec<Attachment>>, IngestError> {
    let caller = auth::caller(&app, &headers).await?;
    Ok(Json(caller.memory.attachments(&query).await?))
}

#[utoipa::path(
    get, path = "/v1/attachments/{id}", tag = "attachments",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "the attachment", body = Attachment)),
    security(("bearer" = []))
)]
pub async fn get(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Json<Attachment>, IngestError> {
    let caller = auth::caller(&app, &headers).await?;
    Ok(Json(caller.memory.attachment(id).await?))
}

#[utoipa::path(
    post, path = "/v1/attachments/{id}/retry", tag = "attachments",
    params(("id" = Uuid, Path)), request_body(content = Option<Retry>),
    responses((status = 200, description = "back to received", body = Attachment)),
    security(("bearer" = []))
)]
pub async fn retry(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Result<Json<Attachment>, IngestError> {
    let caller = auth::caller(&app, &headers).await?;
    // An empty body is a plain retry with the same options.
    let retry: Retry = if body.iter().all(u8::is_ascii_whitespace) {
        Retry::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| IngestError::invalid("body", e.to_string()))?
    };
    Ok(Json(caller.memory.retry_attachment(id, &retry).await?))
}

#[utoipa::path(
    delete, path = "/v1/attachments/{id}", tag = "attachments",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "deleted; the blob too when nothing refers to it", body = Deleted)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Json<Deleted>, IngestError> {
    let caller = auth::caller(&app, &headers).await?;
    let deleted = caller.memory.delete_attachment(id).await?;
    if deleted.blob_unreferenced {
        // The record is gone either way; a blob left behind only costs disk, so log it.
        match Sha256Hex::parse(&deleted.sha256) {
            Ok(sha) => {
                if let Err(e) = app.blobs.delete(&sha).await {
                    tracing::warn!(error = %e, sha256 = %sha, "cannot remove an unreferenced blob");
                }
            }
            Err(e) => tracing::warn!(error = %e, "memory named a blob by no SHA-256"),
        }
    }
    Ok(Json(deleted))
}

#[utoipa::path(
    get, path = "/v1/attachments/{id}/content", tag = "attachments",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "the file's bytes as sent", content_type = "application/octet-stream")),
    security(("bearer" = []))
)]
pub async fn content(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Result<Response, IngestError> {
    let caller = auth::caller(&app, &headers).await?;
    // Reading the record is the authorisation: memory answers only to who may read it.
    let attachment = caller.memory.attachment(id).await?;
    let sha = Sha256Hex::parse(&attachment.sha256)?;
    let stream = app.blobs.open(&sha).await?;
    let mut response = Body::from_stream(stream).into_response();
    let h = response.headers_mut();
    if let Ok(mime) = HeaderValue::from_str(&attachment.mime) {
        h.insert(header::CONTENT_TYPE, mime);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(attachment.bytes));
    let disposition = format!(
        "attachment; filename*=UTF-8''{}",
        daarion_client::segment(&attachment.name)
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    // The bytes are the sender's: never let a browser run them as a page of this origin.
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

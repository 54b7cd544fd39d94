//! `POST /v1/attachments`: a multipart form (`file` with its filename, `user_id`, optional
//! `origin` and `options` as JSON) or a raw body (`X-Daarion-File-Name`, percent-encoded, and
//! `?user_id=`). Bytes go to the blob store first, then the type is read from them, then the
//! record is made on the memory API as the caller.

use axum::Json;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use daarion_blobs::Stored;
use daarion_memory_client::{NewAttachment, Origin, ParseOptions};
use futures::TryStreamExt;
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{self, Caller};
use crate::{App, IngestError, metrics};

pub const FILE_NAME_HEADER: &str = "x-daarion-file-name";
pub const ORIGIN_HEADER: &str = "x-daarion-origin";

#[derive(Debug, Default, Deserialize)]
pub struct UploadQuery {
    pub user_id: Option<Uuid>,
}

/// What the request says besides the bytes.
#[derive(Default)]
struct Form {
    user_id: Option<Uuid>,
    name: Option<String>,
    origin: Option<Origin>,
    options: ParseOptions,
}

#[utoipa::path(
    post, path = "/v1/attachments", tag = "attachments",
    params(("user_id" = Option<Uuid>, Query, description = "the user (raw body; multipart carries a user_id field)")),
    request_body(content_type = "multipart/form-data", description = "the file as a `file` part, or the raw bytes (application/octet-stream) with X-Daarion-File-Name"),
    responses(
        (status = 201, description = "a new attachment", body = daarion_memory_client::Attachment),
        (status = 200, description = "the user already had this content", body = daarion_memory_client::Attachment),
        (status = 413, description = "larger than ingest.max_bytes"),
        (status = 415, description = "a type no parser reads, or mislabelled"),
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(app): State<App>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Result<Response, IngestError> {
    let result = accept(&app, query, request).await;
    metrics::UPLOADS
        .with_label_values(&[metrics::outcome(result.as_ref().map(|(c, _)| *c))])
        .inc();
    let (created, attachment) = result?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(attachment)).into_response())
}

async fn accept(
    app: &App,
    query: UploadQuery,
    request: Request,
) -> Result<(bool, daarion_memory_client::Attachment), IngestError> {
    let caller = auth::caller(app, request.headers()).await?;
    if let Some(user) = query.user_id {
        caller.may_act_for(user)?;
    }
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (form, stored) = if multipart {
        from_multipart(app, &caller, query, request).await?
    } else {
        from_raw(app, query, request).await?
    };
    let result = record(&caller, form, &stored).await;
    if result.is_err() && stored.created {
        // This upload brought the content: nothing refers to it now that it was refused.
        if let Err(e) = app.blobs.delete(&stored.sha256).await {
            tracing::warn!(error = %e, sha256 = %stored.sha256, "cannot remove a refused blob");
        }
    }
    if result.is_ok() {
        metrics::BYTES.inc_by(stored.bytes);
    }
    result
}

/// Types the stored bytes and makes the record.
async fn record(
    caller: &Caller,
    form: Form,
    stored: &Stored,
) -> Result<(bool, daarion_memory_client::Attachment), IngestError> {
    let user_id = form
        .user_id
        .ok_or_else(|| IngestError::invalid("user_id", "required: the user the file is for"))?;
    caller.may_act_for(user_id)?;
    let name = form
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| IngestError::invalid("name", "the file needs a name"))?;
    let path = stored.path().to_owned();
    let claimed = name.clone();
    let format =
        tokio::task::spawn_blocking(move || daarion_formats::detect_file(&path, Some(&claimed)))
            .await
            .map_err(|e| IngestError::Blobs(e.to_string()))??;
    let new = NewAttachment {
        user_id,
        name,
        format: format.as_str().to_owned(),
        mime: format.mime().to_owned(),
        bytes: stored.bytes,
        sha256: stored.sha256.to_string(),
        origin: form.origin,
        options: form.options,
    };
    let created = caller.memory.create_attachment(&new).await?;
    Ok((created.created, created.attachment))
}

async fn from_raw(
    app: &App,
    query: UploadQuery,
    request: Request,
) -> Result<(Form, Stored), IngestError> {
    let headers = request.headers().clone();
    let form = Form {
        user_id: query.user_id,
        name: Some(decoded(&headers, FILE_NAME_HEADER)?.ok_or_else(|| {
            IngestError::invalid(
                FILE_NAME_HEADER,
                "required: the file's name, percent-encoded",
            )
        })?),
        origin: decoded(&headers, ORIGIN_HEADER)?
            .map(|json| parse_json(ORIGIN_HEADER, &json))
            .transpose()?,
        options: ParseOptions::default(),
    };
    let body = request.into_body().into_data_stream();
    let stored = app.blobs.put_stream(body, app.max_bytes).await?;
    Ok((form, stored))
}

async fn from_multipart(
    app: &App,
    caller: &Caller,
    query: UploadQuery,
    request: Request,
) -> Result<(Form, Stored), IngestError> {
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| IngestError::invalid("body", e.body_text()))?;
    let mut form = Form {
        user_id: query.user_id,
        ..Form::default()
    };
    let mut stored: Option<Stored> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e, app.max_bytes)),
        };
        match field.name().unwrap_or("") {
            "file" => {
                if stored.is_some() {
                    return Err(IngestError::invalid("file", "one file per upload"));
                }
                form.name = field.file_name().map(str::to_owned);
                let body = field.map_err(|e| e.body_text());
                stored = Some(match app.blobs.put_stream(body, app.max_bytes).await {
                    Ok(stored) => stored,
                    // The service's body limit cut the stream: the same refusal as ours.
                    Err(daarion_blobs::BlobError::Body(text)) if too_large(&text) => {
                        return Err(IngestError::TooLarge {
                            limit: app.max_bytes,
                        });
                    }
                    Err(e) => return Err(e.into()),
                });
            }
            "user_id" => {
                let text = field_text(field, app.max_bytes).await?;
                let user = text
                    .trim()
                    .parse::<Uuid>()
                    .map_err(|_| IngestError::invalid("user_id", "must be a user id (UUID)"))?;
                caller.may_act_for(user)?;
                form.user_id = Some(user);
            }
            "origin" => {
                form.origin = Some(parse_json(
                    "origin",
                    &field_text(field, app.max_bytes).await?,
                )?)
            }
            "options" => {
                form.options = parse_json("options", &field_text(field, app.max_bytes).await?)?
            }
            other => {
                return Err(IngestError::invalid(
                    "body",
                    format!("unknown form field `{other}` (file, user_id, origin, options)"),
                ));
            }
        }
    }
    let stored = stored.ok_or_else(|| IngestError::invalid("file", "required: a `file` part"))?;
    Ok((form, stored))
}

async fn field_text(
    field: axum::extract::multipart::Field<'_>,
    limit: u64,
) -> Result<String, IngestError> {
    field.text().await.map_err(|e| multipart_error(e, limit))
}

fn too_large(text: &str) -> bool {
    text.contains("length limit") || text.contains("too large")
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: u64) -> IngestError {
    let text = e.body_text();
    if too_large(&text) {
        IngestError::TooLarge { limit }
    } else {
        IngestError::invalid("body", text)
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    field: &'static str,
    text: &str,
) -> Result<T, IngestError> {
    serde_json::from_str(text).map_err(|e| IngestError::invalid(field, e.to_string()))
}

/// A percent-encoded header as text.
fn decoded(headers: &HeaderMap, name: &'static str) -> Result<Option<String>, IngestError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let raw = value
        .to_str()
        .map_err(|_| IngestError::invalid(name, "must be percent-encoded ASCII"))?;
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| Some(s.into_owned()))
        .map_err(|_| IngestError::invalid(name, "must be percent-encoded UTF-8"))
}

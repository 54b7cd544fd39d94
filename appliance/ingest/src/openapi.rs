//! Ingest's OpenAPI document, generated from the annotated handlers.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DAARION ingest",
        description = "Users' files in: stored by content, typed from their bytes, recorded in memory"
    ),
    paths(
        crate::upload::upload,
        crate::api::list,
        crate::api::get,
        crate::api::retry,
        crate::api::delete,
        crate::api::content,
    ),
    components(schemas(
        daarion_memory_client::Attachment,
        daarion_memory_client::Created,
        daarion_memory_client::Deleted,
        daarion_memory_client::Retry,
    ))
)]
struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    daarion_http::openapi::add_bearer(&mut document);
    document
}

//! The crews service's OpenAPI document, generated from the annotated handlers. Bodies are the
//! `daarion-crews-client` types (named in each route's description).

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DAARION crews",
        description = "Crew definitions (versioned, CrewAI YAML importable), runs with their step journal, and the worker's lease on them"
    ),
    paths(
        crate::api::defs::list,
        crate::api::defs::get,
        crate::api::defs::put,
        crate::api::defs::delete,
        crate::api::defs::versions,
        crate::api::defs::diff,
        crate::api::defs::rollback,
        crate::api::defs::import,
        crate::api::runs::start,
        crate::api::runs::list,
        crate::api::runs::get,
        crate::api::runs::events,
        crate::api::runs::cancel,
        crate::api::runs::resume,
        crate::api::runs::rerun,
        crate::api::worker::claim,
        crate::api::worker::record,
        crate::api::worker::heartbeat,
        crate::api::worker::finish,
    )
)]
struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = ApiDoc::openapi();
    daarion_http::openapi::add_bearer(&mut document);
    document
}

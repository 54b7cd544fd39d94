//! What is being read right now (`GET /v1/jobs`): one entry per attachment in hand, with its
//! page k of n, removed when its handling ends however it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use daarion_http::ErrorResponse;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::App;

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub attachment_id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub format: String,
    pub attempt: i32,
    pub done: u32,
    pub total: Option<u32>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// The jobs in hand. Cheap to clone.
#[derive(Clone, Default)]
pub struct Jobs(Arc<Mutex<HashMap<Uuid, Job>>>);

/// Removes its job when dropped, so a handler that returns early, fails or panics leaves no
/// stale entry.
pub struct Tracked {
    jobs: Jobs,
    id: Uuid,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.jobs.lock().remove(&self.id);
        crate::metrics::IN_FLIGHT.dec();
    }
}

impl Tracked {
    pub fn progress(&self, done: u32, total: Option<u32>) {
        if let Some(job) = self.jobs.lock().get_mut(&self.id) {
            job.done = done;
            job.total = total;
        }
    }
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Job>> {
        // A panic while holding this lock leaves a map that is still consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn start(&self, job: Job) -> Tracked {
        let id = job.attachment_id;
        self.lock().insert(id, job);
        crate::metrics::IN_FLIGHT.inc();
        Tracked {
            jobs: self.clone(),
            id,
        }
    }

    /// Oldest first.
    pub fn list(&self, user: Option<&str>) -> Vec<Job> {
        let mut jobs: Vec<Job> = self
            .lock()
            .values()
            .filter(|j| user.is_none_or(|u| j.user_id.to_string() == u))
            .cloned()
            .collect();
        jobs.sort_by_key(|j| j.started_at);
        jobs
    }
}

/// `GET /v1/jobs`: the attachments being read. Needs `memory:read` (the text being read is
/// memory's); a token confined to a user sees that user's only.
pub async fn list(
    State(app): State<App>,
    headers: HeaderMap,
) -> Result<Json<Vec<Job>>, ErrorResponse> {
    let caller = daarion_control_client::identify(
        Some(app.root_token.as_ref()),
        Some(&app.introspector),
        &headers,
    )
    .await
    .map_err(|e| ErrorResponse::unavailable(format!("the control plane: {e}")))?
    .ok_or_else(|| ErrorResponse::unauthorized("a bearer token is required"))?;
    if !(caller.has("memory:read") || caller.has("memory:user")) {
        return Err(ErrorResponse::forbidden("needs the memory:read scope"));
    }
    Ok(Json(app.jobs.list(caller.user())))
}

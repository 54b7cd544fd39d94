//! Calls to the crews service with the caller's credential and the current trace.

use std::time::Duration;

use daarion_client::{ClientError, Service, Timeouts, http_client, segment};
use reqwest::Method;
use serde::Serialize;
use uuid::Uuid;

use crate::run::{Rerun, ResumeRequest, Run, RunCreated, RunRequest, RunState};
use crate::spec::{CrewSpec, CrewSummary, CrewVersion, ImportReport, ImportRequest, VersionDiff};
use crate::worker::{
    Claim, ClaimRequest, Finish, Heartbeat, HeartbeatAnswer, Recorded, StepRecord,
};

/// A call to the crews service reads or writes a few rows; the limit is for a peer that stalls.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `GET /v1/runs` filters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunsQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<RunState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crew: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The crews service as one caller sees it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CrewsClient {
    service: Service,
}

impl CrewsClient {
    pub const NAME: &'static str = "the crews service";

    /// `base` like `http://127.0.0.1:9010`; `token` the credential every call shows.
    pub fn new(base: impl Into<String>, token: Option<String>) -> CrewsClient {
        CrewsClient {
            service: Service::new(
                Self::NAME,
                base,
                token,
                http_client(Timeouts::total(TIMEOUT)),
            ),
        }
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.service
            .json(self.service.request(Method::GET, path))
            .await
    }

    async fn post<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.service
            .json(self.service.request(Method::POST, path).json(body))
            .await
    }

    // Definitions ---------------------------------------------------------------------------

    pub async fn crews(&self) -> Result<Vec<CrewSummary>, ClientError> {
        self.get("/v1/crews").await
    }

    /// The crew's active version.
    pub async fn crew(&self, id: &str) -> Result<CrewVersion, ClientError> {
        self.get(&format!("/v1/crews/{}", segment(id))).await
    }

    /// Creates the crew, or saves `spec` as its next version.
    pub async fn save(&self, spec: &CrewSpec) -> Result<CrewVersion, ClientError> {
        self.service
            .json(
                self.service
                    .request(Method::PUT, &format!("/v1/crews/{}", segment(&spec.id)))
                    .json(spec),
            )
            .await
    }

    pub async fn versions(&self, id: &str) -> Result<Vec<CrewVersion>, ClientError> {
        self.get(&format!("/v1/crews/{}/versions", segment(id)))
            .await
    }

    pub async fn diff(&self, id: &str, from: u32, to: u32) -> Result<VersionDiff, ClientError> {
        self.get(&format!(
            "/v1/crews/{}/diff?from={from}&to={to}",
            segment(id)
        ))
        .await
    }

    pub async fn rollback(&self, id: &str, version: u32) -> Result<CrewVersion, ClientError> {
        self.post(
            &format!("/v1/crews/{}/rollback", segment(id)),
            &crate::spec::RollbackRequest { version },
        )
        .await
    }

    pub async fn import(&self, request: &ImportRequest) -> Result<ImportReport, ClientError> {
        self.post("/v1/crews/import", request).await
    }

    pub async fn delete(&self, id: &str) -> Result<(), ClientError> {
        self.service
            .call(
                self.service
                    .request(Method::DELETE, &format!("/v1/crews/{}", segment(id))),
            )
            .await
    }

    // Runs ----------------------------------------------------------------------------------

    pub async fn start(&self, crew: &str, request: &RunRequest) -> Result<Run, ClientError> {
        let created: RunCreated = self
            .post(&format!("/v1/crews/{}/runs", segment(crew)), request)
            .await?;
        Ok(created.run)
    }

    pub async fn runs(&self, query: &RunsQuery) -> Result<Vec<Run>, ClientError> {
        self.service
            .json(self.service.request(Method::GET, "/v1/runs").query(query))
            .await
    }

    /// The run with every step.
    pub async fn run(&self, id: Uuid) -> Result<Run, ClientError> {
        self.get(&format!("/v1/runs/{id}")).await
    }

    pub async fn cancel(&self, id: Uuid) -> Result<Run, ClientError> {
        self.post(&format!("/v1/runs/{id}/cancel"), &serde_json::json!({}))
            .await
    }

    pub async fn resume(&self, id: Uuid, request: &ResumeRequest) -> Result<Run, ClientError> {
        self.post(&format!("/v1/runs/{id}/resume"), request).await
    }

    pub async fn rerun(&self, id: Uuid, request: &Rerun) -> Result<Run, ClientError> {
        self.post(&format!("/v1/runs/{id}/rerun"), request).await
    }

    // The worker's journal -----------------------------------------------------------------

    pub async fn claim(&self, id: Uuid, request: &ClaimRequest) -> Result<Claim, ClientError> {
        self.post(&format!("/v1/worker/runs/{id}/claim"), request)
            .await
    }

    pub async fn record(&self, id: Uuid, step: &StepRecord) -> Result<Recorded, ClientError> {
        self.post(&format!("/v1/worker/runs/{id}/steps"), step)
            .await
    }

    pub async fn heartbeat(
        &self,
        id: Uuid,
        beat: &Heartbeat,
    ) -> Result<HeartbeatAnswer, ClientError> {
        self.post(&format!("/v1/worker/runs/{id}/heartbeat"), beat)
            .await
    }

    pub async fn finish(&self, id: Uuid, finish: &Finish) -> Result<Run, ClientError> {
        self.post(&format!("/v1/worker/runs/{id}/finish"), finish)
            .await
    }
}

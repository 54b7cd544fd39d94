//! The crews service's contract (:9010): crew definitions ([`CrewSpec`], versioned like
//! prompts), runs ([`Run`]) and their step journal ([`Step`]), the live events of a run
//! ([`RunEvent`]), and the worker's calls that keep the journal ([`worker`]). The service, the
//! crews worker, the gateway, the router and the admin UI compile against these types.
//!
//! A run's states: `queued` → `running` → `completed` | `failed` | `cancelled`, with
//! `waiting_input` between `running`s when a task asks its user (`human_input`). A finished
//! run is never started again; `resume` and `rerun` are explicit.

mod client;
mod run;
mod spec;
pub mod worker;

pub use client::{CrewsClient, RunsQuery};
pub use daarion_bus::events::RunUsage;
pub use daarion_client::ClientError;
pub use run::{
    Rerun, ResumeRequest, Run, RunCreated, RunEvent, RunRequest, RunState, Step, StepKind, Stop,
    StopCode,
};
pub use spec::{
    Budget, CrewAgent, CrewSpec, CrewSummary, CrewTask, CrewVersion, ImportReport, ImportRequest,
    Process, RollbackRequest, VersionDiff,
};

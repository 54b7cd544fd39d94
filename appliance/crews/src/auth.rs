//! Who is calling and what they may do here.
//!
//! `crews:write`: change definitions. `read`: read definitions and every run. `crews:run`:
//! start runs, and see, cancel and resume only the runs of the user its token is bound to, or,
//! for an unbound token, the runs it started itself. The worker's journal
//! (`/v1/worker/…`) is for services: `crews:write` without a bound user (the worker calls with
//! the root token). `admin` (and the root token) does everything.

use axum::http::HeaderMap;
use daarion_control_client::{Principal, identify};
use uuid::Uuid;

use crate::store::runs::RunRow;
use crate::{App, CrewsError};

pub const WRITE: &str = "crews:write";
pub const RUN: &str = "crews:run";
pub const READ: &str = "read";

pub struct Caller {
    pub principal: Principal,
}

impl Caller {
    /// Recorded as a version's author, a run's `started_by`, an audit record's actor.
    pub fn name(&self) -> String {
        self.principal.name()
    }

    fn bound(&self) -> Result<Option<Uuid>, CrewsError> {
        self.principal
            .user()
            .map(|u| u.parse().map_err(|_| CrewsError::Forbidden(RUN)))
            .transpose()
    }

    pub fn write(&self) -> Result<(), CrewsError> {
        self.require(WRITE)
    }

    pub fn read(&self) -> Result<(), CrewsError> {
        self.require(READ)
    }

    fn require(&self, scope: &'static str) -> Result<(), CrewsError> {
        if self.principal.has(scope) {
            Ok(())
        } else {
            Err(CrewsError::Forbidden(scope))
        }
    }

    /// The journal's writers: services, never a token bound to one user.
    pub fn service_write(&self) -> Result<(), CrewsError> {
        if self.principal.is_admin() || (self.principal.has(WRITE) && self.bound()?.is_none()) {
            Ok(())
        } else {
            Err(CrewsError::Forbidden("crews:write (unbound)"))
        }
    }

    /// Whose run a start makes: the bound user (which `requested` may repeat, never change),
    /// else the one named.
    pub fn start_for(&self, requested: Option<Uuid>) -> Result<Uuid, CrewsError> {
        self.require(RUN)?;
        match (self.bound()?, requested) {
            (Some(bound), Some(named)) if bound != named => Err(CrewsError::OtherUser),
            (Some(bound), _) => Ok(bound),
            (None, Some(named)) => Ok(named),
            (None, None) => Err(CrewsError::invalid(
                "user_id",
                "whose run it is must be given (the credential is bound to no user)",
            )),
        }
    }

    /// May see this run: readers see all, `crews:run` its user's or its own.
    pub fn see(&self, run: &RunRow) -> Result<(), CrewsError> {
        if self.principal.has(READ) && self.bound()?.is_none() {
            return Ok(());
        }
        self.own(run)
    }

    /// May cancel, resume or re-run this run.
    pub fn act_on(&self, run: &RunRow) -> Result<(), CrewsError> {
        if self.principal.is_admin() {
            return Ok(());
        }
        self.own(run)
    }

    fn own(&self, run: &RunRow) -> Result<(), CrewsError> {
        self.require(RUN)?;
        match self.bound()? {
            Some(user) if user == run.user_id => Ok(()),
            Some(_) => Err(CrewsError::OtherUser),
            None if run.started_by == self.name() => Ok(()),
            None => Err(CrewsError::Forbidden(READ)),
        }
    }

    /// What a run list is confined to: nothing for a reader; for `crews:run`, its user (a
    /// filter naming another is refused) or the runs it started.
    pub fn list_scope(&self, user: Option<Uuid>) -> Result<ListScope, CrewsError> {
        let bound = self.bound()?;
        if self.principal.has(READ) && bound.is_none() {
            return Ok(ListScope::All);
        }
        self.require(RUN)?;
        match (bound, user) {
            (Some(bound), Some(named)) if bound != named => Err(CrewsError::OtherUser),
            (Some(bound), _) => Ok(ListScope::User(bound)),
            (None, _) => Ok(ListScope::StartedBy(self.name())),
        }
    }
}

pub enum ListScope {
    All,
    User(Uuid),
    StartedBy(String),
}

pub async fn caller(app: &App, headers: &HeaderMap) -> Result<Caller, CrewsError> {
    let principal = identify(
        Some(app.root_token.as_ref()),
        Some(&app.introspector),
        headers,
    )
    .await
    .map_err(|_| CrewsError::AuthUnavailable)?
    .ok_or(CrewsError::Unauthenticated)?;
    Ok(Caller { principal })
}

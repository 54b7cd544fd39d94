//! The quota contract: the bodies of `POST /quotas/{user}/consume` and `/settle` and the answer
//! of `GET /quotas/{user}`, compiled by the control plane's handlers and by every caller.

use daarion_client::reqwest::Method;
use daarion_client::segment;
use serde::{Deserialize, Serialize};

use crate::client::ControlClient;
use crate::error::ClientError;

/// One request's use of the four budgets: what a caller reserves before the work and settles
/// after it. Every field defaults to zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Usage {
    #[serde(default)]
    pub requests: u32,
    #[serde(default)]
    pub tokens: u64,
    #[serde(default)]
    pub gpu_seconds: f64,
    #[serde(default)]
    pub cost: f64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.requests += other.requests;
        self.tokens += other.tokens;
        self.gpu_seconds += other.gpu_seconds;
        self.cost += other.cost;
    }
}

/// The body of `settle`: a reservation replaced by what was really used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    pub reserved: Usage,
    pub actual: Usage,
}

/// The answer of `consume` when every budget had room.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Consumed {
    pub allowed: bool,
    pub consumed: Usage,
}

/// The answer of `settle`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Settled {
    pub settled: bool,
    pub actual: Usage,
}

/// Limits as stored and sent; `None` is unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub requests_per_minute: Option<i64>,
    pub tokens_per_day: Option<i64>,
    pub gpu_seconds_per_day: Option<f64>,
    pub cost_per_month: Option<f64>,
    #[serde(default = "usd")]
    pub currency: String,
}

/// The currency of limits that name none.
pub fn usd() -> String {
    "USD".into()
}

/// Where each effective limit comes from: `user:<id>`, `role:<name>` or `unlimited`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitSources {
    pub requests_per_minute: String,
    pub tokens_per_day: String,
    pub gpu_seconds_per_day: String,
    pub cost_per_month: String,
}

/// What a user has used in the current windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageNow {
    pub requests_this_minute: i64,
    pub tokens_today: i64,
    pub gpu_seconds_today: f64,
    pub cost_this_month: f64,
}

/// `GET /quotas/{user}`: the user's effective limits, where each comes from, and their use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuotaStatus {
    pub user_id: String,
    pub roles: Vec<String>,
    pub limits: Limits,
    pub sources: LimitSources,
    pub usage: UsageNow,
}

/// The answer of `PUT /quotas/limits/{kind}/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitsStored {
    /// `user:<id>` or `role:<name>`.
    pub scope: String,
    pub revision: i32,
    pub limits: Limits,
}

impl ControlClient {
    /// The user's limits and what they used (for `/status`); never cached.
    pub async fn quota_status(&self, user: &str) -> Result<QuotaStatus, ClientError> {
        let service = self.service();
        let path = format!("/quotas/{}", segment(user));
        Ok(service.json(service.request(Method::GET, &path)).await?)
    }

    /// Reserves `usage` against the user's quotas: `Err(QuotaExceeded)` names the budget.
    /// Never cached: quotas are enforced by the control plane alone.
    pub async fn consume(&self, user: &str, usage: &Usage) -> Result<Consumed, ClientError> {
        self.quota_call(user, "consume", usage).await
    }

    /// Replaces a reservation made with [`ControlClient::consume`] by what was really used.
    pub async fn settle(
        &self,
        user: &str,
        reserved: &Usage,
        actual: &Usage,
    ) -> Result<Settled, ClientError> {
        let body = Settlement {
            reserved: *reserved,
            actual: *actual,
        };
        self.quota_call(user, "settle", &body).await
    }

    async fn quota_call<T: Serialize, A: serde::de::DeserializeOwned>(
        &self,
        user: &str,
        verb: &str,
        body: &T,
    ) -> Result<A, ClientError> {
        let service = self.service();
        let path = format!("/quotas/{}/{verb}", segment(user));
        Ok(service
            .json(service.request(Method::POST, &path).json(body))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_fields_default_and_unknown_ones_are_refused() {
        let usage: Usage = serde_json::from_str(r#"{"tokens": 4}"#).unwrap();
        assert_eq!(
            usage,
            Usage {
                tokens: 4,
                ..Usage::default()
            }
        );
        assert!(serde_json::from_str::<Usage>(r#"{"tokenz": 4}"#).is_err());
        let mut total = usage;
        total += Usage {
            requests: 1,
            tokens: 1,
            gpu_seconds: 0.5,
            cost: 0.25,
        };
        assert_eq!((total.requests, total.tokens), (1, 5));
        assert_eq!((total.gpu_seconds, total.cost), (0.5, 0.25));
    }

    #[test]
    fn limits_default_to_dollars() {
        let limits: Limits = serde_json::from_str(r#"{"tokens_per_day": 10}"#).unwrap();
        assert_eq!(limits.currency, "USD");
        assert_eq!(limits.requests_per_minute, None);
    }
}

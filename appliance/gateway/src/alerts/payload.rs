//! Alertmanager's webhook payload (version 4), read leniently: only `receiver` and the alerts are
//! required, so a field Alertmanager adds or leaves out never loses an alert.

use std::collections::BTreeMap;

use daarion_bus::events::OpsAlert;
use serde::Deserialize;
use uuid::Uuid;

/// One webhook call: a group of alerts, as Alertmanager groups them (`group_by`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    #[serde(default)]
    pub version: String,
    pub receiver: String,
    pub alerts: Vec<Alert>,
    /// Alerts left out above the receiver's `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default)]
    pub fingerprint: String,
}

pub const FIRING: &str = "firing";
pub const RESOLVED: &str = "resolved";

impl Webhook {
    /// Reads a body; what is wrong with it, for a 400.
    pub fn parse(body: &[u8]) -> Result<Webhook, String> {
        let webhook: Webhook = serde_json::from_slice(body)
            .map_err(|e| format!("not an Alertmanager webhook: {e}"))?;
        if let Some(bad) = webhook
            .alerts
            .iter()
            .find(|a| a.status != FIRING && a.status != RESOLVED)
        {
            return Err(format!(
                "alert status `{}` is neither `firing` nor `resolved`",
                bad.status
            ));
        }
        Ok(webhook)
    }
}

impl Alert {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    pub fn annotation(&self, name: &str) -> &str {
        self.annotations.get(name).map_or("", String::as_str)
    }

    pub fn firing(&self) -> bool {
        self.status == FIRING
    }

    /// What makes one notification of this alert itself: Alertmanager repeats a firing alert
    /// with the same fingerprint and start until it resolves, and sends its resolution once more
    /// per group interval.
    pub fn occurrence(&self) -> String {
        let fingerprint = if self.fingerprint.is_empty() {
            // Alertmanager always sends one; without it, the labels name the alert.
            self.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        } else {
            self.fingerprint.clone()
        };
        format!("{fingerprint}:{}:{}", self.status, self.starts_at)
    }

    /// The `ops.alert` event id: the same for every repeat of one occurrence, so the bus and the
    /// audit log keep it once even should the gateway's own mark be lost.
    pub fn event_id(&self) -> Uuid {
        Uuid::new_v5(
            &Uuid::NAMESPACE_URL,
            format!("alertmanager:{}", self.occurrence()).as_bytes(),
        )
    }

    pub fn to_event(&self) -> OpsAlert {
        OpsAlert {
            status: self.status.clone(),
            alertname: self.label("alertname").to_owned(),
            severity: self.label("severity").to_owned(),
            summary: self.annotation("summary").to_owned(),
            description: self.annotation("description").to_owned(),
            fingerprint: self.fingerprint.clone(),
            labels: self.labels.clone(),
            starts_at: self.starts_at.clone(),
            ends_at: self.ends_at.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_alertmanagers_payload_and_refuses_unknown_states() {
        let body = json!({
            "version": "4", "receiver": "gateway", "status": "firing", "groupKey": "{}:{}",
            "truncatedAlerts": 2, "commonLabels": {"severity": "critical"},
            "alerts": [{"status": "firing", "labels": {"alertname": "A", "severity": "critical"},
                        "annotations": {"summary": "s"}, "startsAt": "2024-01-01T00:00:00Z",
                        "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "f1", "generatorURL": "x"}]
        });
        let webhook = Webhook::parse(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(webhook.truncated_alerts, 2);
        let event = webhook.alerts[0].to_event();
        assert_eq!(
            (event.alertname.as_str(), event.severity.as_str()),
            ("A", "critical")
        );

        let mut bad = body.clone();
        bad["alerts"][0]["status"] = json!("pending");
        let err = Webhook::parse(&serde_json::to_vec(&bad).unwrap()).unwrap_err();
        assert!(err.contains("pending"), "{err}");
        assert!(Webhook::parse(b"{}").is_err());
    }

    #[test]
    fn repeats_share_an_event_id_and_resolution_does_not() {
        let alert = |status: &str, starts: &str| Alert {
            status: status.into(),
            labels: BTreeMap::from([("alertname".into(), "A".into())]),
            annotations: BTreeMap::new(),
            starts_at: starts.into(),
            ends_at: String::new(),
            fingerprint: "f1".into(),
        };
        let first = alert(FIRING, "2024-01-01T00:00:00Z");
        assert_eq!(first.event_id(), first.clone().event_id());
        assert_ne!(
            first.event_id(),
            alert(RESOLVED, "2024-01-01T00:00:00Z").event_id()
        );
        assert_ne!(
            first.event_id(),
            alert(FIRING, "2024-01-02T00:00:00Z").event_id(),
            "firing again later is another occurrence"
        );
    }
}

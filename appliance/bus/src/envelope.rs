//! The envelope every event travels in.

use daarion_telemetry::TraceContext;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// `type` is the subject without prefix (`attachment.created.pdf`); `schema_version` lets a
/// consumer refuse, rather than misread, a payload shape it does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub event_type: String,
    pub trace_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub source: String,
    pub schema_version: u32,
    pub payload: T,
}

impl<T> Envelope<T> {
    /// A new event in the current trace (or a new trace outside any request or message).
    /// The id is a UUIDv7, so ids sort by creation time.
    pub fn new(event_type: impl Into<String>, source: impl Into<String>, payload: T) -> Self {
        Envelope {
            id: Uuid::now_v7(),
            event_type: event_type.into(),
            trace_id: TraceContext::current_or_new().trace_id(),
            time: OffsetDateTime::now_utc(),
            source: source.into(),
            schema_version: 1,
            payload,
        }
    }

    pub fn with_schema_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_stable() {
        let env = Envelope::new("audit.action", "control-plane", serde_json::json!({"a": 1}));
        let v = serde_json::to_value(&env).unwrap();
        for key in [
            "id",
            "type",
            "trace_id",
            "time",
            "source",
            "schema_version",
            "payload",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
        assert_eq!(v["type"], "audit.action");
        let back: Envelope<serde_json::Value> = serde_json::from_value(v).unwrap();
        assert_eq!(back, env);
    }

    #[tokio::test]
    async fn takes_the_current_trace() {
        let ctx = TraceContext::new_root();
        let env = ctx
            .scope(async { Envelope::new("message.received", "gateway", ()) })
            .await;
        assert_eq!(env.trace_id, ctx.trace_id());
    }
}

//! The envelope every event travels in.

use crate::events::{Event, in_family};
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
    /// Which delivery of the message this is, set by the consumer (not part of the JSON).
    #[serde(skip)]
    pub delivery: Delivery,
}

/// Where a message stands in its redeliveries, so a handler whose work keeps failing for a
/// passing reason can record the outcome somewhere a person sees it before the message goes
/// to the dead letters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// 1 for the first delivery (0 for an envelope that was not delivered by a consumer).
    pub count: u64,
    /// A transient failure of this delivery dead-letters the message (`bus.max_deliveries`).
    pub last: bool,
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
            delivery: Delivery::default(),
        }
    }

    pub fn with_schema_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }
}

impl<E: Event> Envelope<E> {
    /// A new event of `E`'s family, typed and versioned by `E`.
    pub fn event(source: impl Into<String>, payload: E) -> Self {
        Envelope::new(E::TYPE, source, payload).with_schema_version(E::SCHEMA_VERSION)
    }

    /// Like [`Envelope::event`], with a qualifying token (`memory.store.chunk`), so consumers can
    /// filter on it.
    pub fn event_as(qualifier: &str, source: impl Into<String>, payload: E) -> Self {
        Envelope::new(format!("{}.{qualifier}", E::TYPE), source, payload)
            .with_schema_version(E::SCHEMA_VERSION)
    }
}

/// Why a message is not an event of the family a consumer reads; it is dead-lettered with this.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("undecodable envelope: {0}")]
    Envelope(serde_json::Error),
    #[error("`{found}` is not a `{expected}` event")]
    Family {
        found: String,
        expected: &'static str,
    },
    #[error(
        "`{event_type}` has schema version {found}; this build reads up to {known} (a newer producer?)"
    )]
    NewerSchema {
        event_type: String,
        found: u32,
        known: u32,
    },
    #[error("`{event_type}` payload does not match its schema: {error}")]
    Payload {
        event_type: String,
        error: serde_json::Error,
    },
}

/// Reads a message body as an event of `E`'s family. The envelope is read first without the
/// payload, so an event of another family or of a newer schema is reported as such rather than
/// as a payload that does not parse.
pub fn decode<E: Event>(body: &[u8]) -> Result<Envelope<E>, DecodeError> {
    let head: Envelope<serde::de::IgnoredAny> =
        serde_json::from_slice(body).map_err(DecodeError::Envelope)?;
    if !in_family(&head.event_type, E::TYPE) {
        return Err(DecodeError::Family {
            found: head.event_type,
            expected: E::TYPE,
        });
    }
    if head.schema_version > E::SCHEMA_VERSION {
        return Err(DecodeError::NewerSchema {
            event_type: head.event_type,
            found: head.schema_version,
            known: E::SCHEMA_VERSION,
        });
    }
    serde_json::from_slice(body).map_err(|error| DecodeError::Payload {
        event_type: head.event_type,
        error,
    })
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

    #[test]
    fn typed_events_carry_their_family_and_version_and_refuse_others() {
        use crate::events::{MemoryStore, MessageProcessed};
        let store = MemoryStore {
            kind: "chunk".into(),
            id: Uuid::nil(),
        };
        let env = Envelope::event_as("chunk", "memory", store.clone());
        assert_eq!(env.event_type, "memory.store.chunk");
        assert_eq!(env.schema_version, MemoryStore::SCHEMA_VERSION);
        let body = serde_json::to_vec(&env).unwrap();
        assert_eq!(decode::<MemoryStore>(&body).unwrap().payload, store);
        assert!(matches!(
            decode::<MessageProcessed>(&body),
            Err(DecodeError::Family { .. })
        ));
        let newer = serde_json::to_vec(&env.clone().with_schema_version(99)).unwrap();
        assert!(matches!(
            decode::<MemoryStore>(&newer),
            Err(DecodeError::NewerSchema { found: 99, .. })
        ));
        let mut wrong = serde_json::to_value(&env).unwrap();
        wrong["payload"] = serde_json::json!({"kind": 3});
        let wrong = serde_json::to_vec(&wrong).unwrap();
        assert!(matches!(
            decode::<MemoryStore>(&wrong),
            Err(DecodeError::Payload { .. })
        ));
        assert!(decode::<serde_json::Value>(&newer).is_ok());
        assert!(matches!(
            decode::<MemoryStore>(b"not json"),
            Err(DecodeError::Envelope(_))
        ));
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

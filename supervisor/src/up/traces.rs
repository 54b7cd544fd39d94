//! `GET /api/traces/{trace_id}`: one trace as a waterfall across every service, for the admin
//! UI's trace view. Admin-authorised like the rest of `/api`.
//!
//! Each service keeps its own spans and log lines in memory (`daarion_telemetry::Recorder`) and
//! serves them at `/internal/traces/{trace_id}` to the root token; this asks every ready service
//! at once (2 s each), adds the supervisor's own, and merges them. A service that is not
//! running or does not answer in time is named in `missing`: its part of the trace is absent,
//! not empty. Spans live only as long as each process's ring holds them (20,000 spans a
//! process) and the process runs.
//!
//! 200:
//!
//! ```json
//! {
//!   "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
//!   "spans": [
//!     {
//!       "service": "gateway",              // the process that ran the span
//!       "name": "request",                 // "request" (HTTP), "message" (bus), or a span
//!                                          // opened inside them
//!       "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
//!       "span_id": "00f067aa0ba902b7",     // 16 hex digits
//!       "parent_id": null,                 // the span it ran in, here or in the caller;
//!                                          // null for the trace's root; may name a span no
//!                                          // service holds (evicted, or a caller's outgoing
//!                                          // call): show it at the top level
//!       "start_unix_nanos": 1718000000000000000,
//!       "duration_nanos": 1250000,
//!       "fields": {"route": "/v1/route", "method": "POST", "status": "200"}
//!                                          // string values: route, method, status,
//!                                          // request_id (requests); consumer, subject,
//!                                          // event_id, delivery (messages); model, ...
//!     }
//!   ],                                     // sorted by start_unix_nanos
//!   "events": [
//!     {
//!       "service": "router",
//!       "span_id": "a3ce929d0e0e4736",     // the span the line was logged in
//!       "unix_nanos": 1718000000000400000,
//!       "level": "INFO",                   // TRACE DEBUG INFO WARN ERROR
//!       "target": "daarion_router::route",
//!       "text": "routed agent=helper"      // message then key=value fields, ≤ 2 KiB
//!     }
//!   ],                                     // sorted by unix_nanos
//!   "missing": ["swapper"]                 // services that did not answer
//! }
//! ```
//!
//! A malformed trace id (not 32 lowercase hex digits, or all zero): 422 with the standard error
//! body. A trace no service knows: 200 with empty `spans` and `events`.

use std::collections::HashSet;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use daarion_config::{Config, ServiceName};
use daarion_http::ErrorResponse;
use daarion_telemetry::{EventView, Recorder, SpanView, TraceDump, parse_trace_id};
use serde::Serialize;

use super::admin::AdminState;
use super::plan::UnitName;
use super::unit::State as UnitState;

/// How long one service may take to answer before it is named in `missing`.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// Where each enabled service serves its part of a trace.
#[derive(Clone)]
pub struct TraceSources {
    client: reqwest::Client,
    bases: Vec<(ServiceName, String)>,
}

impl TraceSources {
    pub fn new(config: &Config) -> TraceSources {
        let bases = ServiceName::ALL
            .into_iter()
            .filter(|s| config.service(*s).enabled)
            .map(|s| (s, format!("http://{}", config.service(s).dial())))
            .collect();
        let client = reqwest::Client::builder()
            .timeout(ASK_TIMEOUT)
            .build()
            .unwrap_or_default();
        TraceSources { client, bases }
    }
}

#[derive(Debug, Serialize)]
pub struct Waterfall {
    pub trace_id: String,
    pub spans: Vec<SpanView>,
    pub events: Vec<ServiceEvent>,
    pub missing: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ServiceEvent {
    pub service: String,
    #[serde(flatten)]
    pub event: EventView,
}

pub async fn show(State(state): State<AdminState>, Path(trace_id): Path<String>) -> Response {
    let Some(id) = parse_trace_id(&trace_id) else {
        return ErrorResponse::invalid("a trace id is 32 lowercase hex digits, not all zero")
            .into_response();
    };
    let mut missing = Vec::new();
    let mut asks = Vec::new();
    for (service, base) in &state.traces.bases {
        let ready = state.units.iter().any(|u| {
            u.name == UnitName::Service(*service) && u.snapshot().state == UnitState::Ready
        });
        if ready {
            asks.push(ask(
                &state.traces.client,
                *service,
                base,
                &state.token,
                &trace_id,
            ));
        } else {
            missing.push(service.as_str().to_owned());
        }
    }
    let mut dumps = vec![Recorder::global().trace(&id)];
    for (service, answer) in futures::future::join_all(asks).await {
        match answer {
            Some(dump) => dumps.push(dump),
            None => missing.push(service.as_str().to_owned()),
        }
    }
    Json(merge(trace_id, dumps, missing)).into_response()
}

async fn ask(
    client: &reqwest::Client,
    service: ServiceName,
    base: &str,
    token: &str,
    trace_id: &str,
) -> (ServiceName, Option<TraceDump>) {
    let answer = async {
        let response = client
            .get(format!("{base}/internal/traces/{trace_id}"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        response
            .json::<TraceDump>()
            .await
            .map_err(|e| e.to_string())
    };
    match answer.await {
        Ok(dump) => (service, Some(dump)),
        Err(reason) => {
            tracing::debug!(service = service.as_str(), %reason, "trace: no answer");
            (service, None)
        }
    }
}

/// One waterfall from each process's part: spans once each (processes that share an address
/// space, as in tests, report each other's), sorted by start; lines by time.
pub fn merge(trace_id: String, dumps: Vec<TraceDump>, mut missing: Vec<String>) -> Waterfall {
    let mut seen = HashSet::new();
    let mut seen_events = HashSet::new();
    let mut spans = Vec::new();
    let mut events = Vec::new();
    for dump in dumps {
        for span in dump.spans {
            if seen.insert(span.span_id.clone()) {
                spans.push(span);
            }
        }
        for event in dump.events {
            if seen_events.insert((event.span_id.clone(), event.unix_nanos, event.text.clone())) {
                events.push(ServiceEvent {
                    service: dump.service.clone(),
                    event,
                });
            }
        }
    }
    spans.sort_by(|a, b| (a.start_unix_nanos, &a.span_id).cmp(&(b.start_unix_nanos, &b.span_id)));
    events.sort_by_key(|e| e.event.unix_nanos);
    missing.sort();
    missing.dedup();
    Waterfall {
        trace_id,
        spans,
        events,
        missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(service: &str, id: &str, parent: Option<&str>, start: u64) -> SpanView {
        SpanView {
            service: service.into(),
            name: "request".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: id.into(),
            parent_id: parent.map(Into::into),
            start_unix_nanos: start,
            duration_nanos: 10,
            fields: Default::default(),
        }
    }

    fn line(span_id: &str, at: u64, text: &str) -> EventView {
        EventView {
            span_id: span_id.into(),
            unix_nanos: at,
            level: "INFO".into(),
            target: "t".into(),
            text: text.into(),
        }
    }

    #[test]
    fn parts_merge_into_one_sorted_waterfall() {
        let gateway = TraceDump {
            service: "gateway".into(),
            spans: vec![span("gateway", "aa", None, 100)],
            events: vec![line("aa", 150, "queued")],
        };
        let router = TraceDump {
            service: "router".into(),
            spans: vec![
                span("router", "cc", Some("bb"), 300),
                span("router", "bb", Some("aa"), 200),
            ],
            events: vec![line("bb", 120, "routed")],
        };
        // The same process reported twice (shared address space): kept once.
        let again = TraceDump {
            service: "router".into(),
            spans: vec![span("router", "bb", Some("aa"), 200)],
            events: vec![line("bb", 120, "routed")],
        };
        let merged = merge(
            "t".into(),
            vec![gateway, router, again],
            vec!["swapper".into(), "memory".into(), "swapper".into()],
        );
        let order: Vec<_> = merged.spans.iter().map(|s| s.span_id.as_str()).collect();
        assert_eq!(order, ["aa", "bb", "cc"]);
        let lines: Vec<_> = merged
            .events
            .iter()
            .map(|e| (e.service.as_str(), e.event.text.as_str()))
            .collect();
        assert_eq!(lines, [("router", "routed"), ("gateway", "queued")]);
        assert_eq!(merged.missing, ["memory", "swapper"]);
        let json = serde_json::to_value(&merged).unwrap();
        assert_eq!(json["events"][0]["service"], "router");
        assert_eq!(json["events"][0]["span_id"], "bb");
        assert_eq!(json["spans"][1]["parent_id"], "aa");
    }
}

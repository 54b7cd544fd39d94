//! Recorded spans sent on to an operator's collector (Jaeger, Tempo, an OpenTelemetry
//! Collector) as OTLP/HTTP JSON when `telemetry.otlp_endpoint` is set.
//!
//! Closed spans go into a bounded queue (a full queue drops and counts the span); a thread of
//! its own posts them in batches to `<endpoint>/v1/traces` every `interval` or as soon as a
//! batch is full. Its own runtime keeps export off the service's workers and independent of
//! whether logging was set up inside one. A failing collector is logged at most once a minute;
//! its spans are dropped and counted, never retried (the ring still holds them for the UI).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::metrics::OTLP_DROPPED;
use crate::spans::{Recorder, SpanRecord, SpanSink, hex};

/// How often and how much the exporter sends.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    pub interval: Duration,
    pub batch: usize,
    /// Spans waiting at most; beyond it new spans are dropped.
    pub queue: usize,
    pub timeout: Duration,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            interval: Duration::from_secs(2),
            batch: 512,
            queue: 8192,
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("telemetry.otlp_endpoint `{0}` is not an http:// or https:// URL")]
    Endpoint(String),
    #[error("cannot build the OTLP HTTP client: {0}")]
    Client(String),
    #[error("cannot start the OTLP exporter thread: {0}")]
    Thread(std::io::Error),
    #[error("an OTLP exporter is already attached to this recorder")]
    AlreadyStarted,
}

struct Queue {
    items: Mutex<VecDeque<Arc<SpanRecord>>>,
    wake: tokio::sync::Notify,
    options: ExportOptions,
}

impl SpanSink for Arc<Queue> {
    fn offer(&self, span: &Arc<SpanRecord>) {
        let len = {
            let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
            if items.len() >= self.options.queue {
                drop(items);
                OTLP_DROPPED.inc();
                return;
            }
            items.push_back(span.clone());
            items.len()
        };
        if len == self.options.batch {
            self.wake.notify_one();
        }
    }
}

impl Queue {
    fn take(&self) -> Vec<Arc<SpanRecord>> {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let n = items.len().min(self.options.batch);
        items.drain(..n).collect()
    }
}

/// The URL batches are posted to: the endpoint as configured, with `/v1/traces` unless given.
pub fn traces_url(endpoint: &str) -> Result<String, OtlpError> {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(OtlpError::Endpoint(endpoint.to_owned()));
    }
    if endpoint.ends_with("/v1/traces") {
        Ok(endpoint.to_owned())
    } else {
        Ok(format!("{endpoint}/v1/traces"))
    }
}

/// Attaches an exporter to `recorder`: from now on every span it closes is also sent to the
/// collector at `endpoint`.
pub fn start_otlp(
    recorder: &Arc<Recorder>,
    endpoint: &str,
    options: ExportOptions,
) -> Result<(), OtlpError> {
    let url = traces_url(endpoint)?;
    let client = reqwest::Client::builder()
        .timeout(options.timeout)
        .build()
        .map_err(|e| OtlpError::Client(e.to_string()))?;
    let queue = Arc::new(Queue {
        items: Mutex::new(VecDeque::new()),
        wake: tokio::sync::Notify::new(),
        options,
    });
    if !recorder.set_sink(Box::new(queue.clone())) {
        return Err(OtlpError::AlreadyStarted);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OtlpError::Thread)?;
    std::thread::Builder::new()
        .name("otlp-export".into())
        .spawn(move || runtime.block_on(export(queue, client, url)))
        .map_err(OtlpError::Thread)?;
    Ok(())
}

async fn export(queue: Arc<Queue>, client: reqwest::Client, url: String) {
    let mut last_warning: Option<Instant> = None;
    loop {
        tokio::select! {
            () = queue.wake.notified() => {}
            () = tokio::time::sleep(queue.options.interval) => {}
        }
        loop {
            let batch = queue.take();
            if batch.is_empty() {
                break;
            }
            let full = batch.len() == queue.options.batch;
            if let Err(reason) = send(&client, &url, &batch).await {
                OTLP_DROPPED.inc_by(batch.len() as u64);
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(%url, %reason, spans = batch.len(), "OTLP export failed; spans dropped");
                }
            }
            if !full {
                break;
            }
        }
    }
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    batch: &[Arc<SpanRecord>],
) -> Result<(), String> {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(encode(batch).to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the collector answered {status}"))
    }
}

/// The OTLP/JSON `ExportTraceServiceRequest` for a batch: one resource per service.
pub fn encode(batch: &[Arc<SpanRecord>]) -> Value {
    let mut services: Vec<(&str, Vec<Value>)> = Vec::new();
    for span in batch {
        let encoded = encode_span(span);
        match services.iter_mut().find(|(s, _)| *s == &*span.service) {
            Some((_, spans)) => spans.push(encoded),
            None => services.push((&span.service, vec![encoded])),
        }
    }
    let resource_spans: Vec<Value> = services
        .into_iter()
        .map(|(service, spans)| {
            json!({
                "resource": {"attributes": [attribute("service.name", service)]},
                "scopeSpans": [{
                    "scope": {"name": "daarion", "version": env!("CARGO_PKG_VERSION")},
                    "spans": spans,
                }],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

fn encode_span(span: &SpanRecord) -> Value {
    let end = span.start_unix_nanos.saturating_add(span.duration_nanos);
    let mut out = json!({
        "traceId": hex(&span.trace_id),
        "spanId": hex(&span.span_id),
        "name": span.name,
        "kind": kind(span.name),
        // int64 and fixed64 are strings in the protobuf JSON mapping.
        "startTimeUnixNano": span.start_unix_nanos.to_string(),
        "endTimeUnixNano": end.to_string(),
        "attributes": span.fields.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
    });
    if let Some(parent) = &span.parent_id {
        out["parentSpanId"] = Value::String(hex(parent));
    }
    let failed = span
        .fields
        .iter()
        .any(|(k, v)| *k == "status" && v.parse::<u16>().is_ok_and(|s| s >= 500));
    if failed {
        out["status"] = json!({"code": 2});
    }
    out
}

/// SpanKind: the HTTP request span serves, the bus message span consumes, an outgoing call is
/// a client; everything opened inside them is internal.
fn kind(name: &str) -> u8 {
    match name {
        "request" => 2,
        "call" => 3,
        "message" => 5,
        _ => 1,
    }
}

fn attribute(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for (given, want) in [
            ("http://tempo:4318", Some("http://tempo:4318/v1/traces")),
            ("http://tempo:4318/", Some("http://tempo:4318/v1/traces")),
            ("https://c/v1/traces", Some("https://c/v1/traces")),
            ("tempo:4318", None),
            ("", None),
        ] {
            assert_eq!(traces_url(given).ok().as_deref(), want, "{given}");
        }
    }
}

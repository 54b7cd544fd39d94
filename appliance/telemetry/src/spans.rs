//! The span recorder: every closed span of a trace, and the log lines inside it, kept in bounded
//! in-memory rings so that `/internal/traces/{trace_id}` can answer "what did this process do for
//! that trace" without any storage or per-span I/O.
//!
//! A span is recorded when it carries a `trace_id` field (the HTTP `request` span, the bus
//! `message` span) or when its parent is recorded (anything a handler opens inside them). Its
//! parent is the `parent_id` field when the span continues a remote caller, else the recorded
//! span it was opened in. A span with `untraced = true` (health probes, the trace route itself)
//! is left out, with everything inside it.
//!
//! The rings are bounded by count and by bytes; the oldest entries go first. Spans live only as
//! long as the ring holds them and the process runs.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Fields kept per span beyond the ids (route, status, consumer, subject, model, ...).
const MAX_FIELDS: usize = 12;
/// Longest kept span field value, in bytes.
const MAX_FIELD_BYTES: usize = 256;
/// Longest kept log line (message and fields together), in bytes.
pub const MAX_EVENT_BYTES: usize = 2048;

/// How much one process keeps.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub spans: usize,
    pub span_bytes: usize,
    pub events: usize,
    pub event_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            spans: 20_000,
            span_bytes: 8 << 20,
            events: 20_000,
            event_bytes: 16 << 20,
        }
    }
}

/// One closed span.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub service: Arc<str>,
    pub name: &'static str,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_id: Option<[u8; 8]>,
    pub start_unix_nanos: u64,
    pub duration_nanos: u64,
    pub fields: Vec<(&'static str, String)>,
}

/// One log line emitted inside a recorded span.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub unix_nanos: u64,
    pub level: &'static str,
    pub target: &'static str,
    /// The message and then ` key=value` for each field, cut at [`MAX_EVENT_BYTES`].
    pub text: String,
}

/// What `/internal/traces/{trace_id}` answers: one process's part of a trace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceDump {
    pub service: String,
    pub spans: Vec<SpanView>,
    pub events: Vec<EventView>,
}

/// A span on the wire: ids in lowercase hex, times in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanView {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// The span this one ran in (here or in the calling service); `None` for a trace's root.
    pub parent_id: Option<String>,
    pub start_unix_nanos: u64,
    pub duration_nanos: u64,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// A log line on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    pub span_id: String,
    pub unix_nanos: u64,
    pub level: String,
    pub target: String,
    pub text: String,
}

impl SpanRecord {
    pub fn view(&self) -> SpanView {
        SpanView {
            service: self.service.to_string(),
            name: self.name.to_owned(),
            trace_id: hex(&self.trace_id),
            span_id: hex(&self.span_id),
            parent_id: self.parent_id.as_ref().map(|p| hex(p)),
            start_unix_nanos: self.start_unix_nanos,
            duration_nanos: self.duration_nanos,
            fields: self
                .fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
                .collect(),
        }
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .fields
                .iter()
                .map(|(_, v)| v.capacity() + 24)
                .sum::<usize>()
    }
}

impl EventRecord {
    pub fn view(&self) -> EventView {
        EventView {
            span_id: hex(&self.span_id),
            unix_nanos: self.unix_nanos,
            level: self.level.to_owned(),
            target: self.target.to_owned(),
            text: self.text.clone(),
        }
    }

    fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.text.capacity()
    }
}

/// A FIFO bounded by entries and by bytes.
struct Ring<T> {
    inner: Mutex<RingInner<T>>,
    max_items: usize,
    max_bytes: usize,
}

struct RingInner<T> {
    items: VecDeque<(Arc<T>, usize)>,
    bytes: usize,
}

impl<T> Ring<T> {
    fn new(max_items: usize, max_bytes: usize) -> Self {
        Ring {
            inner: Mutex::new(RingInner {
                items: VecDeque::new(),
                bytes: 0,
            }),
            max_items: max_items.max(1),
            max_bytes,
        }
    }

    fn push(&self, item: Arc<T>, bytes: usize) {
        // Evicted entries are freed after the lock is released, so writers wait only for the
        // queue operations themselves.
        let mut evicted = Vec::new();
        {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.bytes += bytes;
            inner.items.push_back((item, bytes));
            while inner.items.len() > self.max_items
                || (inner.bytes > self.max_bytes && inner.items.len() > 1)
            {
                let Some((old, size)) = inner.items.pop_front() else {
                    break;
                };
                inner.bytes -= size;
                evicted.push(old);
            }
        }
        drop(evicted);
    }

    fn select(&self, keep: impl Fn(&T) -> bool) -> Vec<Arc<T>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .items
            .iter()
            .filter(|(t, _)| keep(t))
            .map(|(t, _)| t.clone())
            .collect()
    }

    fn len_and_bytes(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (inner.items.len(), inner.bytes)
    }
}

/// Where closed spans go besides the ring (the OTLP exporter's queue).
pub(crate) trait SpanSink: Send + Sync {
    fn offer(&self, span: &Arc<SpanRecord>);
}

/// The rings of one process, and the optional sink spans are also handed to.
pub struct Recorder {
    spans: Ring<SpanRecord>,
    events: Ring<EventRecord>,
    service: OnceLock<Arc<str>>,
    sink: OnceLock<Box<dyn SpanSink>>,
}

static GLOBAL: LazyLock<Arc<Recorder>> =
    LazyLock::new(|| Arc::new(Recorder::new(Limits::default())));

impl Recorder {
    pub fn new(limits: Limits) -> Self {
        Recorder {
            spans: Ring::new(limits.spans, limits.span_bytes),
            events: Ring::new(limits.events, limits.event_bytes),
            service: OnceLock::new(),
            sink: OnceLock::new(),
        }
    }

    /// The process's recorder: the one `init_logging` installs and the trace route reads.
    pub fn global() -> &'static Arc<Recorder> {
        &GLOBAL
    }

    /// Names the process: the service of spans that do not carry a `service` field.
    pub fn set_service(&self, service: &str) {
        let _ = self.service.set(Arc::from(service));
    }

    pub fn service(&self) -> Arc<str> {
        self.service
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::from("unknown"))
    }

    pub(crate) fn set_sink(&self, sink: Box<dyn SpanSink>) -> bool {
        self.sink.set(sink).is_ok()
    }

    /// A layer that records into this recorder.
    pub fn layer(self: &Arc<Self>) -> SpanLayer {
        SpanLayer {
            recorder: self.clone(),
        }
    }

    /// Everything this process holds of one trace, oldest first.
    pub fn trace(&self, trace_id: &[u8; 16]) -> TraceDump {
        let mut spans: Vec<SpanView> = self
            .spans
            .select(|s| s.trace_id == *trace_id)
            .iter()
            .map(|s| s.view())
            .collect();
        spans.sort_by_key(|s| s.start_unix_nanos);
        let events = self
            .events
            .select(|e| e.trace_id == *trace_id)
            .iter()
            .map(|e| e.view())
            .collect();
        TraceDump {
            service: self.service().to_string(),
            spans,
            events,
        }
    }

    /// (spans, bytes, events, bytes) held now.
    pub fn usage(&self) -> (usize, usize, usize, usize) {
        let (s, sb) = self.spans.len_and_bytes();
        let (e, eb) = self.events.len_and_bytes();
        (s, sb, e, eb)
    }

    fn close(&self, span: SpanRecord) {
        let bytes = span.bytes();
        let span = Arc::new(span);
        if let Some(sink) = self.sink.get() {
            sink.offer(&span);
        }
        self.spans.push(span, bytes);
    }

    fn log(&self, event: EventRecord) {
        let bytes = event.bytes();
        self.events.push(Arc::new(event), bytes);
    }
}

/// Parses a trace id as it appears in logs and `traceparent`: 32 lowercase hex digits, not all
/// zero.
pub fn parse_trace_id(s: &str) -> Option<[u8; 16]> {
    decode::<16>(s).filter(|t| *t != [0; 16])
}

/// The tracing layer. Install it once per process (`init_logging` does).
pub struct SpanLayer {
    recorder: Arc<Recorder>,
}

/// What a recorded span keeps while it is open.
struct Recording {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_id: Option<[u8; 8]>,
    service: Arc<str>,
    start_unix_nanos: u64,
    started: Instant,
    fields: Vec<(&'static str, String)>,
}

/// The ids and bounded fields of a span, read from its attributes.
#[derive(Default)]
struct SpanFields {
    trace_id: Option<[u8; 16]>,
    span_id: Option<[u8; 8]>,
    parent_id: Option<[u8; 8]>,
    service: Option<Arc<str>>,
    untraced: bool,
    fields: Vec<(&'static str, String)>,
}

impl SpanFields {
    fn put(&mut self, field: &Field, value: &str) {
        match field.name() {
            "trace_id" => self.trace_id = parse_trace_id(value),
            "span_id" => self.span_id = decode::<8>(value).filter(|s| *s != [0; 8]),
            "parent_id" => self.parent_id = decode::<8>(value).filter(|s| *s != [0; 8]),
            "service" => self.service = Some(Arc::from(value)),
            name => put_field(&mut self.fields, name, value),
        }
    }
}

fn put_field(fields: &mut Vec<(&'static str, String)>, name: &'static str, value: &str) {
    let value = truncate(value, MAX_FIELD_BYTES);
    if let Some(slot) = fields.iter_mut().find(|(k, _)| *k == name) {
        value.clone_into(&mut slot.1);
    } else if fields.len() < MAX_FIELDS {
        fields.push((name, value.to_owned()));
    }
}

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "untraced" {
            self.untraced = value;
        } else {
            self.put(field, if value { "true" } else { "false" });
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field, &s);
    }
}

/// Field updates on an open recorded span (`span.record("status", 200)`).
struct Updates<'a>(&'a mut Vec<(&'static str, String)>);

impl Visit for Updates<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !matches!(
            field.name(),
            "trace_id" | "span_id" | "parent_id" | "service"
        ) {
            put_field(self.0, field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.record_str(field, &s);
    }
}

/// An event's message and fields as one bounded line.
struct Line(String);

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.0.len() >= MAX_EVENT_BYTES {
            return;
        }
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            self.0.push_str(value);
            self.0.push_str(&rest);
        } else {
            let _ = write!(self.0, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.0.len() >= MAX_EVENT_BYTES {
            return;
        }
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            self.0.push_str(&rest);
        } else {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }
}

impl<S> Layer<S> for SpanLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let parent = span.parent().and_then(|p| {
            p.extensions()
                .get::<Recording>()
                .map(|r| (r.trace_id, r.span_id, r.service.clone()))
        });
        // The common case outside any trace costs two lookups and no allocation.
        if parent.is_none() && attrs.metadata().fields().field("trace_id").is_none() {
            return;
        }
        let mut found = SpanFields::default();
        attrs.record(&mut found);
        if found.untraced {
            return;
        }
        let (trace_id, parent_id, inherited) = match (found.trace_id, &parent) {
            // Its own trace id: a parent in this process links only within the same trace.
            (Some(t), Some((pt, ps, service))) if t == *pt => {
                (t, found.parent_id.or(Some(*ps)), Some(service.clone()))
            }
            (Some(t), _) => (t, found.parent_id, None),
            (None, Some((pt, ps, service))) => (*pt, Some(*ps), Some(service.clone())),
            (None, None) => return,
        };
        let span_id = found.span_id.unwrap_or_else(random_span_id);
        let service = found
            .service
            .or(inherited)
            .unwrap_or_else(|| self.recorder.service());
        let recording = Recording {
            trace_id,
            span_id,
            parent_id,
            service,
            start_unix_nanos: unix_nanos(SystemTime::now()),
            started: Instant::now(),
            fields: found.fields,
        };
        span.extensions_mut().insert(recording);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(recording) = span.extensions_mut().get_mut::<Recording>()
        {
            values.record(&mut Updates(&mut recording.fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let ids = span
            .extensions()
            .get::<Recording>()
            .map(|r| (r.trace_id, r.span_id));
        let Some((trace_id, span_id)) = ids else {
            return;
        };
        let mut line = Line(String::new());
        event.record(&mut line);
        let meta = event.metadata();
        self.recorder.log(EventRecord {
            trace_id,
            span_id,
            unix_nanos: unix_nanos(SystemTime::now()),
            level: meta.level().as_str(),
            target: meta.target(),
            text: truncate(&line.0, MAX_EVENT_BYTES).to_owned(),
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(recording) = span.extensions_mut().remove::<Recording>() else {
            return;
        };
        self.recorder.close(SpanRecord {
            service: recording.service,
            name: span.name(),
            trace_id: recording.trace_id,
            span_id: recording.span_id,
            parent_id: recording.parent_id,
            start_unix_nanos: recording.start_unix_nanos,
            duration_nanos: u64::try_from(recording.started.elapsed().as_nanos())
                .unwrap_or(u64::MAX),
            fields: recording.fields,
        });
    }
}

fn random_span_id() -> [u8; 8] {
    let mut id = [0u8; 8];
    let mut rng = rand::rng();
    while id == [0; 8] {
        rng.fill_bytes(&mut id);
    }
    id
}

pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The longest prefix of `s` within `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn with_recorder(limits: Limits, f: impl FnOnce()) -> Arc<Recorder> {
        let recorder = Arc::new(Recorder::new(limits));
        recorder.set_service("unit");
        let subscriber = tracing_subscriber::registry().with(recorder.layer());
        tracing::subscriber::with_default(subscriber, f);
        recorder
    }

    fn trace() -> [u8; 16] {
        parse_trace_id(TRACE).unwrap()
    }

    #[test]
    fn children_inherit_the_trace_and_link_to_their_parent() {
        let recorder = with_recorder(Limits::default(), || {
            let outer = tracing::info_span!(
                "request",
                trace_id = TRACE,
                span_id = "00f067aa0ba902b7",
                parent_id = "1111111111111111",
                route = "/x",
                status = tracing::field::Empty,
            );
            outer.in_scope(|| {
                tracing::info_span!("inner", model = "m").in_scope(|| {
                    tracing::info!(n = 3, "inside");
                });
            });
            outer.record("status", 200);
            tracing::info_span!("unrelated").in_scope(|| tracing::info!("outside"));
        });
        let dump = recorder.trace(&trace());
        assert_eq!(dump.service, "unit");
        let names: Vec<_> = dump.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["request", "inner"]);
        let (request, inner) = (&dump.spans[0], &dump.spans[1]);
        assert_eq!(request.parent_id.as_deref(), Some("1111111111111111"));
        assert_eq!(inner.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(request.fields["status"], "200");
        assert_eq!(request.fields["route"], "/x");
        assert_eq!(inner.fields["model"], "m");
        assert!(!request.fields.contains_key("trace_id"));
        assert_eq!(dump.events.len(), 1);
        assert_eq!(dump.events[0].text, "inside n=3");
        assert_eq!(dump.events[0].span_id, inner.span_id);
        assert_eq!(
            recorder.usage().0,
            2,
            "the span outside any trace is not kept"
        );
    }

    #[test]
    fn untraced_spans_are_left_out_with_their_children() {
        let recorder = with_recorder(Limits::default(), || {
            tracing::info_span!("request", trace_id = TRACE, untraced = true).in_scope(|| {
                tracing::info_span!("inner").in_scope(|| tracing::info!("probe"));
            });
        });
        assert_eq!(recorder.usage(), (0, 0, 0, 0));
    }

    #[test]
    fn rings_hold_their_bounds() {
        let cases = [
            // (limits, spans opened, events per span, spans kept at most, events kept at most)
            (
                Limits {
                    spans: 10,
                    span_bytes: 1 << 20,
                    events: 15,
                    event_bytes: 1 << 20,
                },
                100,
                2,
                10,
                15,
            ),
            (
                Limits {
                    spans: 1000,
                    span_bytes: 4096,
                    events: 1000,
                    event_bytes: 8192,
                },
                500,
                1,
                4096 / std::mem::size_of::<SpanRecord>(),
                8192 / (std::mem::size_of::<EventRecord>() + MAX_EVENT_BYTES / 2),
            ),
        ];
        for (limits, opened, per_span, max_spans, max_events) in cases {
            let recorder = with_recorder(limits, || {
                for i in 0..opened {
                    tracing::info_span!("request", trace_id = TRACE, i).in_scope(|| {
                        for _ in 0..per_span {
                            tracing::info!(big = "x".repeat(1000), "line");
                        }
                    });
                }
            });
            let (spans, span_bytes, events, event_bytes) = recorder.usage();
            assert!(spans > 0 && spans <= max_spans, "{spans} spans kept");
            assert!(
                events > 0 && events <= max_events.max(1),
                "{events} events kept"
            );
            assert!(span_bytes <= limits.span_bytes);
            assert!(event_bytes <= limits.event_bytes);
            // The newest survive.
            let dump = recorder.trace(&trace());
            let last = dump.spans.last().unwrap();
            assert_eq!(last.fields["i"], (opened - 1).to_string());
        }
    }

    #[test]
    fn log_lines_are_cut_at_the_bound() {
        let recorder = with_recorder(Limits::default(), || {
            tracing::info_span!("request", trace_id = TRACE).in_scope(|| {
                tracing::warn!(body = "é".repeat(5000), "long");
            });
        });
        let dump = recorder.trace(&trace());
        let text = &dump.events[0].text;
        assert!(text.len() <= MAX_EVENT_BYTES && text.len() > MAX_EVENT_BYTES - 4);
        assert!(text.starts_with("long body="));
        assert_eq!(dump.events[0].level, "WARN");
    }

    #[test]
    fn trace_ids_are_checked() {
        assert!(parse_trace_id(TRACE).is_some());
        for bad in [
            "",
            "xyz",
            &"0".repeat(32),
            &TRACE.to_uppercase(),
            &TRACE[1..],
        ] {
            assert!(parse_trace_id(bad).is_none(), "{bad:?}");
        }
    }
}

//! A tracing layer that writes to the systemd journal through `systemd-journal-logger`.
//!
//! systemd-journal-logger speaks the `log` crate's API, so each tracing event becomes one
//! `log::Record` whose key-values are the event's fields plus those of every enclosing span
//! (innermost wins). `trace_id` therefore lands as a `TRACE_ID=` journal field, which is what
//! makes `journalctl TRACE_ID=…` follow one request across services.

use std::fmt::Write as _;

use systemd_journal_logger::JournalLog;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

pub(crate) struct JournaldLayer {
    journal: JournalLog,
}

impl JournaldLayer {
    pub(crate) fn new(service: &str) -> std::io::Result<Self> {
        Ok(JournaldLayer {
            journal: JournalLog::new()?
                .with_syslog_identifier(format!("daarion-{service}"))
                .with_extra_fields([("DAARION_SERVICE", service)]),
        })
    }
}

/// Fields recorded on a span, kept in its extensions for the events inside it.
#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.put(field, s);
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else if let Some(slot) = self.pairs.iter_mut().find(|(k, _)| k == field.name()) {
            slot.1 = value;
        } else {
            self.pairs.push((field.name().to_owned(), value));
        }
    }
}

impl<S> Layer<S> for JournaldLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // Outer spans first so inner ones overwrite: the closest trace_id wins.
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    for (k, v) in &span_fields.pairs {
                        match pairs.iter_mut().find(|(pk, _)| pk == k) {
                            Some(slot) => slot.1 = v.clone(),
                            None => pairs.push((k.clone(), v.clone())),
                        }
                    }
                }
            }
        }
        pairs.extend(fields.pairs);
        let kvs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => log::Level::Error,
            Level::WARN => log::Level::Warn,
            Level::INFO => log::Level::Info,
            Level::DEBUG => log::Level::Debug,
            Level::TRACE => log::Level::Trace,
        };
        // One expression: `format_args!` borrows temporaries that live only until its end.
        let sent = self.journal.journal_send(
            &log::Record::builder()
                .args(format_args!("{}", fields.message))
                .level(level)
                .target(meta.target())
                .module_path(meta.module_path())
                .file(meta.file())
                .line(meta.line())
                .key_values(&kvs)
                .build(),
        );
        // A journal that went away must not take the service with it; stderr still has systemd.
        if let Err(e) = sent {
            eprintln!("journald write failed: {e}");
        }
    }
}

//! The one place where a DAARION process sets up its logging.

use std::io::IsTerminal;

use daarion_config::{LogFormat, TelemetryConfig};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::journald::JournaldLayer;
use crate::otlp::{ExportOptions, OtlpError, start_otlp};
use crate::spans::Recorder;

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("log filter `{0}` is invalid: {1}")]
    Filter(String, String),
    #[error("cannot open the systemd journal: {0}")]
    Journal(std::io::Error),
    #[error("logging was already initialised in this process")]
    AlreadyInitialised,
    #[error(transparent)]
    Otlp(#[from] OtlpError),
}

/// Installs the global subscriber: text on stderr, JSON on stderr, or the systemd journal.
///
/// Every span of a trace is also kept in the process's [`Recorder`] (for the admin UI's trace
/// view), and sent to `telemetry.otlp_endpoint` when one is set.
///
/// `auto` picks the journal when systemd connected our stderr to it (`JOURNAL_STREAM`), because
/// structured journal fields (TRACE_ID, DAARION_SERVICE) are then queryable with journalctl;
/// otherwise human-readable text. `RUST_LOG`, when set, replaces the configured level.
pub fn init_logging(config: &TelemetryConfig, service: &str) -> Result<LogFormat, LoggingError> {
    let directive = std::env::var("RUST_LOG").unwrap_or_else(|_| config.log_level.clone());
    let filter = EnvFilter::try_new(&directive)
        .map_err(|e| LoggingError::Filter(directive.clone(), e.to_string()))?;

    let format = match config.log_format {
        LogFormat::Auto
            if std::env::var_os("JOURNAL_STREAM").is_some()
                && systemd_journal_logger::connected_to_journal() =>
        {
            LogFormat::Journald
        }
        LogFormat::Auto => LogFormat::Text,
        other => other,
    };

    let recorder = Recorder::global();
    recorder.set_service(service);
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(recorder.layer());
    let result = match format {
        LogFormat::Journald => registry
            .with(JournaldLayer::new(service).map_err(LoggingError::Journal)?)
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text | LogFormat::Auto => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    result.map_err(|_| LoggingError::AlreadyInitialised)?;
    if !config.otlp_endpoint.trim().is_empty() {
        start_otlp(recorder, &config.otlp_endpoint, ExportOptions::default())?;
    }
    Ok(format)
}

//! Ingest metrics. Labels are a fixed set of outcomes.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, register_int_counter, register_int_counter_vec};

pub(crate) static UPLOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_ingest_uploads_total",
        "Uploads by outcome: created, existing, too_large, unsupported, refused, failed",
        &["outcome"]
    )
    .expect("metric registered once")
});

pub(crate) static BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "daarion_ingest_bytes_total",
        "Bytes of files accepted (the same content counted each time it is sent)"
    )
    .expect("metric registered once")
});

pub(crate) fn outcome(result: Result<bool, &crate::IngestError>) -> &'static str {
    use crate::IngestError as E;
    match result {
        Ok(true) => "created",
        Ok(false) => "existing",
        Err(E::TooLarge { .. }) => "too_large",
        Err(E::Unsupported(_)) => "unsupported",
        Err(e) if e.status_code().0.is_client_error() => "refused",
        Err(_) => "failed",
    }
}

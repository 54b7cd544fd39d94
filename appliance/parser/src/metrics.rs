//! Parser metrics; `format` is a `daarion_formats::Format`, `outcome` a fixed set.

use std::sync::LazyLock;

use prometheus::{
    Histogram, IntCounterVec, IntGauge, register_histogram, register_int_counter_vec,
    register_int_gauge,
};

pub(crate) static ATTACHMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_parser_attachments_total",
        "Attachments handled by outcome (parsed, failed, skipped, retried) and format",
        &["outcome", "format"]
    )
    .expect("metric registered once")
});

pub(crate) static PAGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_parser_pages_total",
        "Pages (sheets, slides, minutes) read, by format",
        &["format"]
    )
    .expect("metric registered once")
});

pub(crate) static PAGE_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "daarion_parser_page_seconds",
        "Seconds per page of a parsed attachment (its whole time over its pages)",
        vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]
    )
    .expect("metric registered once")
});

pub(crate) static IN_FLIGHT: LazyLock<IntGauge> = LazyLock::new(|| {
    register_int_gauge!(
        "daarion_parser_in_flight",
        "Attachments being read right now"
    )
    .expect("metric registered once")
});

pub(crate) static VISION_SKIPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "daarion_parser_vision_skipped_total",
        "Images read by OCR only: no vision model configured (unconfigured) or it refused (refused)",
        &["why"]
    )
    .expect("metric registered once")
});

/// Touches every metric so `/metrics` lists them before the first attachment.
pub(crate) fn register() {
    LazyLock::force(&ATTACHMENTS);
    LazyLock::force(&PAGES);
    LazyLock::force(&PAGE_SECONDS);
    LazyLock::force(&IN_FLIGHT);
    LazyLock::force(&VISION_SKIPPED);
}

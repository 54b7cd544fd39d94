//! The `daarion` binary end to end: CLI, supervisor, systemd unit. One test binary; each test
//! gets its own appliance (ports, data dir, PostgreSQL schema, bundled NATS).

mod alerting;
mod attachments;
mod cli;
mod crews;
mod helpers;
mod monitoring;
mod readme;
mod systemd;
mod up;
mod web_ui;

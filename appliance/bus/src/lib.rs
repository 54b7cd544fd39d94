//! The appliance's event bus on NATS JetStream.
//!
//! - [`topology`]: the five streams of the seed (plus a dead-letter stream) and the four durable
//!   consumers, created or updated idempotently at start.
//! - [`Envelope`]: the typed, versioned JSON wrapper every event travels in.
//! - [`Bus::publish`]: waits for the JetStream ack and sets `Nats-Msg-Id`, so a retried publish
//!   is stored once; the current trace travels in the `traceparent` header.
//! - [`consume`]: runs a handler per message and acks only after it succeeded; transient
//!   failures are retried with backoff, poison messages are copied to the dead-letter stream
//!   with their reason and then terminated.
//! - [`stats::watch`]: lag, age of the oldest unacknowledged message, stream sizes and dead
//!   letters polled from the server into gauges; [`ConsumersCheck`]: `/ready` fails while a
//!   consumer of the service is not running.

pub mod auth;
mod bus;
mod consumer;
mod envelope;
mod error;
pub mod events;
mod metrics;
mod naming;
mod report;
mod running;
pub mod stats;
pub mod testing;
pub mod topology;

pub use bus::{Bus, BusCheck, PublishOutcome};
pub use consumer::{HandlerError, consume, consume_keyed, join_consumer};
pub use envelope::{DecodeError, Delivery, Envelope, decode};
pub use error::BusError;
pub use events::Event;
pub use naming::Naming;
pub use report::{ConsumerReport, StreamReport};
pub use running::ConsumersCheck;
pub use topology::{ConsumerSpec, Ensured, TopologyReport};

/// Headers set on dead-lettered copies, so an operator sees why without decoding anything.
pub mod dead_letter {
    pub const REASON: &str = "Daarion-Dead-Reason";
    pub const CONSUMER: &str = "Daarion-Dead-Consumer";
    pub const SUBJECT: &str = "Daarion-Original-Subject";
    pub const STREAM_SEQUENCE: &str = "Daarion-Original-Sequence";
    pub const DELIVERIES: &str = "Daarion-Deliveries";
}

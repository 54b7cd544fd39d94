//! The streams and durable consumers of the seed architecture, and the idempotent start-up step
//! that makes the server match them.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, Context};
use daarion_config::BusConfig;

use crate::{BusError, Naming};

/// One stream: its base name and the event types it stores. Each type is stored both bare
/// (`message.received`) and qualified (`message.received.telegram`), so producers may add a
/// routing token that consumers filter on (`attachment.created.>`).
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    pub name: &'static str,
    pub events: &'static [&'static str],
    pub wildcards: &'static [&'static str],
}

pub const MESSAGES: StreamSpec = StreamSpec {
    name: "MESSAGES",
    events: &["message.received", "message.processed", "message.sent"],
    wildcards: &[],
};
pub const ATTACHMENTS: StreamSpec = StreamSpec {
    name: "ATTACHMENTS",
    events: &[
        "attachment.created",
        "attachment.parsed",
        "attachment.indexed",
        "attachment.failed",
    ],
    wildcards: &[],
};
pub const AGENT_RUNS: StreamSpec = StreamSpec {
    name: "AGENT_RUNS",
    events: &[
        "agent.run.requested",
        "agent.run.progress",
        "agent.run.completed",
        "agent.run.failed",
    ],
    wildcards: &[],
};
pub const MEMORY: StreamSpec = StreamSpec {
    name: "MEMORY",
    events: &["memory.indexed"],
    wildcards: &["memory.store.>"],
};
pub const AUDIT: StreamSpec = StreamSpec {
    name: "AUDIT",
    events: &["ops.health", "ops.alert"],
    wildcards: &["audit.>"],
};
/// Not in the seed: where poison messages go, one subject per consumer.
pub const DEAD_LETTERS: StreamSpec = StreamSpec {
    name: "DEAD_LETTERS",
    events: &[],
    wildcards: &["deadletter.>"],
};

pub const STREAMS: [StreamSpec; 6] = [
    MESSAGES,
    ATTACHMENTS,
    AGENT_RUNS,
    MEMORY,
    AUDIT,
    DEAD_LETTERS,
];

/// A durable pull consumer: its name, its stream and the subjects it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerSpec {
    pub durable: &'static str,
    pub stream: &'static str,
    pub filter: &'static str,
}

pub const PARSER_PIPELINE: ConsumerSpec = ConsumerSpec {
    durable: "parser-pipeline",
    stream: "ATTACHMENTS",
    filter: "attachment.created.>",
};
pub const CREWAI_WORKER: ConsumerSpec = ConsumerSpec {
    durable: "crewai-worker",
    stream: "AGENT_RUNS",
    filter: "agent.run.requested",
};
pub const MEMORY_INDEXER: ConsumerSpec = ConsumerSpec {
    durable: "memory-indexer",
    stream: "MEMORY",
    filter: "memory.store.>",
};
pub const AUDIT_LOGGER: ConsumerSpec = ConsumerSpec {
    durable: "audit-logger",
    stream: "AUDIT",
    filter: "audit.>",
};

/// The gateway's durable queue of Telegram updates, stored by the webhook before it answers.
pub const TELEGRAM_UPDATES: ConsumerSpec = ConsumerSpec {
    durable: "telegram-updates",
    stream: "MESSAGES",
    filter: "message.received.telegram",
};

/// Memory's record of what each answered turn used.
pub const USAGE_RECORDER: ConsumerSpec = ConsumerSpec {
    durable: "usage-recorder",
    stream: "MESSAGES",
    filter: "message.processed",
};

/// The gateway tells a Telegram user their file is read (`attachment.indexed`, published bare
/// by memory's outbox, so the filter is the bare subject)…
pub const GATEWAY_ATTACHMENT_INDEXED: ConsumerSpec = ConsumerSpec {
    durable: "gateway-attachment-indexed",
    stream: "ATTACHMENTS",
    filter: "attachment.indexed",
};

/// …or why it could not be read (`attachment.failed`).
pub const GATEWAY_ATTACHMENT_FAILED: ConsumerSpec = ConsumerSpec {
    durable: "gateway-attachment-failed",
    stream: "ATTACHMENTS",
    filter: "attachment.failed",
};

/// The gateway tells a Telegram user how their crew run goes and what it found (progress,
/// completed and failed; it skips `requested`).
pub const GATEWAY_AGENT_RUNS: ConsumerSpec = ConsumerSpec {
    durable: "gateway-agent-runs",
    stream: "AGENT_RUNS",
    filter: "agent.run.>",
};

/// Memory's audit log keeps the supervisor's unit changes and the alerts that fired.
pub const OPS_LOGGER: ConsumerSpec = ConsumerSpec {
    durable: "ops-logger",
    stream: "AUDIT",
    filter: "ops.>",
};

pub const CONSUMERS: [ConsumerSpec; 10] = [
    PARSER_PIPELINE,
    CREWAI_WORKER,
    MEMORY_INDEXER,
    AUDIT_LOGGER,
    TELEGRAM_UPDATES,
    USAGE_RECORDER,
    GATEWAY_ATTACHMENT_INDEXED,
    GATEWAY_ATTACHMENT_FAILED,
    GATEWAY_AGENT_RUNS,
    OPS_LOGGER,
];

/// What [`ensure`] did to one stream or consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, Default)]
pub struct TopologyReport {
    pub streams: Vec<(String, Ensured)>,
    pub consumers: Vec<(String, Ensured)>,
}

impl TopologyReport {
    pub fn changed(&self) -> bool {
        self.streams
            .iter()
            .chain(&self.consumers)
            .any(|(_, e)| *e != Ensured::Unchanged)
    }
}

impl StreamSpec {
    pub fn subjects(&self, naming: &Naming) -> Vec<String> {
        let mut subjects: Vec<String> = self
            .events
            .iter()
            .flat_map(|e| [naming.subject(e), naming.subject(&format!("{e}.>"))])
            .chain(self.wildcards.iter().map(|w| naming.subject(w)))
            .collect();
        subjects.sort();
        subjects
    }

    fn config(&self, naming: &Naming, bus: &BusConfig) -> StreamConfig {
        let day = 24 * 3600;
        // Dead letters wait for a person, so they outlive ordinary events.
        let max_age_days = if self.name == DEAD_LETTERS.name {
            bus.max_age_days.max(30)
        } else {
            bus.max_age_days
        };
        StreamConfig {
            name: naming.stream(self.name),
            subjects: self.subjects(naming),
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            max_age: Duration::from_secs(max_age_days * day),
            duplicate_window: Duration::from_secs(bus.duplicate_window_secs),
            num_replicas: 1,
            ..Default::default()
        }
    }
}

impl ConsumerSpec {
    fn config(&self, naming: &Naming, bus: &BusConfig) -> pull::Config {
        pull::Config {
            durable_name: Some(self.durable.to_owned()),
            filter_subject: naming.subject(self.filter),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(bus.ack_wait_secs),
            deliver_policy: DeliverPolicy::All,
            // Unlimited on the server: the consumer helper counts deliveries and dead-letters
            // at `bus.max_deliveries`, so a message is never silently parked by the server.
            max_deliver: -1,
            ..Default::default()
        }
    }
}

fn stream_matches(have: &StreamConfig, want: &StreamConfig) -> bool {
    let mut have_subjects = have.subjects.clone();
    have_subjects.sort();
    have_subjects == want.subjects
        && have.retention == want.retention
        && have.storage == want.storage
        && have.max_age == want.max_age
        && have.duplicate_window == want.duplicate_window
}

fn consumer_matches(have: &jetstream::consumer::Config, want: &pull::Config) -> bool {
    have.filter_subject == want.filter_subject
        && have.ack_policy == want.ack_policy
        && have.ack_wait == want.ack_wait
        && have.max_deliver == want.max_deliver
        && have.deliver_policy == want.deliver_policy
}

/// Makes the server's streams and consumers match the topology; safe to run on every start.
pub async fn ensure(
    js: &Context,
    naming: &Naming,
    bus: &BusConfig,
) -> Result<TopologyReport, BusError> {
    let mut report = TopologyReport::default();
    for spec in STREAMS {
        let want = spec.config(naming, bus);
        let stream_err = |message: String| BusError::Stream {
            stream: want.name.clone(),
            message,
        };
        let outcome = match js.get_stream(&want.name).await {
            Ok(mut stream) => {
                let info = stream.info().await.map_err(|e| stream_err(e.to_string()))?;
                if stream_matches(&info.config, &want) {
                    Ensured::Unchanged
                } else {
                    // Keep whatever else the operator tuned on the server; change only ours.
                    let mut updated = info.config.clone();
                    updated.subjects = want.subjects.clone();
                    updated.max_age = want.max_age;
                    updated.duplicate_window = want.duplicate_window;
                    js.update_stream(updated)
                        .await
                        .map_err(|e| stream_err(e.to_string()))?;
                    Ensured::Updated
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    jetstream::context::GetStreamErrorKind::JetStream(ref api)
                        if api.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
                ) =>
            {
                js.create_stream(want.clone())
                    .await
                    .map_err(|e| stream_err(e.to_string()))?;
                Ensured::Created
            }
            Err(e) => return Err(stream_err(e.to_string())),
        };
        if outcome != Ensured::Unchanged {
            tracing::info!(stream = %want.name, ?outcome, "stream ensured");
        }
        report.streams.push((want.name, outcome));
    }

    for spec in CONSUMERS {
        let want = spec.config(naming, bus);
        let consumer_err = |message: String| BusError::Consumer {
            consumer: spec.durable.to_owned(),
            message,
        };
        let stream = js
            .get_stream(naming.stream(spec.stream))
            .await
            .map_err(|e| consumer_err(e.to_string()))?;
        let existing = match stream.consumer_info(spec.durable).await {
            Ok(info) => Some(info),
            Err(e) if e.to_string().contains("consumer not found") => None,
            Err(e) => return Err(consumer_err(e.to_string())),
        };
        let outcome = match existing {
            Some(info) if consumer_matches(&info.config, &want) => Ensured::Unchanged,
            Some(_) => {
                // JetStream treats a create with an existing durable name as an update of the
                // editable fields.
                stream
                    .create_consumer(want.clone())
                    .await
                    .map_err(|e| consumer_err(e.to_string()))?;
                Ensured::Updated
            }
            None => {
                stream
                    .create_consumer(want.clone())
                    .await
                    .map_err(|e| consumer_err(e.to_string()))?;
                Ensured::Created
            }
        };
        if outcome != Ensured::Unchanged {
            tracing::info!(consumer = spec.durable, ?outcome, "consumer ensured");
        }
        report.consumers.push((spec.durable.to_owned(), outcome));
    }
    Ok(report)
}

/// Deletes every stream under `naming` (and so their consumers). For tests and `--purge`.
pub async fn remove_all(js: &Context, naming: &Naming) -> Result<(), BusError> {
    for spec in STREAMS {
        let name = naming.stream(spec.name);
        match js.delete_stream(&name).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("not found") => {}
            Err(e) => {
                return Err(BusError::Stream {
                    stream: name,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumers_filter_inside_their_streams() {
        let naming = Naming::new("x");
        for c in CONSUMERS {
            let stream = STREAMS.iter().find(|s| s.name == c.stream).unwrap();
            let subjects = stream.subjects(&naming);
            let filter = naming.subject(c.filter);
            let prefix = filter.trim_end_matches('>');
            // Covered: the same subject, one under the filter, or a wildcard over it.
            let covers = |s: &String| {
                *s == filter
                    || s.starts_with(prefix)
                    || s.strip_suffix('>').is_some_and(|w| filter.starts_with(w))
            };
            assert!(
                subjects.iter().any(covers),
                "{} filter {filter} not covered by {subjects:?}",
                c.durable
            );
        }
    }

    #[test]
    fn seed_subjects_are_present() {
        let n = Naming::new("");
        let all: Vec<String> = STREAMS.iter().flat_map(|s| s.subjects(&n)).collect();
        for s in [
            "message.received",
            "message.processed",
            "message.sent",
            "attachment.created",
            "attachment.parsed",
            "attachment.indexed",
            "attachment.failed",
            "agent.run.requested",
            "agent.run.progress",
            "agent.run.completed",
            "agent.run.failed",
            "memory.store.>",
            "memory.indexed",
            "audit.>",
            "ops.health",
            "ops.alert",
        ] {
            assert!(all.iter().any(|x| x == s), "{s} missing");
        }
    }
}

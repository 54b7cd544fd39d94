//! What the bus's metric tests share: reading a gauge from the process registry, consumers of
//! their own, and waiting with a deadline.

#![allow(dead_code)] // each test binary uses its part

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use daarion_bus::ConsumerSpec;
use daarion_bus::testing::TestBus;

/// A gauge's value for one label value (`None` for an unlabelled gauge), or `None` when it
/// has no such series.
pub fn gauge(name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    prometheus::gather()
        .iter()
        .filter(|family| family.name() == name)
        .flat_map(|family| family.get_metric().iter())
        .find(|metric| match label {
            None => metric.get_label().is_empty(),
            Some((key, value)) => metric
                .get_label()
                .iter()
                .any(|l| l.name() == key && l.value() == value),
        })
        .map(|metric| metric.get_gauge().get_value())
}

pub fn consumer_gauge(name: &str, consumer: &str) -> f64 {
    gauge(name, Some(("consumer", consumer))).unwrap_or(f64::NAN)
}

/// A durable consumer of its own (configured like the topology's), so that its gauges are
/// touched by this test alone while other tests run in the same process.
pub async fn own_consumer(t: &TestBus, stream: &'static str, filter: &'static str) -> ConsumerSpec {
    let durable: &'static str =
        format!("test-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]).leak();
    t.bus
        .jetstream()
        .get_stream(t.bus.naming().stream(stream))
        .await
        .unwrap()
        .create_consumer(pull::Config {
            durable_name: Some(durable.to_owned()),
            filter_subject: t.bus.naming().subject(filter),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(t.config.bus.ack_wait_secs),
            deliver_policy: DeliverPolicy::All,
            max_deliver: -1,
            ..Default::default()
        })
        .await
        .unwrap();
    ConsumerSpec {
        durable,
        stream,
        filter,
    }
}

/// Polls `cond` until `within` has passed.
pub async fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {within:?} waiting for {what}");
}

//! The polled bus gauges against the real JetStream server. Each test polls consumers of its
//! own (and only one test polls streams), so their gauges do not mix while tests run at once.

mod support;

use std::time::{Duration, Instant};

use daarion_bus::testing::TestBus;
use daarion_bus::topology::{AUDIT, MESSAGES, STREAMS};
use daarion_bus::{ConsumerSpec, Envelope, HandlerError, stats};
use serde_json::{Value, json};
use support::{consumer_gauge, gauge, own_consumer, wait_for};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const AGE: &str = "daarion_bus_consumer_oldest_unacked_age_seconds";
const PENDING: &str = "daarion_bus_consumer_pending";
const ACK_PENDING: &str = "daarion_bus_consumer_ack_pending";
const EVERY: Duration = Duration::from_millis(200);

/// Runs the poller for `consumers` (and `streams`) until the returned token is cancelled.
fn poll_in_background(
    t: &TestBus,
    consumers: Vec<ConsumerSpec>,
    streams: Vec<daarion_bus::topology::StreamSpec>,
) -> CancellationToken {
    let stop = CancellationToken::new();
    tokio::spawn(stats::watch(
        t.bus.clone(),
        consumers,
        streams,
        EVERY,
        stop.clone(),
    ));
    stop
}

async fn publish_audit(t: &TestBus, n: usize) {
    for i in 0..n {
        t.bus
            .publish(&Envelope::new("audit.action", "test", json!({ "n": i })))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_stalled_consumer_ages_until_it_acks_again() {
    let t = TestBus::new().await;
    let spec = own_consumer(&t, "AUDIT", "audit.>").await;
    let name = spec.durable;
    let stop = poll_in_background(&t, vec![spec], vec![]);
    wait_for("an idle consumer's gauges", Duration::from_secs(10), || {
        consumer_gauge(AGE, name) == 0.0 && consumer_gauge(PENDING, name) == 0.0
    })
    .await;

    let published = Instant::now();
    publish_audit(&t, 3).await;
    // The handler holds its message until released: a stuck consumer.
    let (release, released) = watch::channel(false);
    let consumer = t.spawn_consumer(spec, move |_: Envelope<Value>| {
        let mut released = released.clone();
        async move {
            released
                .wait_for(|r| *r)
                .await
                .map_err(|e| HandlerError::Transient(e.to_string()))?;
            Ok(())
        }
    });
    wait_for("the stall to show", Duration::from_secs(10), || {
        consumer_gauge(ACK_PENDING, name) >= 1.0 && consumer_gauge(AGE, name) > 0.0
    })
    .await;
    // Nothing moves on the server while stalled, so the gauges must equal its view exactly.
    let info = t
        .bus
        .jetstream()
        .get_stream(t.bus.naming().stream("AUDIT"))
        .await
        .unwrap()
        .consumer_info(name)
        .await
        .unwrap();
    tokio::time::sleep(EVERY * 3).await;
    assert_eq!(consumer_gauge(PENDING, name), info.num_pending as f64);
    assert_eq!(
        consumer_gauge(ACK_PENDING, name),
        info.num_ack_pending as f64
    );
    assert_eq!(info.num_pending + info.num_ack_pending as u64, 3);

    let first = consumer_gauge(AGE, name);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = consumer_gauge(AGE, name);
    assert!(
        later >= first + 1.0,
        "the age grows while stalled: {first} then {later}"
    );
    assert!(
        later <= published.elapsed().as_secs_f64() + 0.5,
        "the age is the first message's: {later} after {:?}",
        published.elapsed()
    );

    release.send(true).unwrap();
    wait_for("the age to return to 0", Duration::from_secs(10), || {
        consumer_gauge(AGE, name) == 0.0
            && consumer_gauge(PENDING, name) == 0.0
            && consumer_gauge(ACK_PENDING, name) == 0.0
    })
    .await;
    consumer.stop().await.unwrap();
    stop.cancel();
    t.cleanup().await;
}

#[tokio::test]
async fn dead_letters_are_counted_per_consumer() {
    let t = TestBus::new().await;
    let failing = own_consumer(&t, "AUDIT", "audit.>").await;
    let fine = own_consumer(&t, "AUDIT", "audit.>").await;
    publish_audit(&t, 2).await;
    let consumers = [
        t.spawn_consumer(failing, |_: Envelope<Value>| async {
            Err(HandlerError::Permanent("cannot be handled".into()))
        }),
        t.spawn_consumer(fine, |_: Envelope<Value>| async { Ok(()) }),
    ];
    t.drained("AUDIT", failing.durable).await;
    t.drained("AUDIT", fine.durable).await;
    for consumer in consumers {
        consumer.stop().await.unwrap();
    }
    assert_eq!(t.stream_len("DEAD_LETTERS").await, 2);

    let stop = poll_in_background(&t, vec![failing, fine], vec![]);
    let dead = "daarion_bus_dead_letters";
    wait_for("dead letters per consumer", Duration::from_secs(10), || {
        consumer_gauge(dead, failing.durable) == 2.0 && consumer_gauge(dead, fine.durable) == 0.0
    })
    .await;
    // Dead-lettered messages are done for their consumer: no age, no lag.
    assert_eq!(consumer_gauge(AGE, failing.durable), 0.0);
    assert_eq!(consumer_gauge(PENDING, failing.durable), 0.0);
    stop.cancel();
    t.cleanup().await;
}

#[tokio::test]
async fn stream_bytes_are_reported_against_their_limits() {
    let t = TestBus::new().await;
    publish_audit(&t, 5).await;
    // An operator's byte limit on one stream; the others are unlimited.
    let js = t.bus.jetstream();
    let mut config = js
        .get_stream(t.bus.naming().stream("AUDIT"))
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    config.max_bytes = 1 << 20;
    js.update_stream(config).await.unwrap();

    let stop = poll_in_background(&t, vec![], STREAMS.to_vec());
    let bytes = |stream: &str| gauge("daarion_bus_stream_bytes", Some(("stream", stream)));
    let max = |stream: &str| gauge("daarion_bus_stream_max_bytes", Some(("stream", stream)));
    let stored = js
        .get_stream(t.bus.naming().stream("AUDIT"))
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .bytes;
    assert!(stored > 0);
    wait_for("stream gauges", Duration::from_secs(10), || {
        bytes(AUDIT.name) == Some(stored as f64) && max(AUDIT.name) == Some((1 << 20) as f64)
    })
    .await;
    assert_eq!(bytes(MESSAGES.name), Some(0.0));
    assert_eq!(max(MESSAGES.name), Some(0.0), "0 means unlimited");
    for spec in STREAMS {
        assert!(bytes(spec.name).is_some(), "{} polled", spec.name);
    }
    stop.cancel();
    t.cleanup().await;
}

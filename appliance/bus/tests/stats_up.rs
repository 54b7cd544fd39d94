//! `daarion_bus_stats_up` when NATS goes away and comes back. A binary of its own: the gauge has
//! no labels, so any other poller in the process would set it too.

mod support;

use std::time::Duration;

use daarion_bus::stats;
use daarion_bus::testing::{TestBus, nats_url};
use daarion_bus::topology::{AUDIT_LOGGER, STREAMS};
use support::{gauge, wait_for};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A TCP relay to the test NATS server on a port of its own: stopping it is NATS becoming
/// unreachable to a client connected through it, without touching the shared server.
struct Relay {
    port: u16,
    tasks: JoinSet<()>,
}

impl Relay {
    async fn start(port: u16) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = nats_url().trim_start_matches("nats://").to_owned();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            // Each connection's copy dies with this task's JoinSet.
            let mut connections = JoinSet::new();
            loop {
                let (mut client, _) = listener.accept().await.unwrap();
                let upstream = upstream.clone();
                connections.spawn(async move {
                    let mut server = TcpStream::connect(upstream).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Relay { port, tasks }
    }

    async fn stop(mut self) -> u16 {
        self.tasks.shutdown().await;
        self.port
    }
}

#[tokio::test]
async fn stats_up_follows_whether_nats_answers_and_the_poller_outlives_an_outage() {
    let relay = Relay::start(0).await;
    let url = format!("nats://127.0.0.1:{}", relay.port);
    let t = TestBus::with(|c| {
        c.bus.url = url;
        c.bus.connect_timeout_secs = 2;
    })
    .await;
    let stop = CancellationToken::new();
    let poller = tokio::spawn(stats::watch(
        t.bus.clone(),
        vec![AUDIT_LOGGER],
        STREAMS.to_vec(),
        Duration::from_millis(200),
        stop.clone(),
    ));
    let up = || gauge("daarion_bus_stats_up", None);
    wait_for("stats up", Duration::from_secs(10), || up() == Some(1.0)).await;

    let port = relay.stop().await;
    wait_for("stats down", Duration::from_secs(15), || up() == Some(0.0)).await;
    assert!(
        !poller.is_finished(),
        "a failed poll must not end the poller"
    );

    // NATS is back where the client left it: it reconnects and the next poll reads again.
    let relay = Relay::start(port).await;
    wait_for("stats up again", Duration::from_secs(30), || {
        up() == Some(1.0)
    })
    .await;

    stop.cancel();
    poller.await.unwrap();
    t.cleanup().await;
    relay.stop().await;
}

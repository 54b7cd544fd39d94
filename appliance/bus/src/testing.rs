//! A bus of its own per test: a unique prefix on the shared NATS server, removed afterwards.

use std::time::Duration;

use std::future::Future;

use daarion_config::Config;
use tokio_util::sync::CancellationToken;

use crate::{Bus, BusError, ConsumerSpec, Envelope, HandlerError, consume, topology};

/// A consumer running in the background of a test.
pub struct RunningConsumer {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), BusError>>,
}

impl RunningConsumer {
    /// Stops it after the message in hand and returns how it ended.
    pub async fn stop(self) -> Result<(), BusError> {
        self.shutdown.cancel();
        self.task.await.expect("consumer task panicked")
    }
}

pub struct TestBus {
    pub bus: Bus,
    pub config: Config,
}

pub fn nats_url() -> String {
    std::env::var("DAARION_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

impl TestBus {
    pub async fn new() -> TestBus {
        Self::with(|_| {}).await
    }

    /// With the defaults changed by `tweak` before connecting (the prefix is already set).
    pub async fn with(tweak: impl FnOnce(&mut Config)) -> TestBus {
        let mut config = Config::defaults();
        config.bus.url = nats_url();
        config.bus.prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        config.bus.max_deliveries = 3;
        config.bus.retry_backoff_ms = 20;
        config.bus.ack_wait_secs = 5;
        // Services started from this config keep their files apart from other tests'.
        config.general.data_dir =
            std::env::temp_dir().join(format!("daarion-test-{}", config.bus.prefix));
        tweak(&mut config);
        let bus = Bus::connect(&config.bus, "test")
            .await
            .expect("NATS with JetStream at DAARION_TEST_NATS_URL or 127.0.0.1:4222");
        bus.ensure_topology().await.unwrap();
        TestBus { bus, config }
    }

    pub async fn cleanup(self) {
        topology::remove_all(self.bus.jetstream(), self.bus.naming())
            .await
            .unwrap();
    }

    /// Runs [`consume`] for `spec` on a background task.
    pub fn spawn_consumer<T, H, Fut>(&self, spec: ConsumerSpec, handler: H) -> RunningConsumer
    where
        T: crate::Event + Send + 'static,
        H: Fn(Envelope<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let bus = self.bus.clone();
        let token = shutdown.clone();
        let task = tokio::spawn(async move { consume(&bus, spec, token, handler).await });
        RunningConsumer { shutdown, task }
    }

    /// Messages stored in a stream of this test's topology.
    pub async fn stream_len(&self, base: &str) -> u64 {
        let mut stream = self
            .bus
            .jetstream()
            .get_stream(self.bus.naming().stream(base))
            .await
            .unwrap();
        stream.info().await.unwrap().state.messages
    }

    /// Waits until a consumer has nothing pending or unacked.
    pub async fn drained(&self, stream: &str, consumer: &str) {
        let stream = self
            .bus
            .jetstream()
            .get_stream(self.bus.naming().stream(stream))
            .await
            .unwrap();
        for _ in 0..200 {
            let info = stream.consumer_info(consumer).await.unwrap();
            if info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence > 0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("consumer {consumer} did not drain");
    }
}

/// Polls `cond` for up to ten seconds.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

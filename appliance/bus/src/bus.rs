//! The connection every service holds: publish with ack, readiness, topology.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, Context};
use async_nats::{ConnectOptions, HeaderMap};
use daarion_config::BusConfig;
use daarion_telemetry::{TRACEPARENT, TraceContext};
use serde::Serialize;

use crate::metrics::{PUBLISH_SECONDS, PUBLISHED};
use crate::topology::{self, TopologyReport};
use crate::{BusError, ConsumerSpec, Envelope, Naming, auth};

/// How long a restricted service waits at start for the supervisor to declare its consumers
/// (the supervisor does it as soon as the bundled server answers).
const TOPOLOGY_WAIT: Duration = Duration::from_secs(30);

/// A service's handle on NATS JetStream. Cheap to clone.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: Context,
    naming: Naming,
    config: BusConfig,
    /// The service's grant when it logged in as a restricted user: it may not change the
    /// topology, only find its consumers there.
    grant: Option<&'static crate::auth::Grant>,
}

/// What JetStream said about one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOutcome {
    pub stream_sequence: u64,
    /// The server already had an event with this id inside the duplicate window and kept the
    /// first one.
    pub duplicate: bool,
}

impl Bus {
    /// Connects and checks that JetStream is enabled. `name` identifies the service to the
    /// server (visible in `nats server report connections`); with `bus.credentials_dir` set it
    /// also names the NATS user (see [`auth::user_for`]) whose password file is read.
    pub async fn connect(config: &BusConfig, name: &str) -> Result<Bus, BusError> {
        let connect_err = |message: String| BusError::Connect {
            url: daarion_config::redact_url(&config.url),
            message,
        };
        let mut options = ConnectOptions::new()
            .name(format!("daarion-{name}"))
            .connection_timeout(Duration::from_secs(config.connect_timeout_secs));
        let mut grant = None;
        if let Some(dir) = config.credentials() {
            let user = auth::user_for(name);
            if user != auth::SUPERVISOR {
                grant = Some(auth::grant(user).ok_or_else(|| BusError::Credentials {
                    path: auth::password_path(dir, user),
                    message: format!("`{user}` is not a NATS user of the appliance"),
                })?);
            }
            let password = auth::read_password(dir, user)?;
            options = options
                .user_and_password(user.to_owned(), password)
                .custom_inbox_prefix(auth::inbox_prefix(user));
        }
        let client = options
            .connect(config.url.as_str())
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let js = jetstream::new(client.clone());
        check_jetstream(&client).await?;
        Ok(Bus {
            client,
            js,
            naming: Naming::new(config.prefix.clone()),
            config: config.clone(),
            grant,
        })
    }

    pub fn naming(&self) -> &Naming {
        &self.naming
    }

    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    pub fn jetstream(&self) -> &Context {
        &self.js
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Creates or updates the streams and consumers; see [`topology::ensure`]. A service logged
    /// in as its own user may not, so it waits (up to `TOPOLOGY_WAIT`) for the supervisor to
    /// have declared the consumers it reads, and reports them unchanged.
    pub async fn ensure_topology(&self) -> Result<TopologyReport, BusError> {
        match self.grant {
            None => topology::ensure(&self.js, &self.naming, &self.config).await,
            Some(grant) => self.await_consumers(grant.consumers).await,
        }
    }

    async fn await_consumers(
        &self,
        consumers: &[ConsumerSpec],
    ) -> Result<TopologyReport, BusError> {
        let mut report = TopologyReport::default();
        for spec in consumers {
            let started = Instant::now();
            loop {
                let found = match self.js.get_stream(self.naming.stream(spec.stream)).await {
                    Ok(stream) => stream
                        .consumer_info(spec.durable)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match found {
                    Ok(_) => break,
                    Err(message) if started.elapsed() >= TOPOLOGY_WAIT => {
                        return Err(BusError::Consumer {
                            consumer: spec.durable.to_owned(),
                            message: format!(
                                "not declared by the supervisor within {TOPOLOGY_WAIT:?}: {message}"
                            ),
                        });
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
            report
                .consumers
                .push((spec.durable.to_owned(), crate::Ensured::Unchanged));
        }
        Ok(report)
    }

    /// Publishes an event and waits for JetStream to store it. The event id is the
    /// `Nats-Msg-Id`, so publishing the same envelope again (a retry after a lost ack) stores it
    /// once. The envelope's trace travels in `traceparent`.
    pub async fn publish<T: Serialize>(
        &self,
        event: &Envelope<T>,
    ) -> Result<PublishOutcome, BusError> {
        let subject = self.naming.subject(&event.event_type);
        let body = serde_json::to_vec(event)?;
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event.id.to_string());
        let ctx = match TraceContext::current() {
            Some(current) if current.trace_id() == event.trace_id => current.child(),
            _ => {
                TraceContext::from_trace_id(&event.trace_id).unwrap_or_else(TraceContext::new_root)
            }
        };
        headers.insert(TRACEPARENT, ctx.to_header());
        self.publish_raw(subject, headers, body.into()).await
    }

    pub(crate) async fn publish_raw(
        &self,
        subject: String,
        headers: HeaderMap,
        body: bytes::Bytes,
    ) -> Result<PublishOutcome, BusError> {
        let started = Instant::now();
        let publish_err = |message: String| BusError::Publish {
            subject: subject.clone(),
            message,
        };
        let ack = self
            .js
            .publish_with_headers(subject.clone(), headers, body)
            .await
            .map_err(|e| publish_err(e.to_string()))?
            .await
            .map_err(|e| publish_err(e.to_string()))?;
        let stream = self.naming.strip_stream(&ack.stream);
        PUBLISHED
            .with_label_values(&[stream, if ack.duplicate { "true" } else { "false" }])
            .inc();
        PUBLISH_SECONDS
            .with_label_values(&[stream])
            .observe(started.elapsed().as_secs_f64());
        Ok(PublishOutcome {
            stream_sequence: ack.sequence,
            duplicate: ack.duplicate,
        })
    }

    /// For `/ready`: connected, and JetStream answers.
    pub async fn check(&self) -> Result<String, String> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(format!("{}", self.client.connection_state()));
        }
        let info = account_info(&self.client)
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!("jetstream: {} streams", info.streams))
    }
}

/// The `/ready` probe of a service that uses the bus.
pub struct BusCheck(pub Bus);

impl daarion_telemetry::Check for BusCheck {
    fn name(&self) -> &str {
        "nats"
    }
    fn check(&self) -> futures::future::BoxFuture<'_, daarion_telemetry::CheckResult> {
        Box::pin(self.0.check())
    }
}

#[derive(serde::Deserialize)]
struct AccountInfo {
    #[serde(default)]
    streams: u64,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(serde::Deserialize)]
struct ApiError {
    #[serde(default)]
    description: String,
}

/// `$JS.API.INFO`, decoded leniently: the typed client's decoder follows the newest server's
/// schema and rejects the answer of older JetStream servers (Debian ships 2.9), which work
/// fine for everything the appliance does.
async fn account_info(client: &async_nats::Client) -> Result<AccountInfo, BusError> {
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        client.request("$JS.API.INFO", bytes::Bytes::new()),
    )
    .await
    .map_err(|_| BusError::NoJetStream("no answer from $JS.API.INFO".into()))?
    .map_err(|e| BusError::NoJetStream(e.to_string()))?;
    let info: AccountInfo = serde_json::from_slice(&reply.payload)
        .map_err(|e| BusError::NoJetStream(format!("unexpected $JS.API.INFO answer: {e}")))?;
    match info.error {
        Some(err) => Err(BusError::NoJetStream(err.description)),
        None => Ok(info),
    }
}

async fn check_jetstream(client: &async_nats::Client) -> Result<(), BusError> {
    account_info(client).await.map(|_| ())
}

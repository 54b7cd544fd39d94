//! The per-service NATS users against a real nats-server started with the generated
//! `authorization` block: each service does its own work and nothing else.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use daarion_bus::events::{AuditRecord, MessageReceivedTelegram};
use daarion_bus::topology::{TELEGRAM_UPDATES, USAGE_RECORDER};
use daarion_bus::{Bus, Envelope, HandlerError, auth, consume};
use daarion_config::{BusConfig, Config};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// A nats-server of this test's own, on a free port, with a user per service.
struct Server {
    child: Child,
    dir: PathBuf,
    config: BusConfig,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nats_server() -> String {
    std::env::var("DAARION_TEST_NATS_SERVER").unwrap_or_else(|_| "nats-server".into())
}

impl Server {
    async fn start() -> Server {
        let dir = std::env::temp_dir().join(format!("daarion-nats-auth-{}", uuid::Uuid::new_v4()));
        let credentials = dir.join("credentials");
        let passwords = auth::ensure_passwords(&credentials).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = Config::defaults().bus;
        config.url = format!("nats://127.0.0.1:{port}");
        config.prefix = "a1".into();
        config.credentials_dir = credentials;
        config.ack_wait_secs = 5;
        let naming = daarion_bus::Naming::new(config.prefix.clone());
        let text = format!(
            "listen: \"127.0.0.1:{port}\"\njetstream {{ store_dir: {:?} }}\n{}",
            dir.join("store").display().to_string(),
            auth::authorization(&naming, &passwords)
        );
        let file = dir.join("nats.conf");
        std::fs::write(&file, text).unwrap();
        let child = Command::new(nats_server())
            .arg("-c")
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH or DAARION_TEST_NATS_SERVER");
        let server = Server { child, dir, config };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nats-server did not listen on {port}");
    }

    async fn connect(&self, name: &str) -> Bus {
        Bus::connect(&self.config, name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The supervisor's connection with the topology declared.
    async fn supervisor(&self) -> Bus {
        let bus = self.connect("supervisor-test").await;
        bus.ensure_topology().await.unwrap();
        bus
    }
}

async fn stream_len(bus: &Bus, base: &str) -> u64 {
    let mut stream = bus
        .jetstream()
        .get_stream(bus.naming().stream(base))
        .await
        .unwrap();
    stream.info().await.unwrap().state.messages
}

fn update() -> Envelope<MessageReceivedTelegram> {
    Envelope::event(
        "gateway",
        MessageReceivedTelegram {
            bot: "b".into(),
            update: json!({"update_id": 1, "message": {"chat": {"id": 5}, "text": "hi"}}),
        },
    )
}

fn audit() -> Envelope<AuditRecord> {
    Envelope::new(
        "audit.action",
        "gateway",
        AuditRecord {
            actor: "forged".into(),
            action: "delete".into(),
            target: None,
            outcome: "ok".into(),
            before: None,
            after: None,
            detail: None,
        },
    )
}

#[tokio::test]
async fn anonymous_and_wrong_password_connections_are_refused() {
    let server = Server::start().await;
    let mut anonymous = server.config.clone();
    anonymous.credentials_dir = PathBuf::new();
    let err = Bus::connect(&anonymous, "gateway")
        .await
        .err()
        .expect("anonymous refused");
    assert!(err.to_string().contains("cannot connect"), "{err}");

    // Another service's password file does not open the gateway's user.
    let forged = server.dir.join("forged");
    std::fs::create_dir_all(&forged).unwrap();
    std::fs::copy(
        auth::password_path(&server.config.credentials_dir, "router"),
        forged.join("gateway"),
    )
    .unwrap();
    let mut wrong = server.config.clone();
    wrong.credentials_dir = forged;
    assert!(Bus::connect(&wrong, "gateway").await.is_err());
}

#[tokio::test]
async fn the_supervisor_declares_the_topology_and_services_only_find_theirs() {
    let server = Server::start().await;
    let supervisor = server.supervisor().await;
    assert!(!supervisor.ensure_topology().await.unwrap().changed());

    // A service's ensure finds its consumers and changes nothing.
    let gateway = server.connect("gateway").await;
    let report = gateway.ensure_topology().await.unwrap();
    let found: Vec<&str> = report.consumers.iter().map(|(c, _)| c.as_str()).collect();
    assert!(found.contains(&TELEGRAM_UPDATES.durable), "{found:?}");
    assert!(report.streams.is_empty());
    assert!(
        gateway.check().await.is_ok(),
        "/ready works for a service user"
    );
}

#[tokio::test]
async fn a_service_publishes_its_events_and_consumes_its_consumer() {
    let server = Server::start().await;
    let supervisor = server.supervisor().await;
    let gateway = server.connect("gateway").await;
    gateway.publish(&update()).await.unwrap();
    assert_eq!(stream_len(&supervisor, "MESSAGES").await, 1);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let consumer = {
        let (bus, shutdown) = (gateway.clone(), shutdown.clone());
        tokio::spawn(async move {
            consume(
                &bus,
                TELEGRAM_UPDATES,
                shutdown,
                move |e: Envelope<MessageReceivedTelegram>| {
                    let tx = tx.clone();
                    async move {
                        tx.send(e.payload.bot).unwrap();
                        Ok::<(), HandlerError>(())
                    }
                },
            )
            .await
        })
    };
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the gateway reads telegram-updates");
    assert_eq!(got.as_deref(), Some("b"));
    // Acked: nothing left for the consumer.
    let stream = supervisor
        .jetstream()
        .get_stream(supervisor.naming().stream("MESSAGES"))
        .await
        .unwrap();
    for _ in 0..100 {
        let info = stream
            .consumer_info(TELEGRAM_UPDATES.durable)
            .await
            .unwrap();
        if info.num_ack_pending == 0 && info.num_pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let info = stream
        .consumer_info(TELEGRAM_UPDATES.durable)
        .await
        .unwrap();
    assert_eq!((info.num_ack_pending, info.num_pending), (0, 0));
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_gateway_cannot_forge_read_or_delete_what_is_not_its_own() {
    let server = Server::start().await;
    let supervisor = server.supervisor().await;
    let gateway = server.connect("gateway").await;

    // Forged audit rows and usage records are refused, and nothing is stored.
    assert!(gateway.publish(&audit()).await.is_err());
    let processed = Envelope::new("message.processed", "gateway", json!({"forged": true}));
    assert!(gateway.publish(&processed).await.is_err());
    assert_eq!(stream_len(&supervisor, "AUDIT").await, 0);
    assert_eq!(stream_len(&supervisor, "MESSAGES").await, 0);

    // No stream administration.
    let messages = gateway.naming().stream("MESSAGES");
    assert!(gateway.jetstream().delete_stream(&messages).await.is_err());
    assert!(supervisor.jetstream().get_stream(&messages).await.is_ok());

    // Not another service's consumer, nor a consumer of its own making.
    let stream = gateway.jetstream().get_stream(&messages).await.unwrap();
    assert!(stream.consumer_info(USAGE_RECORDER.durable).await.is_err());
    let next = format!(
        "$JS.API.CONSUMER.MSG.NEXT.{messages}.{}",
        USAGE_RECORDER.durable
    );
    let pulled = tokio::time::timeout(
        Duration::from_secs(2),
        gateway.client().request(next, "1".into()),
    )
    .await;
    assert!(!matches!(pulled, Ok(Ok(_))), "pulled from usage-recorder");
    let ephemeral = async_nats::jetstream::consumer::pull::Config::default();
    assert!(stream.create_consumer(ephemeral).await.is_err());

    // Nor does it overhear the router's events on core NATS.
    let mut overheard = gateway
        .client()
        .subscribe(gateway.naming().subject("message.>"))
        .await
        .unwrap();
    let router = server.connect("router").await;
    let answered = Envelope::new("message.processed", "router", json!({"ok": true}));
    router.publish(&answered).await.unwrap();
    assert_eq!(stream_len(&supervisor, "MESSAGES").await, 1);
    let heard = tokio::time::timeout(
        Duration::from_millis(500),
        futures::StreamExt::next(&mut overheard),
    )
    .await;
    assert!(
        !matches!(heard, Ok(Some(_))),
        "the gateway overheard message.processed"
    );
}

#[tokio::test]
async fn a_user_the_appliance_does_not_know_is_refused_before_connecting() {
    let server = Server::start().await;
    let err = Bus::connect(&server.config, "intruder")
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a NATS user"), "{err}");
}

//! Who may do what on the bundled NATS: one user per service, allowed to publish only the events
//! it produces and to read only its own durable consumers; the JetStream API that creates,
//! changes or deletes streams and consumers belongs to the supervisor alone.
//!
//! [`GRANTS`] is the one table the server's `authorization` block ([`authorization`]) and the
//! tests that check every producer is covered are both derived from.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::topology::{
    AUDIT_LOGGER, CREWAI_WORKER, ConsumerSpec, GATEWAY_AGENT_RUNS, GATEWAY_ATTACHMENT_FAILED,
    GATEWAY_ATTACHMENT_INDEXED, MEMORY_INDEXER, OPS_LOGGER, PARSER_PIPELINE, TELEGRAM_UPDATES,
    USAGE_RECORDER,
};
use crate::{BusError, Naming};

/// The user that owns the topology (and `daarion doctor`, which runs as an operator of it).
pub const SUPERVISOR: &str = "supervisor";

/// What one service's NATS user may do.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub user: &'static str,
    /// Event types it stores in JetStream (bare, as in `Envelope::event_type`; a trailing `>`
    /// stands for any qualifier).
    pub publishes: &'static [&'static str],
    /// Core-NATS subjects it announces on (never stored).
    pub announces: &'static [&'static str],
    /// The durable consumers it reads, acks and dead-letters from.
    pub consumers: &'static [ConsumerSpec],
}

/// Every service that connects to the bus. The supervisor is not here: it may do anything.
pub const GRANTS: [Grant; 7] = [
    Grant {
        user: "control-plane",
        publishes: &["audit.action"],
        announces: &["control.changed.>"],
        consumers: &[],
    },
    Grant {
        user: "gateway",
        publishes: &[
            "message.received.telegram",
            "message.sent.telegram",
            "ops.alert",
        ],
        announces: &[],
        consumers: &[
            TELEGRAM_UPDATES,
            GATEWAY_ATTACHMENT_INDEXED,
            GATEWAY_ATTACHMENT_FAILED,
            GATEWAY_AGENT_RUNS,
        ],
    },
    Grant {
        user: "router",
        publishes: &["message.processed", "agent.run.requested"],
        announces: &[],
        consumers: &[],
    },
    Grant {
        user: "memory",
        publishes: &[
            "attachment.created.>",
            "attachment.parsed",
            "attachment.indexed",
            "attachment.failed",
            "audit.action",
            "memory.store.>",
            "memory.indexed",
        ],
        announces: &[],
        consumers: &[MEMORY_INDEXER, AUDIT_LOGGER, OPS_LOGGER, USAGE_RECORDER],
    },
    Grant {
        user: "parser",
        publishes: &[],
        announces: &[],
        consumers: &[PARSER_PIPELINE],
    },
    Grant {
        user: "crews",
        publishes: &[
            "agent.run.requested",
            "agent.run.progress",
            "agent.run.completed",
            "agent.run.failed",
            "audit.action",
        ],
        announces: &[],
        consumers: &[],
    },
    Grant {
        user: "crews-worker",
        publishes: &[],
        announces: &[],
        consumers: &[CREWAI_WORKER],
    },
];

/// Every data-plane service listens for the control plane's cache announcements.
const LISTENS: &[&str] = &["control.changed.>"];

/// The NATS user a connection named `name` (as in [`crate::Bus::connect`]) logs in as: the
/// supervisor's several connections and `daarion doctor` share the supervisor's.
pub fn user_for(name: &str) -> &str {
    if name == "doctor" || name == SUPERVISOR || name.starts_with("supervisor-") {
        SUPERVISOR
    } else {
        name
    }
}

pub fn grant(user: &str) -> Option<&'static Grant> {
    GRANTS.iter().find(|g| g.user == user)
}

/// Every user the server knows: the services and the supervisor.
pub fn users() -> impl Iterator<Item = &'static str> {
    GRANTS
        .iter()
        .map(|g| g.user)
        .chain(std::iter::once(SUPERVISOR))
}

/// Replies to a user's requests (publish acks, pulled messages) arrive under its own inbox
/// prefix, so no service can read another's.
pub fn inbox_prefix(user: &str) -> String {
    format!("_INBOX_{user}")
}

/// The subjects a user may publish to and subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

impl Grant {
    pub fn permissions(&self, naming: &Naming) -> Permissions {
        let mut publish = vec!["$JS.API.INFO".to_owned()];
        publish.extend(self.publishes.iter().map(|e| naming.subject(e)));
        publish.extend(self.announces.iter().map(|s| naming.subject(s)));
        for c in self.consumers {
            let (stream, durable) = (naming.stream(c.stream), c.durable);
            publish.extend([
                format!("$JS.API.STREAM.INFO.{stream}"),
                format!("$JS.API.CONSUMER.INFO.{stream}.{durable}"),
                format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"),
                format!("$JS.ACK.{stream}.{durable}.>"),
                naming.subject(&format!("deadletter.{durable}")),
            ]);
        }
        let mut subscribe = vec![format!("{}.>", inbox_prefix(self.user))];
        subscribe.extend(LISTENS.iter().map(|s| naming.subject(s)));
        Permissions { publish, subscribe }
    }
}

/// The `authorization` block of nats-server's configuration: each user with its password and
/// permissions; the supervisor with all of them. Anonymous connections are refused.
pub fn authorization(naming: &Naming, passwords: &[(&str, String)]) -> String {
    let mut out = String::from("authorization {\n  users = [\n");
    for (user, password) in passwords {
        let permissions = match grant(user) {
            Some(g) => g.permissions(naming),
            None => Permissions {
                publish: vec![">".into()],
                subscribe: vec![">".into()],
            },
        };
        out.push_str(&format!(
            "    {{ user: {}, password: {}, permissions: {{ publish: {{ allow: {} }}, subscribe: {{ allow: {} }} }} }}\n",
            quote(user),
            quote(password),
            list(&permissions.publish),
            list(&permissions.subscribe),
        ));
    }
    out.push_str("  ]\n}\n");
    out
}

/// JSON strings are valid NATS config strings, and quoting keeps `$JS…` from reading as a
/// variable.
fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

fn list(items: &[String]) -> String {
    serde_json::to_string(items).expect("strings serialise")
}

/// The password file of `user` under `dir`.
pub fn password_path(dir: &Path, user: &str) -> PathBuf {
    dir.join(user)
}

/// Reads `user`'s password.
pub fn read_password(dir: &Path, user: &str) -> Result<String, BusError> {
    let path = password_path(dir, user);
    let text = std::fs::read_to_string(&path).map_err(|e| BusError::Credentials {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let password = text.trim().to_owned();
    if password.is_empty() {
        return Err(BusError::Credentials {
            path,
            message: "empty".into(),
        });
    }
    Ok(password)
}

/// Every user's password, creating (0600, random) the files that are missing, for the
/// supervisor that writes the server's configuration.
pub fn ensure_passwords(dir: &Path) -> Result<Vec<(&'static str, String)>, BusError> {
    let failed = |path: &Path, e: std::io::Error| BusError::Credentials {
        path: path.to_owned(),
        message: e.to_string(),
    };
    create_private_dir(dir).map_err(|e| failed(dir, e))?;
    users()
        .map(|user| {
            let path = password_path(dir, user);
            if !path.exists() {
                let password = format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                );
                write_private(&path, &password).map_err(|e| failed(&path, e))?;
            }
            Ok((user, read_password(dir, user)?))
        })
        .collect()
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Created 0600 from the start, so the secret is never readable by others, even briefly.
pub fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{CONSUMERS, STREAMS};

    /// Every (service, event type) the code publishes, found by reading each crate's
    /// `Envelope::event`/`event_as`/outbox call: a producer added without a grant fails here.
    const PRODUCERS: &[(&str, &str)] = &[
        ("control-plane", "audit.action"),
        ("gateway", "message.received.telegram"),
        ("gateway", "message.sent.telegram"),
        ("gateway", "ops.alert"),
        ("router", "message.processed"),
        ("router", "agent.run.requested"),
        ("memory", "attachment.created.pdf"),
        ("memory", "attachment.parsed"),
        ("memory", "attachment.indexed"),
        ("memory", "attachment.failed"),
        ("memory", "audit.action"),
        ("memory", "memory.store.chunk"),
        ("memory", "memory.indexed"),
        ("crews", "agent.run.requested"),
        ("crews", "agent.run.progress"),
        ("crews", "agent.run.completed"),
        ("crews", "agent.run.failed"),
        ("crews", "audit.action"),
    ];

    fn matches(pattern: &str, subject: &str) -> bool {
        let (p, s): (Vec<&str>, Vec<&str>) =
            (pattern.split('.').collect(), subject.split('.').collect());
        for (i, token) in p.iter().enumerate() {
            match *token {
                ">" => return s.len() > i,
                "*" if i < s.len() => {}
                t if s.get(i) == Some(&t) => {}
                _ => return false,
            }
        }
        p.len() == s.len()
    }

    fn may_publish(user: &str, naming: &Naming, subject: &str) -> bool {
        grant(user)
            .unwrap()
            .permissions(naming)
            .publish
            .iter()
            .any(|p| matches(p, subject))
    }

    #[test]
    fn every_producer_may_publish_what_it_produces() {
        let naming = Naming::new("p1");
        for (user, event) in PRODUCERS {
            assert!(
                may_publish(user, &naming, &naming.subject(event)),
                "{user} cannot publish {event}"
            );
        }
    }

    #[test]
    fn no_service_publishes_what_another_produces() {
        let naming = Naming::new("");
        for grant in GRANTS {
            for (producer, event) in PRODUCERS {
                let theirs_only = !PRODUCERS
                    .iter()
                    .any(|(u, e)| u == &grant.user && e == event);
                if *producer != grant.user && theirs_only {
                    assert!(
                        !may_publish(grant.user, &naming, event),
                        "{} may publish {producer}'s {event}",
                        grant.user
                    );
                }
            }
        }
    }

    #[test]
    fn every_consumer_has_exactly_one_reader() {
        for c in CONSUMERS {
            let readers: Vec<&str> = GRANTS
                .iter()
                .filter(|g| g.consumers.contains(&c))
                .map(|g| g.user)
                .collect();
            assert_eq!(readers.len(), 1, "{}: {readers:?}", c.durable);
        }
    }

    #[test]
    fn every_published_subject_lands_in_a_stream() {
        let naming = Naming::new("");
        let stored: Vec<String> = STREAMS.iter().flat_map(|s| s.subjects(&naming)).collect();
        for g in GRANTS {
            for e in g.publishes {
                let concrete = e.replace('>', "x");
                assert!(
                    stored.iter().any(|s| matches(s, &concrete)),
                    "{}: {e} is in no stream",
                    g.user
                );
            }
        }
    }

    #[test]
    fn services_get_no_stream_administration() {
        let naming = Naming::new("");
        for g in GRANTS {
            let p = g.permissions(&naming);
            for subject in [
                "$JS.API.STREAM.DELETE.MESSAGES",
                "$JS.API.STREAM.CREATE.X",
                "$JS.API.CONSUMER.CREATE.MESSAGES",
                "$JS.API.CONSUMER.DURABLE.CREATE.MESSAGES.x",
                "$JS.API.STREAM.MSG.GET.MESSAGES",
                "$JS.API.DIRECT.GET.MESSAGES",
                "$JS.API.STREAM.PURGE.AUDIT",
            ] {
                assert!(
                    !p.publish.iter().any(|a| matches(a, subject)),
                    "{} may {subject}",
                    g.user
                );
            }
            assert!(
                !p.subscribe
                    .iter()
                    .any(|s| s == ">" || s.starts_with("_INBOX."))
            );
        }
    }

    #[test]
    fn connection_names_map_to_users() {
        for (name, user) in [
            ("gateway", "gateway"),
            ("supervisor-health", SUPERVISOR),
            ("doctor", SUPERVISOR),
            ("crews-worker", "crews-worker"),
        ] {
            assert_eq!(user_for(name), user);
        }
    }

    #[test]
    fn missing_passwords_are_created_private_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("daarion-nats-{}", uuid::Uuid::new_v4()));
        let first = ensure_passwords(&dir).unwrap();
        assert_eq!(first.len(), GRANTS.len() + 1);
        for (user, password) in &first {
            assert_eq!(password.len(), 64);
            let mode = std::fs::metadata(password_path(&dir, user))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{user}");
        }
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(ensure_passwords(&dir).unwrap(), first);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

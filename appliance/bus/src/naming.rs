//! Stream and subject names under a prefix, so that parallel test runs (or two appliances on one
//! NATS server) never see each other's events.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    prefix: String,
}

impl Naming {
    /// `prefix` is validated by the config crate: letters, digits, `_` and `-`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Naming {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `MESSAGES` → `MESSAGES`, or `T1_MESSAGES` under prefix `t1`.
    pub fn stream(&self, base: &str) -> String {
        if self.prefix.is_empty() {
            base.to_owned()
        } else {
            format!("{}_{base}", self.prefix.to_ascii_uppercase())
        }
    }

    /// `message.received` → `message.received`, or `t1.message.received` under prefix `t1`.
    pub fn subject(&self, base: &str) -> String {
        if self.prefix.is_empty() {
            base.to_owned()
        } else {
            format!("{}.{base}", self.prefix)
        }
    }

    /// The inverse of [`Naming::stream`], as a static label when the stream is one of ours.
    pub fn strip_stream(&self, stream: &str) -> &'static str {
        crate::topology::STREAMS
            .iter()
            .find(|s| self.stream(s.name) == stream)
            .map(|s| s.name)
            .unwrap_or("other")
    }

    /// The inverse of [`Naming::subject`]: the event type a subject carries.
    pub fn strip<'a>(&self, subject: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            subject
        } else {
            subject
                .strip_prefix(&self.prefix)
                .and_then(|s| s.strip_prefix('.'))
                .unwrap_or(subject)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_prefix_is_identity() {
        let n = Naming::new("");
        assert_eq!(n.stream("AUDIT"), "AUDIT");
        assert_eq!(n.subject("audit.action"), "audit.action");
        assert_eq!(n.strip("audit.action"), "audit.action");
    }

    #[test]
    fn prefix_applies_to_streams_and_subjects() {
        let n = Naming::new("t-9a");
        assert_eq!(n.stream("AGENT_RUNS"), "T-9A_AGENT_RUNS");
        assert_eq!(n.subject("agent.run.requested"), "t-9a.agent.run.requested");
        assert_eq!(n.strip("t-9a.agent.run.requested"), "agent.run.requested");
    }
}

//! W3C Trace Context (`traceparent`) and the ambient context of the current request or message.
//!
//! The HTTP middleware and the bus consumer both run their handlers inside
//! [`TraceContext::scope`], so code deep in a handler (a publish, an outgoing call) picks up the
//! right trace without threading it through every signature.

use std::fmt;
use std::future::Future;

use rand::RngCore;

/// The header name, identical on HTTP requests and NATS messages.
pub const TRACEPARENT: &str = "traceparent";

tokio::task_local! {
    static CURRENT: TraceContext;
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceParseError {
    #[error("traceparent is not version-traceid-spanid-flags in lowercase hex")]
    Malformed,
    #[error("traceparent version ff is invalid")]
    UnsupportedVersion,
    #[error("traceparent trace id or span id is all zeros")]
    ZeroId,
}

impl TraceContext {
    /// A fresh trace: for a request or message that arrived without one.
    pub fn new_root() -> Self {
        let mut rng = rand::rng();
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        // All-zero ids are invalid; the odds are nil but the loop makes it certain.
        while trace_id == [0; 16] {
            rng.fill_bytes(&mut trace_id);
        }
        while span_id == [0; 8] {
            rng.fill_bytes(&mut span_id);
        }
        TraceContext {
            trace_id,
            span_id,
            flags: 0x01,
        }
    }

    /// The same trace, a new span: what to send downstream.
    pub fn child(&self) -> Self {
        let mut next = Self::new_root();
        next.trace_id = self.trace_id;
        next.flags = self.flags;
        next
    }

    /// Parses a `traceparent` header value. Future versions are accepted as the spec asks,
    /// reading only the fields version 00 defines.
    pub fn parse(value: &str) -> Result<Self, TraceParseError> {
        let value = value.trim();
        let mut parts = value.split('-');
        let (Some(version), Some(trace), Some(span), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TraceParseError::Malformed);
        };
        let version = decode::<1>(version).ok_or(TraceParseError::Malformed)?[0];
        if version == 0xff {
            return Err(TraceParseError::UnsupportedVersion);
        }
        if version == 0 && parts.next().is_some() {
            return Err(TraceParseError::Malformed);
        }
        let trace_id = decode::<16>(trace).ok_or(TraceParseError::Malformed)?;
        let span_id = decode::<8>(span).ok_or(TraceParseError::Malformed)?;
        let flags = decode::<1>(flags).ok_or(TraceParseError::Malformed)?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return Err(TraceParseError::ZeroId);
        }
        Ok(TraceContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// A new span in the trace named by a 32-hex-digit id, e.g. one stored in an event envelope.
    pub fn from_trace_id(trace_id: &str) -> Option<Self> {
        let trace_id = decode::<16>(trace_id).filter(|t| *t != [0; 16])?;
        let mut ctx = Self::new_root();
        ctx.trace_id = trace_id;
        Some(ctx)
    }

    /// Takes the incoming header if it is valid, else starts a new trace.
    pub fn from_header_or_new(value: Option<&str>) -> Self {
        value
            .and_then(|v| Self::parse(v).ok())
            .unwrap_or_else(Self::new_root)
    }

    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }

    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// The `traceparent` header value (always version 00).
    pub fn to_header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }

    /// The context of the request or message being handled on this task, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(|c| *c).ok()
    }

    /// The current context, or a new root when called outside any request or message.
    pub fn current_or_new() -> Self {
        Self::current().unwrap_or_else(Self::new_root)
    }

    /// Runs `fut` with `self` as the current context.
    pub fn scope<F: Future>(self, fut: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self, fut)
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header())
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header())
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    // Uppercase hex is invalid per the spec; rejecting it keeps ids canonical in logs.
    if s.len() != N * 2
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_formats_the_spec_example() {
        let ctx = TraceContext::parse(SAMPLE).unwrap();
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.span_id(), "00f067aa0ba902b7");
        assert!(ctx.sampled());
        assert_eq!(ctx.to_header(), SAMPLE);
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn future_versions_are_read_leniently() {
        let ctx =
            TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more")
                .unwrap();
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn child_keeps_trace_and_changes_span() {
        let parent = TraceContext::parse(SAMPLE).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.span_id(), parent.span_id());
    }

    #[test]
    fn from_trace_id_keeps_the_id() {
        let ctx = TraceContext::from_trace_id("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(TraceContext::from_trace_id("xyz").is_none());
        assert!(TraceContext::from_trace_id(&"0".repeat(32)).is_none());
    }

    #[test]
    fn invalid_header_starts_a_new_trace() {
        let a = TraceContext::from_header_or_new(Some("garbage"));
        let b = TraceContext::from_header_or_new(None);
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(a.trace_id().len(), 32);
    }

    #[tokio::test]
    async fn scope_sets_the_current_context() {
        assert!(TraceContext::current().is_none());
        let ctx = TraceContext::parse(SAMPLE).unwrap();
        let seen = ctx.scope(async { TraceContext::current() }).await;
        assert_eq!(seen, Some(ctx));
    }
}

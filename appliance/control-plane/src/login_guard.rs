//! What stands between a password guesser and argon2: failed-attempt backoff per account and per
//! client address, and a bound on how many hashes run at once.
//!
//! The failure counts live in this process's memory, not Redis: the control plane is a single
//! process per appliance, so nothing else needs to see them, and a login must never depend on a
//! second store being up (Redis down would otherwise mean either no admin can log in or no
//! throttling at all). A restart forgets them, but restarting the service takes root, which
//! needs no password anyway. The map is bounded, so random usernames cannot grow it without end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Failures an account may have before each further attempt must wait (the fifth starts it).
pub(crate) const ACCOUNT_FREE_FAILURES: u32 = 5;
/// A client address gets more: several admins may share one (the admin port's proxy).
pub(crate) const SOURCE_FREE_FAILURES: u32 = 20;
/// The first wait; each further failure doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// A key with no failure for this long starts again from zero.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Most keys kept; past it the stalest are dropped (an attacker rotating names only makes
/// their own entries fall out, never an account's backoff earlier than a fresher key's).
const MAX_KEYS: usize = 10_000;
/// How long a login waits for a free hashing slot before being told to come back.
const HASH_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// No attempt before this instant.
    blocked_until: Option<Instant>,
}

/// Shared by every login request (lives in [`crate::App`]).
#[derive(Clone)]
pub struct LoginGuard {
    failures: Arc<Mutex<HashMap<String, Failures>>>,
    hashing: Arc<Semaphore>,
}

impl Default for LoginGuard {
    fn default() -> Self {
        // Half the cores at most: argon2id takes ~19 MiB and a core for tens of milliseconds
        // each, and the blocking pool would otherwise run hundreds at once.
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        LoginGuard::new((cores / 2).max(1))
    }
}

/// Why a login is not even tried.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too many failures: come back after this long.
    Backoff(Duration),
    /// Every hashing slot stayed busy: come back soon.
    Busy,
}

impl LoginGuard {
    pub fn new(concurrent_hashes: usize) -> LoginGuard {
        LoginGuard {
            failures: Arc::default(),
            hashing: Arc::new(Semaphore::new(concurrent_hashes)),
        }
    }

    fn keys(account: &str, source: &str) -> [String; 2] {
        [format!("account:{account}"), format!("source:{source}")]
    }

    /// The longest wait either key still owes, if any.
    pub fn check(&self, account: &str, source: &str) -> Result<(), Refusal> {
        let now = Instant::now();
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let wait = Self::keys(account, source)
            .iter()
            .filter_map(|key| failures.get(key)?.blocked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match wait {
            Some(wait) => Err(Refusal::Backoff(wait)),
            None => Ok(()),
        }
    }

    /// Counts a failure against both keys and starts (or lengthens) their backoff.
    pub fn failed(&self, account: &str, source: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if failures.len() >= MAX_KEYS {
                let mut ages: Vec<Instant> = failures.values().map(|f| f.last).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 2];
                failures.retain(|_, f| f.last > cutoff);
            }
        }
        for (key, free) in Self::keys(account, source)
            .into_iter()
            .zip([ACCOUNT_FREE_FAILURES, SOURCE_FREE_FAILURES])
        {
            let entry = failures.entry(key).or_insert(Failures {
                count: 0,
                last: now,
                blocked_until: None,
            });
            if now.duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last = now;
            entry.blocked_until = backoff(entry.count, free).map(|wait| now + wait);
        }
    }

    /// A right password clears the account's failures; the address keeps its own, so a
    /// guesser who also knows one password cannot reset the address's count with it.
    pub fn succeeded(&self, account: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&format!("account:{account}"));
    }

    /// A slot for one argon2 computation, held until the permit drops.
    pub async fn hashing_slot(&self) -> Result<OwnedSemaphorePermit, Refusal> {
        match tokio::time::timeout(HASH_WAIT, self.hashing.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Refusal::Busy),
        }
    }
}

/// The wait after `count` failures when `free` go unpunished: none before the `free`-th, then
/// 1 s, 2 s, 4 s… capped.
fn backoff(count: u32, free: u32) -> Option<Duration> {
    let over = count.checked_sub(free)?;
    let factor = 1u32.checked_shl(over).unwrap_or(u32::MAX);
    Some(FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF))
}

/// The client address a login is counted against. The control plane only listens where the
/// appliance's own callers are (loopback by default), and the admin port's proxy is one of
/// them: the last `X-Forwarded-For` hop is the address that proxy saw. A local caller can set
/// the header to anything, which only picks its own bucket: the per-account backoff holds
/// whatever the header says.
pub fn client_source(headers: &HeaderMap) -> String {
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|hop| hop.trim().parse::<IpAddr>().ok())
        .map_or_else(|| "direct".to_owned(), |ip| ip.to_string())
}

/// Caller-chosen text as a log field: control characters escaped (no forged log lines, no
/// terminal escapes) and at most 64 characters kept.
pub fn log_field(text: &str) -> String {
    const MAX: usize = 64;
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_after_the_free_failures() {
        for (count, free, want) in [
            (1, 5, None),
            (4, 5, None),
            (5, 5, Some(1)),
            (6, 5, Some(2)),
            (8, 5, Some(8)),
            (30, 5, Some(900)),
            (u32::MAX, 5, Some(900)),
        ] {
            assert_eq!(
                backoff(count, free),
                want.map(Duration::from_secs),
                "{count}/{free}"
            );
        }
    }

    #[test]
    fn account_and_source_are_counted_apart() {
        let guard = LoginGuard::new(1);
        for _ in 0..ACCOUNT_FREE_FAILURES {
            assert_eq!(guard.check("alice", "10.0.0.1"), Ok(()));
            guard.failed("alice", "10.0.0.1");
        }
        assert!(matches!(
            guard.check("alice", "10.0.0.9"),
            Err(Refusal::Backoff(_))
        ));
        assert_eq!(guard.check("bob", "10.0.0.1"), Ok(()));
        guard.succeeded("alice");
        assert_eq!(guard.check("alice", "10.0.0.1"), Ok(()));
    }

    #[test]
    fn log_fields_are_escaped_and_short() {
        assert_eq!(log_field("alice"), "alice");
        assert_eq!(log_field("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        let long = "x".repeat(1000);
        assert_eq!(log_field(&long).chars().count(), 65);
    }

    #[test]
    fn source_is_the_last_forwarded_hop() {
        let mut headers = HeaderMap::new();
        assert_eq!(client_source(&headers), "direct");
        headers.insert("x-forwarded-for", "1.2.3.4, 10.0.0.7".parse().unwrap());
        assert_eq!(client_source(&headers), "10.0.0.7");
        headers.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(client_source(&headers), "direct");
    }
}

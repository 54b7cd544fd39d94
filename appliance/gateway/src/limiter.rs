//! Telegram's flood limits for outgoing calls, edits included (teloxide's Throttle adaptor does
//! not count edits): about one message a second per private chat, twenty a minute per group,
//! thirty a second in all. Each call waits for its slot; a 429 with `retry_after` is honoured by
//! the caller and pushes that chat's next slot back.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub private_interval: Duration,
    pub group_interval: Duration,
    pub global_interval: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            private_interval: Duration::from_millis(1000),
            group_interval: Duration::from_millis(3000),
            global_interval: Duration::from_millis(34),
        }
    }
}

#[derive(Default)]
struct Slots {
    global: Option<Instant>,
    chats: HashMap<i64, Instant>,
}

pub struct Limiter {
    limits: Limits,
    slots: Mutex<Slots>,
}

impl Limiter {
    pub fn new(limits: Limits) -> Limiter {
        Limiter {
            limits,
            slots: Mutex::default(),
        }
    }

    /// Reserves the next slot for `chat` and waits until it comes.
    pub async fn wait(&self, chat: i64, group: bool) {
        let at = self.reserve(chat, group, Instant::now());
        tokio::time::sleep_until(at).await;
    }

    /// The time the next call to `chat` may go out, reserved now so concurrent callers queue.
    fn reserve(&self, chat: i64, group: bool, now: Instant) -> Instant {
        let interval = if group {
            self.limits.group_interval
        } else {
            self.limits.private_interval
        };
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let chat_free = slots.chats.get(&chat).copied().unwrap_or(now).max(now);
        // Each call takes the next global slot; a call that must wait for its chat does not
        // push every other chat back with it.
        let global_slot = slots.global.unwrap_or(now).max(now);
        let at = chat_free.max(global_slot);
        slots.chats.insert(chat, at + interval);
        slots.global = Some(global_slot + self.limits.global_interval);
        if slots.chats.len() > 10_000 {
            slots.chats.retain(|_, free| *free > now);
        }
        at
    }

    /// Telegram said to wait: nothing goes to `chat` before then.
    pub fn back_off(&self, chat: i64, wait: Duration) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let until = Instant::now() + wait;
        let entry = slots.chats.entry(chat).or_insert(until);
        *entry = (*entry).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_per_chat_and_globally() {
        let limiter = Limiter::new(Limits::default());
        let now = Instant::now();
        let a1 = limiter.reserve(1, false, now);
        let a2 = limiter.reserve(1, false, now);
        let b1 = limiter.reserve(2, false, now);
        let g1 = limiter.reserve(3, true, now);
        let g2 = limiter.reserve(3, true, now);
        assert_eq!(a1, now);
        assert_eq!(
            a2 - a1,
            Duration::from_millis(1000),
            "one a second per chat"
        );
        assert_eq!(
            b1 - a1,
            Duration::from_millis(68),
            "another chat waits only for the global slot"
        );
        assert_eq!(
            g2 - g1,
            Duration::from_millis(3000),
            "twenty a minute per group"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn back_off_delays_the_chat() {
        let limiter = Limiter::new(Limits::default());
        limiter.back_off(7, Duration::from_secs(5));
        let at = limiter.reserve(7, false, Instant::now());
        assert!(at >= Instant::now() + Duration::from_secs(5));
    }
}

//! Which runs execute now: at most `global` at once and `per_user` of one user's. A user's
//! extra runs wait without holding a slot, so another user's run starts as soon as any slot is
//! free, even behind a hundred of the first user's; among waiting runs that may start, the one
//! whose user has the fewest running goes first (then the oldest).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Scheduler {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    global: usize,
    per_user: usize,
    running: usize,
    by_user: HashMap<Uuid, usize>,
    waiting: Vec<(u64, Uuid, oneshot::Sender<Slot>)>,
    next: u64,
}

/// A run's right to execute; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    user: Uuid,
    inner: Arc<Mutex<State>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let rejected = {
            let mut state = self.inner.lock().expect("scheduler lock");
            state.running -= 1;
            if let Some(n) = state.by_user.get_mut(&self.user) {
                *n -= 1;
                if *n == 0 {
                    state.by_user.remove(&self.user);
                }
            }
            dispatch(&mut state, &self.inner)
        };
        // Slots nobody took (their waiter went away) are dropped outside the lock.
        drop(rejected);
    }
}

impl Scheduler {
    pub fn new(global: usize, per_user: usize) -> Scheduler {
        Scheduler {
            inner: Arc::new(Mutex::new(State {
                global: global.max(1),
                per_user: per_user.max(1),
                running: 0,
                by_user: HashMap::new(),
                waiting: Vec::new(),
                next: 0,
            })),
        }
    }

    /// Waits for `user`'s turn.
    pub async fn admit(&self, user: Uuid) -> Slot {
        let (tx, rx) = oneshot::channel();
        let rejected = {
            let mut state = self.inner.lock().expect("scheduler lock");
            let order = state.next;
            state.next += 1;
            state.waiting.push((order, user, tx));
            dispatch(&mut state, &self.inner)
        };
        drop(rejected);
        rx.await
            .expect("a waiter is answered before its sender is dropped")
    }

    /// Runs executing now, and waiting.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.inner.lock().expect("scheduler lock");
        (state.running, state.waiting.len())
    }
}

/// Hands free slots to waiters that may start; gives back the slots whose waiter has gone.
fn dispatch(state: &mut State, inner: &Arc<Mutex<State>>) -> Vec<Slot> {
    let mut rejected = Vec::new();
    while state.running < state.global {
        let eligible = state
            .waiting
            .iter()
            .enumerate()
            .filter(|(_, (_, user, _))| {
                state.by_user.get(user).copied().unwrap_or(0) < state.per_user
            })
            .min_by_key(|(_, (order, user, _))| {
                (state.by_user.get(user).copied().unwrap_or(0), *order)
            })
            .map(|(i, _)| i);
        let Some(i) = eligible else { break };
        let (_, user, tx) = state.waiting.swap_remove(i);
        state.running += 1;
        *state.by_user.entry(user).or_default() += 1;
        let slot = Slot {
            user,
            inner: inner.clone(),
        };
        if let Err(slot) = tx.send(slot) {
            // Its drop must not run under the lock it takes.
            rejected.push(slot);
        }
    }
    rejected
}

//! Where a turn's events go.

use daarion_router_client::Event;
use tokio::sync::mpsc;

/// The client's end of a turn; `open` turns `false` once the client went away (the turn still
/// finishes and stores its answer).
pub struct Sink {
    tx: mpsc::Sender<Event>,
    open: bool,
}

impl Sink {
    pub fn new(tx: mpsc::Sender<Event>) -> Sink {
        Sink { tx, open: true }
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    /// `false` once the client went away.
    pub async fn emit(&mut self, event: Event) -> bool {
        if self.open && self.tx.send(event).await.is_err() {
            self.open = false;
        }
        self.open
    }
}

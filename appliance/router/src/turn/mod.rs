//! One turn of a conversation: admission (who, which agent, may they, is there quota), then the
//! model and its tools, with everything stored in memory as it happens.
//!
//! The steps, each in its own module: [`admission`] says yes or no before any model is called
//! and reserves the first call ([`quota`] holds the reservations and the settlement); the
//! [`tool_loop`] stores the question, builds the [`prompt`] (history fitted, the rest folded
//! into a [`summary`]), calls the model down the fallback [`chain`] and runs the tools it asks
//! for; the [`answer`] is stored, announced and sent. Events go to the client through a
//! [`sink`] that notices when it left.

mod admission;
mod admitted;
mod answer;
mod chain;
mod prompt;
pub(crate) mod quota;
mod sink;
mod summary;
mod tool_loop;

use std::time::Instant;

use daarion_router_client::Event;
use tokio::sync::mpsc;

pub use admission::{admit, reset};
pub(crate) use admission::{allowed_links, qualified};
pub use admitted::{Admission, Admitted};
pub(crate) use chain::call_model;
pub(crate) use sink::Sink;

use crate::{App, RouterError, metrics};

/// Runs an admitted turn to its end, sending its events to `tx`. Whatever happens, the user's
/// message and what was answered are stored, and the quota is settled.
pub async fn run(app: &App, mut turn: Admitted, tx: mpsc::Sender<Event>) {
    let started = Instant::now();
    let mut sink = sink::Sink::new(tx);
    sink.emit(Event::Start {
        trace_id: turn.trace_id.clone(),
        agent: turn.agent.id.clone(),
        user_id: turn.user_id,
        session_id: turn.session.id,
        versions: turn.versions.clone(),
    })
    .await;
    let mut spent = quota::Spent::default();
    let outcome = tool_loop::converse(app, &mut turn, &mut sink, &mut spent).await;
    quota::settle(&app.control, turn.user_id, turn.reserved, spent.as_usage()).await;
    let label = match &outcome {
        Ok(true) => "answered",
        Ok(false) => "interrupted",
        Err(RouterError::Refused(_)) => "refused",
        Err(_) => "failed",
    };
    metrics::TURNS.with_label_values(&[label]).inc();
    metrics::TURN_SECONDS.observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(_) => {}
        Err(RouterError::Refused(r)) => {
            sink.emit(Event::Refused {
                code: r.code.into(),
                reason: r.reason,
            })
            .await;
        }
        Err(e) => {
            let (_, code) = e.status_code();
            tracing::error!(error = %e, "turn failed");
            sink.emit(Event::Error {
                code: code.into(),
                message: e.public_message(),
                status: None,
            })
            .await;
        }
    }
}

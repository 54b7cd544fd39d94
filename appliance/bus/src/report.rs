//! What the operator sees of the bus: each stream's size and each durable consumer's lag.

use serde::Serialize;

use crate::topology::{CONSUMERS, STREAMS};
use crate::{Bus, BusError};

#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    /// The base name (`MESSAGES`), without the deployment's prefix.
    pub name: &'static str,
    pub messages: u64,
    pub bytes: u64,
    pub consumers: Vec<ConsumerReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsumerReport {
    pub name: &'static str,
    /// Messages stored but not yet delivered: the queue lag.
    pub pending: u64,
    /// Delivered, not yet acknowledged (in progress, or about to be redelivered).
    pub ack_pending: usize,
    pub redelivered: usize,
}

impl Bus {
    /// Streams of the topology and their consumers as the server sees them now. A stream or
    /// consumer that does not exist (yet) is left out, not an error: the report is for people.
    pub async fn report(&self) -> Result<Vec<StreamReport>, BusError> {
        let js = self.jetstream();
        let mut out = Vec::new();
        for spec in STREAMS {
            let Ok(mut stream) = js.get_stream(self.naming().stream(spec.name)).await else {
                continue;
            };
            let info = stream.info().await.map_err(|e| BusError::Stream {
                stream: spec.name.to_owned(),
                message: e.to_string(),
            })?;
            let (messages, bytes) = (info.state.messages, info.state.bytes);
            let mut consumers = Vec::new();
            for consumer in CONSUMERS.iter().filter(|c| c.stream == spec.name) {
                if let Ok(info) = stream.consumer_info(consumer.durable).await {
                    consumers.push(ConsumerReport {
                        name: consumer.durable,
                        pending: info.num_pending,
                        ack_pending: info.num_ack_pending,
                        redelivered: info.num_redelivered,
                    });
                }
            }
            out.push(StreamReport {
                name: spec.name,
                messages,
                bytes,
                consumers,
            });
        }
        Ok(out)
    }
}

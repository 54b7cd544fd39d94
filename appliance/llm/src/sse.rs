//! Turning a streamed HTTP body into lines, with a stall timeout between chunks. Both SSE
//! (`data: ...` lines) and NDJSON are line protocols.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use crate::LlmError;

pub(crate) fn lines(
    provider: String,
    body: impl Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
    stall: Duration,
) -> BoxStream<'static, Result<String, LlmError>> {
    struct State<S> {
        body: S,
        buffer: BytesMut,
        provider: String,
        stall: Duration,
        finished: bool,
    }
    let state = State {
        body: Box::pin(body),
        buffer: BytesMut::new(),
        provider,
        stall,
        finished: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(pos) = s.buffer.iter().position(|b| *b == b'\n') {
                let line = s.buffer.split_to(pos + 1);
                let text = String::from_utf8_lossy(&line[..pos])
                    .trim_end_matches('\r')
                    .to_owned();
                return Some((Ok(text), s));
            }
            if s.finished {
                if s.buffer.has_remaining() {
                    let rest = String::from_utf8_lossy(&s.buffer).into_owned();
                    s.buffer.clear();
                    return Some((Ok(rest), s));
                }
                return None;
            }
            match tokio::time::timeout(s.stall, s.body.next()).await {
                Err(_) => {
                    s.finished = true;
                    s.buffer.clear();
                    let error = LlmError::Stalled {
                        provider: s.provider.clone(),
                        after: s.stall,
                    };
                    return Some((Err(error), s));
                }
                Ok(Some(Ok(chunk))) => s.buffer.extend_from_slice(&chunk),
                Ok(Some(Err(e))) => {
                    s.finished = true;
                    s.buffer.clear();
                    let error = LlmError::Connect {
                        provider: s.provider.clone(),
                        message: e.to_string(),
                    };
                    return Some((Err(error), s));
                }
                Ok(None) => s.finished = true,
            }
        }
    })
    .boxed()
}

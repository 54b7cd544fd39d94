//! Reading a turn's Server-Sent Events back into [`Event`]s.

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

use crate::Event;

/// Splits an SSE byte stream into the events of its `data:` fields. Frames that are not an
/// event (keep-alive comments, a kind this build does not know) are skipped; a broken stream
/// ends the events, and the caller sees the turn end without its `message`.
///
/// Bytes are buffered until a frame is whole: a chunk may end inside a multi-byte character,
/// which decoded on its own would turn into replacement characters.
pub fn sse_events<S, E>(bytes: S) -> BoxStream<'static, Event>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: std::fmt::Display,
{
    futures::stream::unfold(
        (Box::pin(bytes), Vec::<u8>::new(), Vec::<Event>::new()),
        |(mut bytes, mut buffer, mut ready)| async move {
            loop {
                if !ready.is_empty() {
                    let next = ready.remove(0);
                    return Some((next, (bytes, buffer, ready)));
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => {
                        buffer.extend_from_slice(&chunk);
                        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
                            let frame: Vec<u8> = buffer.drain(..end + 2).collect();
                            let data: String = String::from_utf8_lossy(&frame)
                                .lines()
                                .filter_map(|l| l.strip_prefix("data:"))
                                .map(str::trim_start)
                                .collect();
                            if let Ok(event) = serde_json::from_str(&data) {
                                ready.push(event);
                            }
                        }
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "router stream broke off");
                        return None;
                    }
                    None => return None,
                }
            }
        },
    )
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_split_anywhere_still_make_events() {
        let wire = ": keep-alive\n\nevent: token\ndata: {\"type\":\"token\",\"text\":\"Hel\"}\n\nevent: token\ndata: {\"type\":\"token\",\"text\":\"lo, світе\"}\n\nevent: future\ndata: {\"type\":\"future\"}\n\n";
        // Cut into 7-byte pieces, so frames and even UTF-8 runs straddle chunks.
        let chunks: Vec<Result<bytes::Bytes, std::convert::Infallible>> = wire
            .as_bytes()
            .chunks(7)
            .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
            .collect();
        let events: Vec<Event> = sse_events(futures::stream::iter(chunks)).collect().await;
        assert_eq!(
            events,
            [
                Event::Token { text: "Hel".into() },
                Event::Token {
                    text: "lo, світе".into()
                }
            ]
        );
    }

    #[tokio::test]
    async fn a_broken_stream_ends_the_events() {
        let chunks = vec![
            Ok(bytes::Bytes::from_static(
                b"data: {\"type\":\"ignored\",\"reason\":\"x\"}\n\n",
            )),
            Err("connection reset"),
            Ok(bytes::Bytes::from_static(
                b"data: {\"type\":\"token\",\"text\":\"never\"}\n\n",
            )),
        ];
        let events: Vec<Event> = sse_events(futures::stream::iter(chunks)).collect().await;
        assert_eq!(events, [Event::Ignored { reason: "x".into() }]);
    }
}

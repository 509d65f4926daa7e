//! Response bodies: whole objects as the store's own `Bytes` chunks (never copied), or an
//! object still being produced, streamed chunk by chunk as the segmenter emits them.

use crate::store::{ObjectStream, StoreError};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// A response body.
#[derive(Debug)]
pub enum Body {
    /// Known chunks; the length is exact.
    Chunks(VecDeque<Bytes>),
    /// Chunks as they are produced. An `Err` aborts the response, so a client sees a torn
    /// body (an HTTP/1.1 chunked body without its last chunk, an HTTP/2 reset), never a
    /// short one that looks complete.
    Live(mpsc::Receiver<Result<Bytes, StoreError>>),
}

impl Body {
    pub fn empty() -> Self {
        Self::Chunks(VecDeque::new())
    }

    pub fn full(b: impl Into<Bytes>) -> Self {
        Self::Chunks(VecDeque::from([b.into()]))
    }

    /// Streams `object` from its first chunk, waiting for chunks still being produced.
    pub fn live(mut object: ObjectStream) -> Self {
        // A few chunks of slack; the reader task waits when the viewer is slower.
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            loop {
                // A viewer that leaves ends the wait at once, not at the next chunk.
                let next = tokio::select! {
                    next = object.next_chunk() => next,
                    () = tx.closed() => break,
                };
                let stop = !matches!(next, Ok(Some(_)));
                let item = match next {
                    Ok(Some(c)) => Ok(c),
                    Ok(None) => break,
                    Err(e) => Err(e),
                };
                // The viewer left: stop reading.
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        Self::Live(rx)
    }

    /// Exact length, when known.
    pub fn known_len(&self) -> Option<u64> {
        match self {
            Self::Chunks(c) => Some(c.iter().map(|b| b.len() as u64).sum()),
            Self::Live(_) => None,
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = StoreError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StoreError>>> {
        match self.get_mut() {
            Self::Chunks(c) => Poll::Ready(c.pop_front().map(|b| Ok(Frame::data(b)))),
            Self::Live(rx) => rx.poll_recv(cx).map(|item| item.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Chunks(c) if c.is_empty())
    }

    fn size_hint(&self) -> SizeHint {
        match self.known_len() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// The bytes `start..=end` of `chunks`, as slices of the same buffers.
pub fn slice(chunks: &[Bytes], start: u64, end: u64) -> VecDeque<Bytes> {
    let mut out = VecDeque::new();
    let mut at = 0u64;
    for c in chunks {
        let (from, to) = (at, at + c.len() as u64);
        at = to;
        if to <= start || from > end {
            continue;
        }
        let lo = start.saturating_sub(from) as usize;
        let hi = ((end + 1).min(to) - from) as usize;
        out.push_back(c.slice(lo..hi));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_span_chunks_without_copying() {
        let chunks = [
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"defg"),
            Bytes::from_static(b"h"),
        ];
        let join = |v: VecDeque<Bytes>| v.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>();
        assert_eq!(join(slice(&chunks, 0, 7)), b"abcdefgh");
        assert_eq!(join(slice(&chunks, 2, 3)), b"cd");
        assert_eq!(join(slice(&chunks, 7, 7)), b"h");
        assert_eq!(join(slice(&chunks, 3, 6)), b"defg");
        let s = slice(&chunks, 1, 1);
        assert_eq!(s[0].as_ptr(), chunks[0][1..].as_ptr());
    }
}

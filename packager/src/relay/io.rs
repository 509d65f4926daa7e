//! Relay frames over any byte stream (a QUIC stream, or an in-memory pipe in tests): a
//! reader that yields whole frames and a writer that sends them.

use super::{Frame, FrameDecoder, Limits, RelayError};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadFail {
    #[error(transparent)]
    Frame(#[from] RelayError),
    #[error("stream read failed: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended inside a frame (`buffered` bytes of it had arrived).
    #[error("stream ended inside a frame ({buffered} bytes of it had arrived)")]
    Truncated { buffered: usize },
}

/// Reads whole frames from a byte stream.
pub struct FrameReader<R> {
    io: R,
    decoder: FrameDecoder,
    buf: Box<[u8]>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(io: R, limits: Limits) -> Self {
        Self {
            io,
            decoder: FrameDecoder::new(limits),
            buf: vec![0; 64 * 1024].into_boxed_slice(),
        }
    }

    /// The next frame; `None` when the stream ended cleanly between frames.
    pub async fn next(&mut self) -> Result<Option<Frame>, ReadFail> {
        loop {
            if let Some(f) = self.decoder.next_frame()? {
                return Ok(Some(f));
            }
            let n = self.io.read(&mut self.buf).await?;
            if n == 0 {
                return match self.decoder.buffered() {
                    0 => Ok(None),
                    buffered => Err(ReadFail::Truncated { buffered }),
                };
            }
            self.decoder.push(&self.buf[..n]);
        }
    }

    /// Stream offset of the next frame (for errors that say where).
    pub fn offset(&self) -> u64 {
        self.decoder.offset()
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.io
    }
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(io: &mut W, frame: &Frame) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    frame.encode(&mut out);
    io.write_all(&out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_cross_a_pipe_and_a_torn_stream_is_named() {
        let (mut a, b) = tokio::io::duplex(64);
        let frames = vec![
            Frame::ObjectHeader { sub: 7, seq: 1 },
            Frame::Chunk {
                data: bytes::Bytes::from(vec![9u8; 1000]),
            },
            Frame::ObjectEnd,
        ];
        let sent = frames.clone();
        let writer = tokio::spawn(async move {
            for f in &sent {
                write_frame(&mut a, f).await.unwrap();
            }
            // A torn last frame: a header promising more than is sent.
            a.write_all(&[0x24, 0x10]).await.unwrap();
        });
        let mut r = FrameReader::new(b, Limits::default());
        for f in &frames {
            assert_eq!(r.next().await.unwrap().as_ref(), Some(f));
        }
        writer.await.unwrap();
        assert!(matches!(r.next().await, Err(ReadFail::Truncated { buffered: 2 })));
    }
}

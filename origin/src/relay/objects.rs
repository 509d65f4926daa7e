//! One subscription: a rendition's window replayed from the edge's resume point, then its
//! live events, cut into objects (one part each, with the segment boundaries around it)
//! and written to one unidirectional stream per object as they are produced.

use super::{Shared, code};
use popcast_packager::relay::io::write_frame;
use popcast_packager::relay::{ErrorCode, Frame, Resume, chunk_header};
use popcast_packager::segmenter::Event;
use popcast_packager::store::Update;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc};

pub(super) struct Subscription {
    pub conn: quinn::Connection,
    pub ctl: mpsc::Sender<Frame>,
    pub node: String,
    pub shared: Arc<Shared>,
    pub sub: u64,
    pub event: String,
    pub rendition: String,
    pub resume: Option<Resume>,
}

pub(super) async fn run(s: Subscription) {
    let refuse = |code: ErrorCode, reason: String| Frame::SubscribeError {
        sub: s.sub,
        code,
        reason,
    };
    let Some(event) = s.shared.events.get(&s.event) else {
        let _ = s
            .ctl
            .send(refuse(ErrorCode::NotFound, format!("no event {:?}", s.event)))
            .await;
        return;
    };
    let store = event.store();
    let rendition = match store.rendition(&s.rendition) {
        Ok(r) => r,
        Err(e) => {
            let _ = s.ctl.send(refuse(ErrorCode::NotFound, e.to_string())).await;
            return;
        }
    };
    let after = s
        .resume
        .filter(|r| r.epoch == rendition.epoch())
        .map(|r| (r.msn, r.part));
    let mut follow = rendition.follow(after);
    let replay_to = follow.replay.iter().rev().find_map(|e| match e {
        Event::PartEnd { msn, part, .. } => Some((*msn, *part)),
        _ => None,
    });
    if s.ctl
        .send(Frame::SubscribeOk {
            sub: s.sub,
            epoch: follow.epoch,
            replay_to,
        })
        .await
        .is_err()
    {
        return;
    }
    tracing::debug!(event = %s.event, rendition = %s.rendition, resumed = after.is_some(), "subscribed");
    let mut out = Splitter {
        conn: s.conn.clone(),
        sub: s.sub,
        seq: 0,
        current: None,
        closing: false,
        inflight: Arc::new(Semaphore::new(s.shared.config.max_inflight_objects)),
        spare: None,
        abort_code: Arc::new(AtomicU64::new(ErrorCode::Superseded.to_code())),
        shared: s.shared.clone(),
        node: s.node.clone(),
        event: s.event.clone(),
        rendition: s.rendition.clone(),
    };
    let end = |code: ErrorCode, reason: &str| Frame::SubscriptionEnd {
        sub: s.sub,
        code,
        reason: reason.to_string(),
    };
    // The window is replayed as fast as the edge takes it: a long window (a late first viewer
    // of a long event) waits for room in flight rather than counting as lagging, which would
    // end the subscription and have the edge resubscribe into the same window forever. Live
    // events queued meanwhile wait in the store's backlog.
    let replay = std::mem::take(&mut follow.replay);
    let mut ended = follow.ended;
    let mut lagged = false;
    for e in replay {
        out.room().await;
        if out.push(e).is_err() {
            lagged = true;
            break;
        }
    }
    out.end_of_batch();
    while !ended && !lagged {
        match follow.updates.recv().await {
            Ok(Update::Events(batch)) => {
                lagged = batch.iter().any(|e| out.push(e.clone()).is_err());
                out.end_of_batch();
            }
            Ok(Update::Ended) => ended = true,
            Err(broadcast::error::RecvError::Lagged(_)) => lagged = true,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
    if lagged {
        tracing::info!(event = %s.event, rendition = %s.rendition, "edge lags its subscription");
        out.abort(ErrorCode::Lagging);
        let _ = s.ctl.send(end(ErrorCode::Lagging, "the edge fell behind")).await;
        return;
    }
    // A new session's store replaced this one (it is swapped before the old one ends): the
    // edge resubscribes and continues; otherwise the rendition really ended.
    if !Arc::ptr_eq(&event.store(), &store) {
        out.abort(ErrorCode::Superseded);
        let _ = s
            .ctl
            .send(end(ErrorCode::Superseded, "a new session replaced the media"))
            .await;
        return;
    }
    out.end_of_batch();
    if out.frame(Frame::Ended).is_ok() {
        let _ = out.frame(Frame::ObjectEnd);
        out.current = None;
    }
    let _ = s.ctl.send(end(ErrorCode::Ended, "the rendition ended")).await;
}

/// The edge has too many objects in flight.
struct Lagging;

/// Cuts a rendition's events into objects, each written by its own task.
struct Splitter {
    conn: quinn::Connection,
    sub: u64,
    seq: u64,
    current: Option<mpsc::UnboundedSender<Frame>>,
    /// The current object's part has ended; it closes before the next event, unless that
    /// is its segment's end, which the edge must apply with the part's end (see
    /// `end_of_batch`).
    closing: bool,
    inflight: Arc<Semaphore>,
    /// A permit taken ahead by [`Splitter::room`], used by the next object opened.
    spare: Option<OwnedSemaphorePermit>,
    /// The reset code of objects cut off unfinished.
    abort_code: Arc<AtomicU64>,
    shared: Arc<Shared>,
    node: String,
    event: String,
    rendition: String,
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Splitter {
    fn push(&mut self, e: Event) -> Result<(), Lagging> {
        let part_end = matches!(e, Event::PartEnd { .. });
        let segment_end = matches!(e, Event::SegmentEnd { .. });
        if !segment_end {
            self.close();
        }
        let frame = match e {
            Event::Init {
                data, part_target, ..
            } => Frame::Init {
                data,
                part_target_ns: nanos(part_target),
            },
            Event::SegmentStart {
                msn,
                discontinuity,
                program_date_time,
                ..
            } => Frame::SegmentStart {
                msn,
                discontinuity,
                program_date_time_ns: program_date_time.duration_since(UNIX_EPOCH).map_or(0, nanos),
            },
            Event::PartStart {
                msn,
                part,
                independent,
                ..
            } => {
                self.shared
                    .ledger
                    .record(&self.node, &self.event, &self.rendition, msn, part);
                Frame::PartStart {
                    msn,
                    part,
                    independent,
                }
            }
            Event::Chunk { data, .. } => Frame::Chunk { data },
            Event::PartEnd {
                msn, part, duration, ..
            } => Frame::PartEnd {
                msn,
                part,
                duration_ns: nanos(duration),
            },
            Event::SegmentEnd { msn, duration, .. } => Frame::SegmentEnd {
                msn,
                duration_ns: nanos(duration),
            },
        };
        self.frame(frame)?;
        if part_end {
            self.closing = true;
        } else if segment_end {
            self.close();
        }
        Ok(())
    }

    /// Closes the current object if its part has ended.
    fn close(&mut self) {
        if std::mem::take(&mut self.closing) {
            let _ = self.frame(Frame::ObjectEnd);
            self.current = None;
        }
    }

    /// A batch of the store's events has been pushed. The store applies a batch at once, so
    /// a part's end and its segment's end come in the same batch when they come together:
    /// an object still open for its segment's end is closed here.
    fn end_of_batch(&mut self) {
        self.close();
    }

    /// Waits until an object may be opened (one permit held ahead for the next push).
    async fn room(&mut self) {
        if self.spare.is_none() {
            self.spare = self.inflight.clone().acquire_owned().await.ok();
        }
    }

    /// Sends `frame` on the current object, opening one when none is open.
    fn frame(&mut self, frame: Frame) -> Result<(), Lagging> {
        if self.current.is_none() {
            let permit = match self.spare.take() {
                Some(p) => p,
                None => self.inflight.clone().try_acquire_owned().map_err(|_| Lagging)?,
            };
            let (tx, rx) = mpsc::unbounded_channel();
            let _ = tx.send(Frame::ObjectHeader {
                sub: self.sub,
                seq: self.seq,
            });
            self.seq += 1;
            tokio::spawn(write_object(
                self.conn.clone(),
                rx,
                permit,
                self.abort_code.clone(),
            ));
            self.current = Some(tx);
        }
        if let Some(tx) = &self.current {
            // A closed object (its writer failed: the connection is going) drops the frame;
            // the session's end follows.
            let _ = tx.send(frame);
        }
        Ok(())
    }

    /// Cuts off the objects in flight with `code`.
    fn abort(&mut self, code: ErrorCode) {
        self.abort_code.store(code.to_code(), Ordering::Relaxed);
        self.current = None;
        self.closing = false;
    }
}

/// Writes one object's frames as they come; finishes the stream after `ObjectEnd`, resets
/// it when the object is cut off before that.
async fn write_object(
    conn: quinn::Connection,
    mut rx: mpsc::UnboundedReceiver<Frame>,
    _permit: OwnedSemaphorePermit,
    abort_code: Arc<AtomicU64>,
) {
    let Ok(mut send) = conn.open_uni().await else {
        return;
    };
    let mut complete = false;
    while let Some(f) = rx.recv().await {
        let written = match f {
            // The payload goes out as the store's own buffer, beside its frame header.
            Frame::Chunk { data } => {
                let header = chunk_header(data.len());
                match send.write_chunk(header).await {
                    Ok(()) => send.write_chunk(data).await.map_err(std::io::Error::from),
                    Err(e) => Err(e.into()),
                }
            }
            other => {
                complete = matches!(other, Frame::ObjectEnd);
                write_frame(&mut send, &other).await
            }
        };
        if written.is_err() {
            return;
        }
        if complete {
            let _ = send.finish();
            return;
        }
    }
    let code_of_abort = ErrorCode::from_code(abort_code.load(Ordering::Relaxed));
    let _ = send.reset(code(code_of_abort));
}

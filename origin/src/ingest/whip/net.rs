//! The one UDP socket of all WHIP sessions: a tokio task that owns every session's sans-IO
//! WebRTC stack (str0m), routes each datagram to the session that accepts it, sends what
//! the stacks write, fires their timers, and hands media to each session's media task.

use super::depack::{Kind, Payload, SenderClock};
use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// What the socket task tells a session's media task.
#[derive(Debug)]
pub enum ToMedia {
    /// ICE and DTLS completed: media may flow.
    Connected,
    Media(Payload),
}

/// Orders for the socket task.
pub enum Cmd {
    Add {
        id: u64,
        rtc: Box<Rtc>,
        media: mpsc::Sender<ToMedia>,
        /// ICE and DTLS must complete by then.
        connect_by: Instant,
        added: oneshot::Sender<()>,
    },
    /// End a session (DELETE, a refused feed, an idle publisher).
    Remove { id: u64, why: String },
    /// Ask the publisher for a keyframe (PLI).
    Keyframe { id: u64 },
}

struct Session {
    rtc: Box<Rtc>,
    media: mpsc::Sender<ToMedia>,
    connect_by: Option<Instant>,
    kinds: Vec<(Mid, Kind)>,
    /// Payloads the media task could not take in time (it was busy): dropped and counted.
    dropped: u64,
    /// When the stack next wants its timer, as it last said.
    timeout: Option<Instant>,
    /// The last keyframe request sent for dropped video.
    last_pli: Option<Instant>,
}

/// The fewest time between two keyframe requests sent because video was dropped here.
const DROP_PLI_GAP: Duration = Duration::from_millis(500);

/// Datagrams larger than this are not WebRTC (the MTU is about 1 200-1 500 bytes).
const MAX_DATAGRAM: usize = 2_048;

/// Runs the socket until the command channel closes. `local` is the address sessions
/// advertised as their candidate: every datagram is handed to str0m as sent to it (the
/// socket may be bound to 0.0.0.0, or sit behind a 1:1 NAT).
pub async fn run(
    socket: UdpSocket,
    local: SocketAddr,
    mut cmds: mpsc::Receiver<Cmd>,
    stats: std::sync::Arc<super::WhipStats>,
) {
    let mut sessions: HashMap<u64, Session> = HashMap::new();
    // Which session took a peer's datagrams last: most datagrams skip the search.
    let mut by_peer: HashMap<SocketAddr, u64> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let next = sessions
            .values()
            .filter_map(|s| s.connect_by)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        // Each session's own timers are driven below; wake at the earliest.
        let mut wake = next;
        for s in sessions.values() {
            if let Some(t) = s.timeout {
                wake = wake.min(t);
            }
        }
        tokio::select! {
            cmd = cmds.recv() => {
                let Some(cmd) = cmd else { return };
                match cmd {
                    Cmd::Add { id, rtc, media, connect_by, added } => {
                        sessions.insert(id, Session { rtc, media, connect_by: Some(connect_by), kinds: Vec::new(), dropped: 0, timeout: None, last_pli: None });
                        let _ = added.send(());
                        drive(id, &mut sessions, &socket, &stats);
                    }
                    Cmd::Remove { id, why } => {
                        if let Some(s) = sessions.remove(&id) {
                            tracing::info!(session = id, dropped = s.dropped, "whip session ended: {why}");
                            close(s, &socket);
                        }
                        by_peer.retain(|_, v| *v != id);
                    }
                    Cmd::Keyframe { id } => {
                        if let Some(s) = sessions.get_mut(&id) {
                            s.request_keyframe();
                            stats.keyframe_requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            drive(id, &mut sessions, &socket, &stats);
                        }
                    }
                }
            }
            got = socket.recv_from(&mut buf) => {
                let (n, source) = match got {
                    Ok(x) => x,
                    Err(e) => {
                        // ICMP port unreachable from a gone peer surfaces here on Linux.
                        tracing::debug!(error = %e, "whip udp receive");
                        continue;
                    }
                };
                let now = Instant::now();
                let Ok(contents) = buf[..n].try_into() else {
                    continue; // not STUN, DTLS, RTP or RTCP
                };
                let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination: local, contents });
                let id = by_peer
                    .get(&source)
                    .copied()
                    .filter(|id| sessions.get(id).is_some_and(|s| s.rtc.accepts(&input)))
                    .or_else(|| sessions.iter().find(|(_, s)| s.rtc.accepts(&input)).map(|(id, _)| *id));
                let Some(id) = id else { continue };
                by_peer.insert(source, id);
                let s = sessions.get_mut(&id).expect("found above");
                if let Err(why) = guarded(|| s.rtc.handle_input(input)) {
                    end(id, &mut sessions, &socket, &format!("WebRTC input refused: {why}"));
                    continue;
                }
                drive(id, &mut sessions, &socket, &stats);
            }
            _ = tokio::time::sleep_until(wake.into()) => {
                let now = Instant::now();
                let ids: Vec<u64> = sessions.keys().copied().collect();
                for id in ids {
                    let Some(s) = sessions.get_mut(&id) else { continue };
                    if s.connect_by.is_some_and(|t| now >= t) {
                        end(id, &mut sessions, &socket, "ICE and DTLS did not complete in time");
                        continue;
                    }
                    if s.timeout.is_some_and(|t| t <= now) {
                        if let Err(why) = guarded(|| s.rtc.handle_input(Input::Timeout(now))) {
                            end(id, &mut sessions, &socket, &format!("WebRTC timer failed: {why}"));
                            continue;
                        }
                        drive(id, &mut sessions, &socket, &stats);
                    }
                }
            }
        }
        by_peer.retain(|_, id| sessions.contains_key(id));
    }
}

/// Runs one call into the WebRTC stack; a panic in it (a bug there, triggered by some
/// peer's bytes) ends that session only, not the socket task every session shares.
fn guarded<T>(f: impl FnOnce() -> Result<T, str0m::RtcError>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the WebRTC stack panicked on this session's input".into()),
    }
}

/// Ends a session the server gives up on, telling the publisher (RTCP BYE, DTLS close).
fn end(id: u64, sessions: &mut HashMap<u64, Session>, socket: &UdpSocket, why: &str) {
    if let Some(s) = sessions.remove(&id) {
        tracing::warn!(session = id, dropped = s.dropped, "whip session ended: {why}");
        close(s, socket);
    }
}

/// Sends a session's goodbye (RTCP BYE, DTLS close_notify) without waiting for replies,
/// so a publisher learns at once that it is no longer live.
fn close(mut s: Session, socket: &UdpSocket) {
    if guarded(|| s.rtc.close()).is_err() {
        return;
    }
    // Bounded: the drain is a handful of datagrams.
    for _ in 0..64 {
        match guarded(|| s.rtc.poll_output()) {
            Ok(Output::Transmit(t)) => {
                let _ = socket.try_send_to(&t.contents, t.destination);
            }
            Ok(Output::Event(_)) => {}
            Ok(Output::Timeout(_)) | Err(_) => break,
        }
    }
}

/// Polls a session's stack until it waits: sends its datagrams, passes its media on.
fn drive(id: u64, sessions: &mut HashMap<u64, Session>, socket: &UdpSocket, stats: &super::WhipStats) {
    let Some(s) = sessions.get_mut(&id) else { return };
    let mut ended: Option<String> = None;
    loop {
        match guarded(|| s.rtc.poll_output()) {
            Ok(Output::Timeout(t)) => {
                s.timeout = Some(t);
                break;
            }
            Ok(Output::Transmit(t)) => {
                // Non-blocking: a full send buffer drops the datagram, as the network would.
                let _ = socket.try_send_to(&t.contents, t.destination);
            }
            Ok(Output::Event(e)) => match e {
                Event::Connected => {
                    s.connect_by = None;
                    tracing::info!(session = id, "whip session connected (ICE and DTLS done)");
                    if s.media.try_send(ToMedia::Connected).is_err() {
                        ended = Some("its media task is gone".into());
                        break;
                    }
                }
                // Often passing (a network change): the media task ends a session whose
                // media stops for the idle timeout.
                Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                    tracing::info!(session = id, "whip session's ICE connection unsteady");
                }
                Event::MediaAdded(m) => {
                    let kind = match m.kind {
                        MediaKind::Video => Kind::Video,
                        MediaKind::Audio => Kind::Audio,
                    };
                    s.kinds.push((m.mid, kind));
                }
                Event::MediaData(d) => {
                    let Some(kind) = s.kinds.iter().find(|(m, _)| *m == d.mid).map(|(_, k)| *k) else {
                        continue;
                    };
                    let payload = Payload {
                        kind,
                        rtp: d.time.numer(),
                        data: Bytes::from_owner(d.data),
                        at: d.network_time,
                        // When its first packet came in: str0m's reassembly and reordering
                        // wait count toward the latency measured from here.
                        arrived: SystemTime::now()
                            .checked_sub(Instant::now().saturating_duration_since(d.network_time))
                            .unwrap_or_else(SystemTime::now),
                        sender: d.last_sender_info.map(|i| SenderClock {
                            ntp: i.ntp_time,
                            rtp: i.rtp_time.numer(),
                        }),
                    };
                    match s.media.try_send(ToMedia::Media(payload)) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            s.dropped += 1;
                            stats.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            // Video after a dropped frame decodes wrong until a keyframe.
                            if kind == Kind::Video && s.last_pli.is_none_or(|t| t.elapsed() >= DROP_PLI_GAP) {
                                s.last_pli = Some(Instant::now());
                                s.request_keyframe();
                                stats
                                    .keyframe_requests
                                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            ended = Some("its media task is gone".into());
                            break;
                        }
                    }
                }
                _ => {}
            },
            Err(why) => {
                ended = Some(format!("WebRTC failed: {why}"));
                break;
            }
        }
    }
    if let Some(why) = ended {
        end(id, sessions, socket, &why);
    }
}

impl Session {
    fn request_keyframe(&mut self) {
        let Some(mid) = self
            .kinds
            .iter()
            .find(|(_, k)| *k == Kind::Video)
            .map(|(m, _)| *m)
        else {
            return;
        };
        if let Some(mut w) = self.rtc.writer(mid) {
            // PLI where negotiated (browsers, OBS), else FIR.
            if w.request_keyframe(None, KeyframeRequestKind::Pli).is_err() {
                let _ = w.request_keyframe(None, KeyframeRequestKind::Fir);
            }
        }
    }
}

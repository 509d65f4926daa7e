//! One viewing session, headless: joins from a multivariant (or `/play`) URL at the live
//! edge less the server's part hold-back, fetches the init segment and then part after part
//! (listed parts at once, the preload-hinted part as it is produced, blocking reloads with
//! delta updates in between), feeds the playback model on the real clock, chooses the
//! rendition at segment boundaries, sends CMCD, and returns what the viewer experienced.

use crate::abr::{Abr, AbrConfig};
use crate::cmcd::{Cmcd, ObjectType, with_query};
use crate::http::{Client, FetchError, HttpVersion, resolve};
use crate::model::{Model, ModelConfig, State};
use crate::playlist::{Limits, MediaPlaylist, Multivariant, PlaylistError, parse_media, parse_multivariant};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How CMCD travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CmcdMode {
    #[default]
    Off,
    Query,
    Headers,
}

/// What a session does.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Multivariant playlist URL (redirects such as `/play/{event}` are followed), or a media
    /// playlist URL.
    pub url: String,
    /// How long to watch.
    pub watch: Duration,
    pub http: HttpVersion,
    pub model: ModelConfig,
    pub abr: AbrConfig,
    /// Play only this variant (index in the multivariant playlist) instead of choosing.
    pub fixed_variant: Option<usize>,
    pub cmcd: CmcdMode,
    /// CMCD session id (`sid`) and content id (`cid`).
    pub session_id: String,
    pub content_id: Option<String>,
    /// Read bodies no faster than this many bytes per second (a slow network).
    pub pace: Option<u64>,
    pub request_timeout: Duration,
    pub limits: Limits,
    /// Keep per-part records (for checks of the latency figure).
    pub record_parts: bool,
    /// Roots trusted for `https://` (none: https URLs fail).
    pub roots: Option<rustls::RootCertStore>,
    /// QoE beacons (with `session_id` as their `sid`); `None`: none are sent.
    pub beacon: Option<crate::beacon::BeaconConfig>,
}

impl SessionConfig {
    pub fn new(url: impl Into<String>, watch: Duration) -> Self {
        Self {
            url: url.into(),
            watch,
            http: HttpVersion::Http1,
            model: ModelConfig::default(),
            abr: AbrConfig::default(),
            fixed_variant: None,
            cmcd: CmcdMode::Off,
            session_id: String::new(),
            content_id: None,
            pace: None,
            request_timeout: Duration::from_secs(10),
            limits: Limits::default(),
            record_parts: false,
            roots: None,
            beacon: None,
        }
    }
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{url}: {source}")]
    Playlist { url: String, source: PlaylistError },
    #[error("{0}: the playlist has no segments or parts to start from")]
    Empty(String),
    #[error("variant {0} does not exist")]
    NoVariant(usize),
}

/// A part the session appended, when `record_parts` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct PartRecord {
    pub url: String,
    /// Where it starts on the session's media timeline.
    pub media_start: Duration,
    pub duration: Duration,
    /// Its program date-time (from the playlist).
    pub date_time: Option<SystemTime>,
    pub body: bytes::Bytes,
}

/// One live-latency sample.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySample {
    pub wall: SystemTime,
    pub latency: Duration,
    /// The playhead on the session's media timeline then.
    pub playhead: Duration,
}

/// What a session experienced.
#[derive(Debug, Clone, Default)]
pub struct Qoe {
    /// Session start → first media part received.
    pub first_media: Option<Duration>,
    /// Session start → first frame played.
    pub startup: Option<Duration>,
    pub stalls: u32,
    pub stall_time: Duration,
    /// Media played.
    pub played: Duration,
    /// Session start → end.
    pub session: Duration,
    pub latency: Vec<LatencySample>,
    pub switches: u32,
    pub requests: u64,
    pub bytes: u64,
    pub errors: u64,
    /// The last error, for reports.
    pub last_error: Option<String>,
    /// Variant index played at the end.
    pub variant: usize,
    pub ended: bool,
    /// Responses by the protocol that carried them ("http/1.1", "h2", "h3").
    pub protocols: std::collections::BTreeMap<&'static str, u64>,
    pub parts: Vec<PartRecord>,
    /// What became of the session's beacons (all zero when it sent none).
    pub beacons: crate::beacon::BeaconStats,
}

impl Qoe {
    /// The `q`-quantile (0..=1) of the latency samples, in seconds.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        let mut v: Vec<f64> = self.latency.iter().map(|s| s.latency.as_secs_f64()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let i = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        Some(v[i])
    }
}

/// Where the next object is: segment `msn`, part `part` (0 with no parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pos {
    msn: u64,
    part: u64,
}

struct Run {
    cfg: SessionConfig,
    client: Client,
    started: Instant,
    model: Model,
    abr: Abr,
    qoe: Qoe,
    last_latency_at: Option<Instant>,
    starved: bool,
    beacons: Option<BeaconRun>,
}

/// A session's beacons under way.
struct BeaconRun {
    event: String,
    every: Duration,
    tx: tokio::sync::mpsc::UnboundedSender<crate::beacon::Beacon>,
    task: tokio::task::JoinHandle<crate::beacon::BeaconStats>,
    last: Option<Instant>,
    seq: u64,
    /// Stalls, latency samples and errors already reported.
    stalls_sent: usize,
    latency_sent: usize,
    errors_sent: u64,
}

/// Every 250 ms at most, one latency sample.
const LATENCY_EVERY: Duration = Duration::from_millis(250);

impl Run {
    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn cmcd_keys(&self, ot: ObjectType, br: Option<u64>, d: Option<Duration>) -> Cmcd {
        Cmcd {
            br: br.map(|b| b / 1000),
            bl: Some(self.model.buffer().as_millis() as u64),
            bs: self.starved,
            cid: self.cfg.content_id.clone(),
            d: d.map(|d| d.as_millis() as u64),
            mtp: self.abr.estimate().map(|e| (e / 1000.0) as u64),
            nor: None,
            ot: Some(ot),
            pr: Some(self.model.rate()),
            sid: (!self.cfg.session_id.is_empty()).then(|| self.cfg.session_id.clone()),
            live: true,
            su: self.model.state() != State::Playing,
            tb: None,
        }
    }

    /// Sends a beacon with the session's figures at `now` (the last one when `ended`).
    fn beacon(&mut self, now: Duration, ended: bool) {
        let Some(b) = self.beacons.as_mut() else { return };
        let ms = |d: Duration| d.as_millis() as u64;
        let startup = self.model.first_play();
        let stalls = self.model.stalls();
        let stall_events: Vec<(u64, u64)> = stalls
            .iter()
            .skip(b.stalls_sent)
            .filter(|s| ended || s.end.is_some())
            .take(if ended { usize::MAX } else { 64 })
            .map(|s| (ms(s.start), ms(s.end.unwrap_or(now).saturating_sub(s.start))))
            .collect();
        b.stalls_sent += stall_events.len();
        let new_errors = self.qoe.errors.saturating_sub(b.errors_sent);
        let base = crate::beacon::Beacon {
            event: b.event.clone(),
            sid: self.cfg.session_id.clone(),
            seq: 0,
            startup_ms: startup.map(ms),
            watch_ms: startup.map(|s| ms(now.saturating_sub(s))),
            stalls: stalls.len() as u64,
            stall_ms: ms(self.model.stall_time(now)),
            stall_events: Vec::new(),
            latency_ms: Vec::new(),
            errors: Vec::new(),
            ended: false,
        };
        // At most 64 of each list per beacon (the edge's limit): what is left goes next.
        let mut events = stall_events;
        let mut errors = new_errors.min(64);
        b.errors_sent += errors;
        loop {
            let latency: Vec<u64> = self.qoe.latency[b.latency_sent..]
                .iter()
                .take(64)
                .map(|l| ms(l.latency))
                .collect();
            b.latency_sent += latency.len();
            b.seq += 1;
            let more = b.latency_sent < self.qoe.latency.len() || events.len() > 64;
            let beacon = crate::beacon::Beacon {
                seq: b.seq,
                stall_events: events.drain(..events.len().min(64)).collect(),
                latency_ms: latency,
                errors: (0..std::mem::take(&mut errors))
                    .map(|_| ("fetch_error".to_string(), false))
                    .collect(),
                ended: ended && !more,
                ..base.clone()
            };
            let _ = b.tx.send(beacon);
            if !more || !ended {
                break;
            }
        }
        b.last = Some(Instant::now());
    }

    /// GET with CMCD as configured; errors are counted.
    async fn get(
        &mut self,
        url: &str,
        ot: ObjectType,
        br: Option<u64>,
        d: Option<Duration>,
    ) -> Result<crate::http::Fetched, FetchError> {
        let (url, headers) = match self.cfg.cmcd {
            CmcdMode::Off => (url.to_string(), Vec::new()),
            CmcdMode::Query => (with_query(url, &self.cmcd_keys(ot, br, d)), Vec::new()),
            CmcdMode::Headers => (url.to_string(), self.cmcd_keys(ot, br, d).to_headers()),
        };
        let r = self.client.get(&url, &headers).await;
        match &r {
            Ok(f) => {
                *self.qoe.protocols.entry(f.protocol).or_default() += 1;
                self.qoe.bytes += f.body.len() as u64;
                self.starved = false;
            }
            Err(e) => {
                self.qoe.errors += 1;
                self.qoe.last_error = Some(e.to_string());
            }
        }
        r
    }

    async fn media_playlist(
        &mut self,
        url: &str,
        want: Option<Pos>,
        skip: bool,
    ) -> Result<MediaPlaylist, SessionError> {
        let mut q = String::new();
        if let Some(p) = want {
            q = format!("_HLS_msn={}&_HLS_part={}", p.msn, p.part);
        }
        if skip {
            q.push_str(if q.is_empty() {
                "_HLS_skip=YES"
            } else {
                "&_HLS_skip=YES"
            });
        }
        let full = if q.is_empty() {
            url.to_string()
        } else if url.contains('?') {
            format!("{url}&{q}")
        } else {
            format!("{url}?{q}")
        };
        let f = self.get(&full, ObjectType::Manifest, None, None).await?;
        parse_media(&String::from_utf8_lossy(&f.body), &self.cfg.limits)
            .map_err(|source| SessionError::Playlist { url: full, source })
    }

    fn observe(&mut self) {
        let now = self.now();
        self.model.tick(now);
        if self.model.state() == State::Stalled {
            self.starved = true;
        }
        let beacon_due = self.beacons.as_ref().is_some_and(|b| {
            self.model.first_play().is_some() && b.last.is_none_or(|t| t.elapsed() >= b.every)
        });
        if beacon_due {
            self.beacon(now, false);
        }
        let due = self.last_latency_at.is_none_or(|t| t.elapsed() >= LATENCY_EVERY);
        if due && self.model.state() == State::Playing {
            let wall = SystemTime::now();
            self.model.steer(now, wall);
            if let Some(latency) = self.model.latency(wall) {
                self.qoe.latency.push(LatencySample {
                    wall,
                    latency,
                    playhead: self.model.played(),
                });
                self.last_latency_at = Some(Instant::now());
            }
        }
    }
}

/// The position `hold_back` of media before the end of `p`, moved back to the nearest
/// independent part (or segment start).
fn start_position(p: &MediaPlaylist, hold_back: Duration) -> Option<Pos> {
    let mut remaining = hold_back;
    for s in p.segments.iter().rev() {
        if s.parts.is_empty() {
            let d = s.media_duration();
            if remaining <= d || s.msn == p.segments[0].msn {
                return Some(Pos { msn: s.msn, part: 0 });
            }
            remaining -= d;
            continue;
        }
        for (i, part) in s.parts.iter().enumerate().rev() {
            if remaining.is_zero() && (part.independent || i == 0) {
                return Some(Pos {
                    msn: s.msn,
                    part: i as u64,
                });
            }
            remaining = remaining.saturating_sub(part.duration);
            if remaining.is_zero() && (part.independent || i == 0) {
                return Some(Pos {
                    msn: s.msn,
                    part: i as u64,
                });
            }
        }
    }
    p.segments.first().map(|s| Pos { msn: s.msn, part: 0 })
}

/// The media listed from `pos` to the end of `p` (complete parts and segments).
fn listed_from(p: &MediaPlaylist, pos: Pos) -> Duration {
    p.segments
        .iter()
        .filter(|s| s.msn >= pos.msn)
        .map(|s| {
            if s.msn == pos.msn && !s.parts.is_empty() {
                s.parts.iter().skip(pos.part as usize).map(|p| p.duration).sum()
            } else {
                s.media_duration()
            }
        })
        .sum()
}

/// The object at `pos` in `p`: (URL relative to the playlist, media duration, its date-time,
/// whether it is the preload hint (not yet complete)); `None` when `p` does not reach it.
fn object_at(
    p: &MediaPlaylist,
    pos: Pos,
    parts: bool,
) -> Option<(String, Option<Duration>, Option<SystemTime>)> {
    let s = p.segment(pos.msn);
    if parts {
        if let Some(s) = s {
            if let Some(part) = s.parts.get(pos.part as usize) {
                let before: Duration = s.parts[..pos.part as usize].iter().map(|p| p.duration).sum();
                return Some((
                    part.uri.clone(),
                    Some(part.duration),
                    s.program_date_time.map(|t| t + before),
                ));
            }
        }
        // Not listed yet: the preload hint, when it is exactly this part.
        let hint = p.preload_hint.as_ref().filter(|h| h.kind == "PART")?;
        return (p.next_part() == Some((pos.msn, pos.part))).then(|| (hint.uri.clone(), None, None));
    }
    let s = s.filter(|s| s.is_complete())?;
    Some((s.uri.clone()?, s.duration, s.program_date_time))
}

/// The position after `pos` in `p`.
fn advance(p: &MediaPlaylist, pos: Pos, parts: bool) -> Pos {
    if !parts {
        return Pos {
            msn: pos.msn + 1,
            part: 0,
        };
    }
    match p.segment(pos.msn) {
        Some(s) if s.is_complete() && pos.part + 1 >= s.parts.len() as u64 => Pos {
            msn: pos.msn + 1,
            part: 0,
        },
        _ => Pos {
            msn: pos.msn,
            part: pos.part + 1,
        },
    }
}

/// Watches `cfg.url` for `cfg.watch` and reports what the viewer experienced. Errors after
/// the start are counted in the report and recovered from (a fresh reload, a jump back to the
/// live edge when the window moved past the player), as players do.
pub async fn watch(cfg: SessionConfig) -> Result<Qoe, SessionError> {
    let mut client = Client::new(cfg.http);
    client.pace = cfg.pace;
    if let Some(r) = cfg.roots.clone() {
        client.trust(r);
    }
    client.timeout = cfg.request_timeout;
    let mut run = Run {
        model: Model::new(cfg.model.clone()),
        abr: Abr::new(cfg.abr),
        cfg,
        client,
        started: Instant::now(),
        qoe: Qoe::default(),
        last_latency_at: None,
        starved: false,
        beacons: None,
    };
    let until = run.started + run.cfg.watch;
    // The multivariant playlist (or a media playlist given directly).
    let first = run
        .get(&run.cfg.url.clone(), ObjectType::Manifest, None, None)
        .await?;
    if let Some(b) = run.cfg.beacon.clone() {
        let url = b
            .url
            .clone()
            .unwrap_or_else(|| crate::beacon::default_url(&first.url));
        let (tx, task) = crate::beacon::spawn(url, run.cfg.http, run.cfg.roots.clone());
        run.beacons = Some(BeaconRun {
            event: b.event,
            every: b.every,
            tx,
            task,
            last: None,
            seq: 0,
            stalls_sent: 0,
            latency_sent: 0,
            errors_sent: 0,
        });
    }
    let text = String::from_utf8_lossy(&first.body).into_owned();
    let (variants, mut variant): (Vec<(String, u64)>, usize) =
        match parse_multivariant(&text, &run.cfg.limits) {
            Ok(Multivariant { variants, .. }) => {
                let list: Vec<(String, u64)> = variants
                    .iter()
                    .map(|v| (resolve(&first.url, &v.uri), v.bandwidth))
                    .collect();
                let i = run.cfg.fixed_variant.unwrap_or(0);
                if i >= list.len() {
                    return Err(SessionError::NoVariant(i));
                }
                (list, i)
            }
            Err(PlaylistError::Missing(_)) if text.contains("#EXT-X-TARGETDURATION") => {
                (vec![(first.url.clone(), 0)], 0)
            }
            Err(source) => {
                return Err(SessionError::Playlist {
                    url: first.url,
                    source,
                });
            }
        };
    let bandwidths: Vec<u64> = variants.iter().map(|v| v.1).collect();
    let mut media_url = variants[variant].0.clone();
    let mut pl = run.media_playlist(&media_url, None, false).await?;
    let parts = pl.part_target.is_some();
    let hold_back = pl
        .server_control
        .part_hold_back
        .filter(|_| parts)
        .or(pl.server_control.hold_back)
        .unwrap_or(pl.target_duration * 3);
    let mut pos = start_position(&pl, hold_back).ok_or_else(|| SessionError::Empty(media_url.clone()))?;
    // Decode from the independent part, play from the hold-back point after it.
    run.model
        .start_at(listed_from(&pl, pos).saturating_sub(hold_back));
    let mut init: Option<String> = None;

    while Instant::now() < until {
        run.observe();
        // Rendition choice at a segment boundary.
        if pos.part == 0 && run.cfg.fixed_variant.is_none() && bandwidths.len() > 1 {
            let next = run.abr.choose(&bandwidths, variant, run.model.buffer());
            if next != variant {
                variant = next;
                media_url = variants[variant].0.clone();
                run.qoe.switches += 1;
                init = None;
                match run.media_playlist(&media_url, Some(pos), false).await {
                    Ok(p) => pl = p,
                    Err(_) => continue,
                }
            }
        }
        // The init segment in force.
        let map = pl
            .segment(pos.msn)
            .and_then(|s| s.map.clone())
            .or_else(|| pl.segments.iter().rev().find_map(|s| s.map.clone()));
        if let Some(m) = map.map(|m| resolve(&media_url, &m)) {
            if init.as_deref() != Some(m.as_str()) {
                match run.get(&m, ObjectType::Init, None, None).await {
                    Ok(_) => init = Some(m),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
        }
        let Some((uri, duration, date_time)) = object_at(&pl, pos, parts) else {
            if pl.ended {
                run.model.end_of_stream(run.now());
                run.qoe.ended = true;
                // Play out what is buffered.
                let rest = run.model.buffer().div_f64(run.model.rate().max(0.1));
                tokio::time::sleep_until((Instant::now() + rest).min(until)).await;
                break;
            }
            // Not there yet: a blocking reload for it (delta when the server allows).
            let skip = pl.server_control.can_skip_until.is_some();
            let want = pl.server_control.can_block_reload.then_some(pos);
            let before = Instant::now();
            match run.media_playlist(&media_url, want, skip).await {
                Ok(next) => match pl.merge_delta(next) {
                    Ok(merged) => pl = merged,
                    Err(_) => {
                        if let Ok(full) = run.media_playlist(&media_url, None, false).await {
                            pl = full;
                        }
                    }
                },
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            if want.is_none() && before.elapsed() < pl.target_duration / 2 {
                tokio::time::sleep(pl.part_target.unwrap_or(pl.target_duration / 2)).await;
            }
            // Fell behind the window: back to the live edge.
            if pl.segments.first().is_some_and(|s| s.msn > pos.msn) {
                run.qoe.errors += 1;
                run.qoe.last_error = Some(format!("fell behind the playlist window at {}", pos.msn));
                if let Some(p) = start_position(&pl, hold_back) {
                    pos = p;
                }
            }
            continue;
        };
        let url = resolve(&media_url, &uri);
        let hinted = duration.is_none();
        let br = bandwidths.get(variant).copied().filter(|b| *b > 0);
        let fetched = match run.get(&url, ObjectType::Video, br, duration).await {
            Ok(f) => f,
            Err(e) => {
                if matches!(e.status(), Some(404 | 410)) {
                    if let Ok(full) = run.media_playlist(&media_url, None, false).await {
                        pl = full;
                        if pl.segments.first().is_some_and(|s| s.msn > pos.msn) {
                            if let Some(p) = start_position(&pl, hold_back) {
                                pos = p;
                            }
                        }
                    }
                } else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        // A hinted part: its duration and date come with the playlist that lists it, which
        // answers at once now that it is complete.
        let (duration, date_time) = match duration {
            Some(d) => (d, date_time),
            None => {
                let listed = run
                    .media_playlist(
                        &media_url,
                        pl.server_control.can_block_reload.then_some(pos),
                        pl.server_control.can_skip_until.is_some(),
                    )
                    .await;
                match listed.map(|n| pl.merge_delta(n)) {
                    Ok(Ok(merged)) => pl = merged,
                    _ => match run.media_playlist(&media_url, None, false).await {
                        Ok(full) => pl = full,
                        Err(_) => continue,
                    },
                }
                match object_at(&pl, pos, parts) {
                    Some((_, Some(d), t)) => (d, t),
                    _ => continue,
                }
            }
        };
        run.abr
            .sample(fetched.body.len() as u64, fetched.transfer, hinted, duration);
        let now = run.now();
        run.qoe.first_media.get_or_insert(now);
        let start = run.model.played() + run.model.buffer();
        run.model.append(now, duration, date_time);
        if run.cfg.record_parts {
            run.qoe.parts.push(PartRecord {
                url,
                media_start: start,
                duration,
                date_time,
                body: fetched.body.clone(),
            });
        }
        pos = advance(&pl, pos, parts);
    }
    let end = run.now();
    run.model.tick(end);
    run.qoe.startup = run.model.first_play();
    run.qoe.stalls = run.model.stalls().len() as u32;
    run.qoe.stall_time = run.model.stall_time(end);
    run.qoe.played = run.model.played();
    run.qoe.session = end;
    run.qoe.requests = run.client.requests;
    run.qoe.variant = variant;
    // The last beacon carries exactly the figures this report gives.
    run.beacon(end, true);
    if let Some(b) = run.beacons.take() {
        drop(b.tx);
        if let Ok(Ok(stats)) = tokio::time::timeout(Duration::from_secs(10), b.task).await {
            run.qoe.beacons = stats;
        }
    }
    Ok(run.qoe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playlist;

    const LIVE: &str = "#EXTM3U
#EXT-X-TARGETDURATION:1
#EXT-X-PART-INF:PART-TARGET=0.2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.6
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T04:22:54.000Z
#EXT-X-PART:DURATION=0.2,URI=\"10.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.2,URI=\"10.1.m4s\"
#EXT-X-PART:DURATION=0.2,URI=\"10.2.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.2,URI=\"10.3.m4s\"
#EXT-X-PART:DURATION=0.2,URI=\"10.4.m4s\"
#EXTINF:1.0,
10.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-24T04:22:55.000Z
#EXT-X-PART:DURATION=0.2,URI=\"11.0.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"11.1.m4s\"
";

    #[test]
    fn joins_at_the_hold_back_on_an_independent_part_and_walks_forward() {
        let p = playlist::parse_media(LIVE, &Limits::default()).unwrap();
        // 0.6 s back from the end (11.0's end) is inside 10.3; the independent part at or
        // before it is 10.2.
        assert_eq!(
            start_position(&p, Duration::from_millis(600)),
            Some(Pos { msn: 10, part: 2 })
        );
        assert_eq!(
            start_position(&p, Duration::from_secs(60)),
            Some(Pos { msn: 10, part: 0 })
        );
        // From 10.2: 10.2, 10.3, 10.4 and 11.0 are listed, 0.8 s; play from 0.2 s in.
        assert_eq!(
            listed_from(&p, Pos { msn: 10, part: 2 }),
            Duration::from_millis(800)
        );
        let (uri, d, t) = object_at(&p, Pos { msn: 10, part: 2 }, true).unwrap();
        assert_eq!((uri.as_str(), d), ("10.2.m4s", Some(Duration::from_millis(200))));
        assert_eq!(t, playlist::parse_date_time("2026-11-24T04:22:54.400Z"));
        assert_eq!(
            advance(&p, Pos { msn: 10, part: 4 }, true),
            Pos { msn: 11, part: 0 }
        );
        assert_eq!(
            advance(&p, Pos { msn: 11, part: 0 }, true),
            Pos { msn: 11, part: 1 }
        );
        // The hint stands in for the next part, and nothing beyond it.
        assert_eq!(
            object_at(&p, Pos { msn: 11, part: 1 }, true),
            Some(("11.1.m4s".into(), None, None))
        );
        assert_eq!(object_at(&p, Pos { msn: 11, part: 2 }, true), None);
    }

    #[test]
    fn latency_quantiles() {
        let mut q = Qoe::default();
        for ms in [900u64, 1000, 1100, 5000] {
            q.latency.push(LatencySample {
                wall: SystemTime::UNIX_EPOCH,
                latency: Duration::from_millis(ms),
                playhead: Duration::ZERO,
            });
        }
        assert_eq!(q.latency_quantile(0.5), Some(1.1));
        assert_eq!(q.latency_quantile(0.0), Some(0.9));
        assert_eq!(Qoe::default().latency_quantile(0.5), None);
    }
}

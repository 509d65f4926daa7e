//! The playback model of a headless player: media appended as it arrives, a playhead that
//! advances on the clock at the playback rate while media is buffered ahead of it, stalls
//! when the buffer runs dry, and what the session experienced (startup, stalls, live
//! latency). Sans-IO: every call takes the time since the session started.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

/// How the player starts, resumes and holds the live edge.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Media buffered before the first frame plays.
    pub startup_buffer: Duration,
    /// Media buffered before playback resumes after a stall.
    pub resume_buffer: Duration,
    /// Live catch-up: above `target + tolerance` of latency, play at up to `max_rate` (never
    /// with less than `min_buffer` ahead); `None`: always 1×.
    pub catch_up: Option<CatchUp>,
}

/// Live catch-up by playback rate, as hls.js's `maxLiveSyncPlaybackRate` does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CatchUp {
    pub target: Duration,
    pub tolerance: Duration,
    pub max_rate: f64,
    pub min_buffer: Duration,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            startup_buffer: Duration::from_millis(300),
            resume_buffer: Duration::from_millis(300),
            catch_up: None,
        }
    }
}

/// Where playback is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not played yet: buffering to start.
    Starting,
    Playing,
    /// Ran dry while playing; waiting for `resume_buffer`.
    Stalled,
    /// Played to the end of an ended stream.
    Ended,
}

/// One stall: from the instant the buffer ran dry to the instant playback resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    pub start: Duration,
    pub end: Option<Duration>,
}

/// The model. Media positions are seconds of media since the first appended.
#[derive(Debug, Clone)]
pub struct Model {
    cfg: ModelConfig,
    state: State,
    /// Last time the playhead was advanced to.
    now: Duration,
    buffered_end: Duration,
    playhead: Duration,
    rate: f64,
    /// (media position, the program date-time of the media there), oldest first.
    anchors: VecDeque<(Duration, SystemTime)>,
    first_play: Option<Duration>,
    stalls: Vec<Stall>,
    stream_ended: bool,
    /// Time spent at each rate above 1, for the record: (rate × time) − time.
    caught_up: Duration,
}

/// The most date-time anchors kept (older ones are behind the playhead anyway).
const MAX_ANCHORS: usize = 4096;

impl Model {
    pub fn new(cfg: ModelConfig) -> Self {
        Self {
            cfg,
            state: State::Starting,
            now: Duration::ZERO,
            buffered_end: Duration::ZERO,
            playhead: Duration::ZERO,
            rate: 1.0,
            anchors: VecDeque::new(),
            first_play: None,
            stalls: Vec::new(),
            stream_ended: false,
            caught_up: Duration::ZERO,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Media buffered ahead of the playhead.
    pub fn buffer(&self) -> Duration {
        self.buffered_end.saturating_sub(self.playhead)
    }

    /// Media played so far.
    pub fn played(&self) -> Duration {
        self.playhead
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn first_play(&self) -> Option<Duration> {
        self.first_play
    }

    pub fn stalls(&self) -> &[Stall] {
        &self.stalls
    }

    /// Total time stalled up to `now` (an open stall counts to `now`).
    pub fn stall_time(&self, now: Duration) -> Duration {
        self.stalls
            .iter()
            .map(|s| s.end.unwrap_or(now.max(s.start)).saturating_sub(s.start))
            .sum()
    }

    /// Appends `duration` of media that follows what is buffered; `date_time` is the program
    /// date-time of its first frame when known.
    pub fn append(&mut self, now: Duration, duration: Duration, date_time: Option<SystemTime>) {
        self.tick(now);
        if let Some(t) = date_time {
            if self.anchors.len() == MAX_ANCHORS {
                self.anchors.pop_front();
            }
            self.anchors.push_back((self.buffered_end, t));
        }
        self.buffered_end += duration;
        self.start_if_ready(now);
    }

    /// Before the first frame plays: start playback `offset` into the media (decoding from
    /// the keyframe before it, as a player joining live does at its target latency).
    pub fn start_at(&mut self, offset: Duration) {
        if self.state == State::Starting {
            self.playhead = offset;
        }
    }

    /// The stream has ended (ENDLIST): running dry at its end is not a stall.
    pub fn end_of_stream(&mut self, now: Duration) {
        self.tick(now);
        self.stream_ended = true;
        if self.state == State::Stalled {
            if let Some(s) = self.stalls.last_mut() {
                s.end.get_or_insert(now);
            }
            self.state = State::Ended;
        }
    }

    fn start_if_ready(&mut self, now: Duration) {
        match self.state {
            State::Starting if self.buffer() >= self.cfg.startup_buffer => {
                self.state = State::Playing;
                self.first_play = Some(now);
            }
            State::Stalled if self.buffer() >= self.cfg.resume_buffer => {
                self.state = State::Playing;
                if let Some(s) = self.stalls.last_mut() {
                    s.end = Some(now);
                }
            }
            _ => {}
        }
    }

    /// Advances the playhead to `now`. Running dry records a stall at the instant the last
    /// buffered frame finished playing.
    pub fn tick(&mut self, now: Duration) {
        if now <= self.now {
            return;
        }
        let elapsed = now - self.now;
        if self.state == State::Playing {
            let advance = elapsed.mul_f64(self.rate);
            let room = self.buffer();
            if advance < room {
                self.playhead += advance;
                self.caught_up += advance.saturating_sub(elapsed);
            } else {
                self.playhead = self.buffered_end;
                let dry_at = self.now + room.div_f64(self.rate);
                if self.stream_ended {
                    self.state = State::Ended;
                } else {
                    self.state = State::Stalled;
                    self.stalls.push(Stall {
                        start: dry_at,
                        end: None,
                    });
                }
                self.rate = 1.0;
            }
        }
        self.now = now;
    }

    /// The program date-time of the media at the playhead.
    pub fn playhead_date_time(&self) -> Option<SystemTime> {
        let (pos, t) = self.anchors.iter().rev().find(|(pos, _)| *pos <= self.playhead)?;
        Some(*t + (self.playhead - *pos))
    }

    /// Live latency at `wall`: how far the playhead's media is behind the wall clock.
    pub fn latency(&self, wall: SystemTime) -> Option<Duration> {
        wall.duration_since(self.playhead_date_time()?).ok()
    }

    /// Sets the playback rate for live catch-up from the latency at `wall` (when configured);
    /// returns the rate now in force.
    pub fn steer(&mut self, now: Duration, wall: SystemTime) -> f64 {
        self.tick(now);
        let Some(c) = self.cfg.catch_up else {
            return self.rate;
        };
        let rate = match self.latency(wall) {
            Some(l)
                if self.state == State::Playing
                    && self.buffer() > c.min_buffer
                    && l > c.target + c.tolerance =>
            {
                // Proportional: 1 s over the target asks for the full max rate.
                let over = (l - c.target).as_secs_f64();
                (1.0 + over * (c.max_rate - 1.0)).min(c.max_rate)
            }
            _ => 1.0,
        };
        self.rate = rate;
        rate
    }

    /// How much media the catch-up skipped ahead of real time so far.
    pub fn caught_up(&self) -> Duration {
        self.caught_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn starts_when_buffered_plays_in_real_time_and_stalls_when_dry() {
        let mut m = Model::new(ModelConfig::default());
        m.append(ms(100), ms(200), None);
        assert_eq!(m.state(), State::Starting, "200 ms is below the startup buffer");
        m.append(ms(250), ms(200), None);
        assert_eq!((m.state(), m.first_play()), (State::Playing, Some(ms(250))));
        m.tick(ms(450));
        assert_eq!(m.buffer(), ms(200));
        // Dry at 650 ms; noticed at 900.
        m.tick(ms(900));
        assert_eq!(m.state(), State::Stalled);
        assert_eq!(
            m.stalls(),
            [Stall {
                start: ms(650),
                end: None
            }]
        );
        assert_eq!(m.stall_time(ms(900)), ms(250));
        m.append(ms(1_000), ms(200), None);
        assert_eq!(m.state(), State::Stalled, "below the resume buffer");
        m.append(ms(1_100), ms(200), None);
        assert_eq!(m.state(), State::Playing);
        assert_eq!(m.stalls()[0].end, Some(ms(1_100)));
        assert_eq!(m.stall_time(ms(5_000)), ms(450));
        assert_eq!(m.played(), ms(400));
    }

    #[test]
    fn a_live_join_starts_past_the_keyframe_at_its_target() {
        let mut m = Model::new(ModelConfig::default());
        m.start_at(ms(400));
        m.append(ms(0), ms(600), None);
        assert_eq!(m.state(), State::Starting, "only 200 ms past the start point");
        m.append(ms(50), ms(200), None);
        assert_eq!((m.state(), m.buffer()), (State::Playing, ms(400)));
    }

    #[test]
    fn running_dry_at_the_end_of_an_ended_stream_is_not_a_stall() {
        let mut m = Model::new(ModelConfig::default());
        m.append(ms(0), ms(500), None);
        m.end_of_stream(ms(10));
        m.tick(ms(2_000));
        assert_eq!(m.state(), State::Ended);
        assert!(m.stalls().is_empty());
    }

    #[test]
    fn latency_follows_the_program_date_time_at_the_playhead() {
        let mut m = Model::new(ModelConfig::default());
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        m.append(ms(0), ms(1_000), Some(t0));
        m.append(ms(0), ms(1_000), Some(t0 + ms(1_000)));
        m.tick(ms(1_500));
        assert_eq!(m.playhead_date_time(), Some(t0 + ms(1_500)));
        assert_eq!(m.latency(t0 + ms(2_300)), Some(ms(800)));
    }

    #[test]
    fn catch_up_speeds_up_only_when_behind_with_buffer_to_spare() {
        let cfg = ModelConfig {
            catch_up: Some(CatchUp {
                target: ms(1_000),
                tolerance: ms(200),
                max_rate: 1.2,
                min_buffer: ms(300),
            }),
            ..ModelConfig::default()
        };
        let mut m = Model::new(cfg);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        m.append(ms(0), ms(4_000), Some(t0));
        // 3 s behind: the full 1.2×.
        assert_eq!(m.steer(ms(0), t0 + ms(3_000)), 1.2);
        m.tick(ms(1_000));
        assert_eq!(m.played(), ms(1_200));
        // 1.1 s behind: inside the tolerance.
        assert_eq!(m.steer(ms(1_000), t0 + ms(2_300)), 1.0);
        assert_eq!(m.caught_up(), ms(200));
    }
}

//! Opus to AAC-LC for WebRTC publishers: HLS players (Safari, smart TVs, hls.js on MSE with
//! fMP4) all take AAC, not all take Opus. FFmpeg's Opus decoder and AAC encoder at 48 kHz
//! stereo; gaps in the input (packet loss, DTX) up to a second are filled with silence so
//! the audio timeline stays continuous, longer ones restart it at the new time.

use super::test_source::encoder_extradata;
use crate::codec::{AudioSpecificConfig, CodecError};
use bytes::Bytes;
use ffmpeg_next::{ChannelLayout, Packet, Rational, codec, format, frame};

/// Samples per second in and out (Opus always decodes at 48 kHz).
pub const RATE: u32 = 48_000;
const CHANNELS: usize = 2;
/// Samples per AAC-LC frame.
const AAC_FRAME: usize = 1024;
/// Gaps up to this many samples are filled with silence (one second).
const MAX_FILL: i64 = RATE as i64;
/// A decoded packet holds at most 120 ms (RFC 6716).
const MAX_PACKET_SAMPLES: usize = 5_760;

/// Why a transcoder could not start or a packet was not taken.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    #[error("FFmpeg could not {what}: {source}")]
    Ffmpeg {
        what: &'static str,
        #[source]
        source: ffmpeg_next::Error,
    },
    #[error("codec `{0}` is not in this FFmpeg build")]
    Missing(&'static str),
    #[error("the AAC encoder's header is unusable: {0}")]
    Header(#[from] CodecError),
}

fn ff(what: &'static str) -> impl FnOnce(ffmpeg_next::Error) -> TranscodeError {
    move |source| TranscodeError::Ffmpeg { what, source }
}

/// One AAC access unit at `pts` (1/48 000 s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacUnit {
    pub pts: i64,
    pub data: Bytes,
}

/// Opens an AAC-LC encoder for planar float input; shared with the test source.
pub(crate) fn open_aac(rate: u32, channels: u32, kbps: u32) -> Result<codec::encoder::Audio, TranscodeError> {
    let aac = codec::encoder::find(codec::Id::AAC).ok_or(TranscodeError::Missing("aac"))?;
    let mut a = codec::context::Context::new_with_codec(aac)
        .encoder()
        .audio()
        .map_err(ff("create the AAC encoder"))?;
    a.set_rate(rate as i32);
    a.set_format(format::Sample::F32(format::sample::Type::Planar));
    a.set_channel_layout(ChannelLayout::default(channels as i32));
    // FFmpeg 5.1 (Debian 12) still reads the channel count beside the layout.
    a.set_channels(channels as i32);
    a.set_bit_rate(kbps as usize * 1000);
    a.set_time_base(Rational::new(1, rate as i32));
    a.set_flags(codec::Flags::GLOBAL_HEADER);
    a.open_as(aac).map_err(ff("open the AAC encoder"))
}

/// A running Opus → AAC transcoder for one publisher.
pub struct OpusToAac {
    decoder: codec::decoder::Audio,
    encoder: codec::encoder::Audio,
    config: AudioSpecificConfig,
    decoded: frame::Audio,
    /// Samples waiting for a whole AAC frame, per channel.
    pending: [Vec<f32>; CHANNELS],
    /// Time of `pending[..][0]`, and of the sample after the last one taken in.
    pending_pts: Option<i64>,
    next_in: Option<i64>,
}

impl std::fmt::Debug for OpusToAac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusToAac")
            .field("next_in", &self.next_in)
            .finish()
    }
}

impl OpusToAac {
    pub fn new(kbps: u32) -> Result<Self, TranscodeError> {
        super::init().map_err(ff("initialise"))?;
        let opus = codec::decoder::find(codec::Id::OPUS).ok_or(TranscodeError::Missing("opus"))?;
        let mut ctx = codec::context::Context::new_with_codec(opus);
        // SAFETY: setting plain fields on a context not yet opened, which we own.
        unsafe {
            let p = ctx.as_mut_ptr();
            (*p).sample_rate = RATE as i32;
            (*p).channels = CHANNELS as i32;
            (*p).channel_layout = ChannelLayout::STEREO.bits();
        }
        let decoder = ctx.decoder().audio().map_err(ff("open the Opus decoder"))?;
        let encoder = open_aac(RATE, CHANNELS as u32, kbps)?;
        let config = AudioSpecificConfig::parse(encoder_extradata(&encoder))?;
        Ok(Self {
            decoder,
            encoder,
            config,
            decoded: frame::Audio::empty(),
            pending: [Vec::new(), Vec::new()],
            pending_pts: None,
            next_in: None,
        })
    }

    /// The AAC track's decoder configuration.
    pub fn config(&self) -> &AudioSpecificConfig {
        &self.config
    }

    /// Takes one Opus packet at `pts` (1/48 000 s); returns the AAC units now complete.
    /// A packet the decoder refuses is an error; the transcoder goes on with the next.
    pub fn push(&mut self, pts: i64, opus: &[u8]) -> Result<Vec<AacUnit>, TranscodeError> {
        // Samples of this packet already covered (a packet overlapping the last one).
        let mut skip = 0usize;
        match self.next_in {
            Some(next) if pts > next && pts - next <= MAX_FILL => {
                // Lost or untransmitted audio: silence keeps the timeline whole.
                let gap = (pts - next) as usize;
                for ch in &mut self.pending {
                    ch.resize(ch.len() + gap, 0.0);
                }
                self.next_in = Some(pts);
            }
            Some(next) if pts >= next - 480 && pts <= next => skip = (next - pts) as usize,
            _ => {
                // The first packet, or a jump: start again at this time (what is pending
                // is dropped; less than one AAC frame).
                for ch in &mut self.pending {
                    ch.clear();
                }
                self.pending_pts = Some(pts);
                self.next_in = Some(pts);
            }
        }
        let packet = Packet::copy(opus);
        self.decoder.send_packet(&packet).map_err(ff("decode Opus"))?;
        let mut samples = 0usize;
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => {}
                Err(ffmpeg_next::Error::Other { errno }) if errno == ffmpeg_next::util::error::EAGAIN => {
                    break;
                }
                Err(ffmpeg_next::Error::Eof) => break,
                Err(e) => return Err(ff("decode Opus (receive a frame)")(e)),
            }
            let n = self.decoded.samples().min(MAX_PACKET_SAMPLES);
            let from = skip.min(n);
            skip -= from;
            let planes = self.decoded.planes();
            for (ch, pending) in self.pending.iter_mut().enumerate() {
                // A mono decode feeds both channels.
                let plane = self.decoded.plane::<f32>(ch.min(planes.saturating_sub(1)));
                pending.extend_from_slice(&plane[from.min(plane.len())..n.min(plane.len())]);
            }
            samples += n - from;
        }
        self.next_in = Some(self.next_in.unwrap_or(pts) + samples as i64);
        self.encode_ready()
    }

    fn encode_ready(&mut self) -> Result<Vec<AacUnit>, TranscodeError> {
        let mut out = Vec::new();
        while self.pending[0].len() >= AAC_FRAME {
            let mut f = frame::Audio::new(
                format::Sample::F32(format::sample::Type::Planar),
                AAC_FRAME,
                ChannelLayout::STEREO,
            );
            f.set_rate(RATE);
            for (ch, pending) in self.pending.iter_mut().enumerate() {
                f.plane_mut::<f32>(ch)[..AAC_FRAME].copy_from_slice(&pending[..AAC_FRAME]);
                pending.drain(..AAC_FRAME);
            }
            let pts = self.pending_pts.unwrap_or(0);
            f.set_pts(Some(pts));
            self.pending_pts = Some(pts + AAC_FRAME as i64);
            self.encoder.send_frame(&f).map_err(ff("encode AAC"))?;
            let mut packet = Packet::empty();
            loop {
                match self.encoder.receive_packet(&mut packet) {
                    Ok(()) => {}
                    Err(ffmpeg_next::Error::Other { errno }) if errno == ffmpeg_next::util::error::EAGAIN => {
                        break;
                    }
                    Err(ffmpeg_next::Error::Eof) => break,
                    Err(e) => return Err(ff("encode AAC (receive a packet)")(e)),
                }
                if let (Some(data), Some(pts)) = (packet.data(), packet.pts()) {
                    // The encoder's priming frame comes out before time 0: not a sample.
                    if pts >= 0 {
                        out.push(AacUnit {
                            pts,
                            data: Bytes::copy_from_slice(data),
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opus packets from FFmpeg's own encoder (libopus when present, else its native one).
    fn opus_packets(n: usize) -> Vec<Vec<u8>> {
        super::super::init().unwrap();
        let enc = codec::encoder::find_by_name("libopus")
            .or_else(|| codec::encoder::find(codec::Id::OPUS))
            .expect("an Opus encoder");
        let mut c = codec::context::Context::new_with_codec(enc)
            .encoder()
            .audio()
            .unwrap();
        c.set_rate(48_000);
        let fmt = enc
            .audio()
            .ok()
            .and_then(|a| a.formats().and_then(|mut f| f.next()))
            .unwrap_or(format::Sample::F32(format::sample::Type::Planar));
        c.set_format(fmt);
        c.set_channel_layout(ChannelLayout::STEREO);
        c.set_channels(2);
        c.set_bit_rate(64_000);
        c.set_time_base(Rational::new(1, 48_000));
        // SAFETY: the native encoder is experimental; allow it like `-strict -2` does.
        unsafe { (*c.as_mut_ptr()).strict_std_compliance = -2 };
        let mut e = c.open_as(enc).unwrap();
        let fs = e.frame_size().max(960) as usize;
        let mut out = Vec::new();
        let mut packet = Packet::empty();
        let mut i = 0i64;
        while out.len() < n {
            let mut f = frame::Audio::new(fmt, fs, ChannelLayout::STEREO);
            f.set_rate(48_000);
            // Silence in whatever sample format the encoder takes.
            for p in 0..f.planes() {
                f.data_mut(p).fill(0);
            }
            f.set_pts(Some(i));
            i += fs as i64;
            e.send_frame(&f).unwrap();
            while e.receive_packet(&mut packet).is_ok() {
                out.push(packet.data().unwrap().to_vec());
            }
        }
        out
    }

    #[test]
    fn opus_becomes_continuous_aac_and_gaps_are_filled() {
        let mut t = OpusToAac::new(128).unwrap();
        assert_eq!(t.config().sample_rate, 48_000);
        let packets = opus_packets(60);
        let mut units = Vec::new();
        let mut pts = 960 * 1000;
        for (i, p) in packets.iter().enumerate() {
            // Packets 20-29 are lost: a 200 ms gap.
            if (20..30).contains(&i) {
                pts += 960;
                continue;
            }
            units.extend(t.push(pts, p).unwrap());
            pts += 960;
        }
        assert!(units.len() >= 50, "{} units", units.len());
        for w in units.windows(2) {
            assert_eq!(w[1].pts - w[0].pts, 1024, "continuous: {w:?}");
        }
        // Garbage is refused with an error and the next packet still decodes.
        // A gap whose first packet is garbage, then a packet overlapping the last by half:
        // the silence is counted once and the overlap not twice.
        pts += 960 * 5;
        let _ = t.push(pts, &[0xff; 3]);
        pts += 960;
        for p in &packets[..10] {
            units.extend(t.push(pts, p).unwrap());
            pts += 960;
        }
        units.extend(t.push(pts - 480, &packets[10]).unwrap());
        pts += 480;
        for p in &packets[11..30] {
            units.extend(t.push(pts, p).unwrap());
            pts += 960;
        }
        for w in units.windows(2) {
            assert_eq!(w[1].pts - w[0].pts, 1024, "continuous: {w:?}");
        }
        let last = units.last().unwrap().pts;
        // Behind by what waits for a whole frame, the encoder's one-frame delay and the
        // last unit's own length; a gap counted twice would put it ahead.
        assert!(
            (0..=4 * 1024).contains(&(pts - last)),
            "in step with the input: {last} vs {pts}"
        );
    }
}

//! Throughput-based rendition choice with a buffer guard: two moving averages of measured
//! throughput (a fast one that drops quickly, a slow one that rises slowly; the lower is
//! trusted), a safety factor, no switching up with a thin buffer, and switching down at
//! once when the buffer runs low.
//!
//! LL-HLS parts are sent as they are produced, so a part fetched while it was still being
//! made arrives at the stream's pace, not the network's: such a fetch says nothing about
//! room to go up. It counts only as evidence to go down, when it took longer than the media
//! it carried.

use std::time::Duration;

/// Tuning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbrConfig {
    /// Half-lives of the averages, in samples.
    pub fast_half_life: f64,
    pub slow_half_life: f64,
    /// Fraction of the estimate a rendition's bandwidth may use.
    pub safety: f64,
    /// Buffer needed before switching up.
    pub up_buffer: Duration,
    /// Below this buffer, switch down to what the estimate allows at once.
    pub panic_buffer: Duration,
    /// Samples needed before any switch up.
    pub min_samples: u32,
}

impl Default for AbrConfig {
    fn default() -> Self {
        Self {
            fast_half_life: 2.0,
            slow_half_life: 6.0,
            safety: 0.8,
            up_buffer: Duration::from_millis(800),
            panic_buffer: Duration::from_millis(300),
            min_samples: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Ewma {
    value: f64,
    weight: f64,
}

impl Ewma {
    fn add(&mut self, half_life: f64, sample: f64) {
        let alpha = 0.5f64.powf(1.0 / half_life);
        self.value = alpha * self.value + (1.0 - alpha) * sample;
        self.weight = alpha * self.weight + (1.0 - alpha);
    }

    fn get(&self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.value / self.weight)
    }
}

/// The estimator and chooser.
#[derive(Debug, Clone)]
pub struct Abr {
    cfg: AbrConfig,
    fast: Ewma,
    slow: Ewma,
    samples: u32,
}

impl Abr {
    pub fn new(cfg: AbrConfig) -> Self {
        Self {
            cfg,
            fast: Ewma::default(),
            slow: Ewma::default(),
            samples: 0,
        }
    }

    /// One object fetched: `bytes` in `transfer` (first byte to last byte). `paced`: it was
    /// produced while being sent (an LL-HLS part fetched early), carrying `media` of media.
    pub fn sample(&mut self, bytes: u64, transfer: Duration, paced: bool, media: Duration) {
        if transfer.is_zero() || bytes == 0 {
            return;
        }
        if paced && transfer <= media {
            return;
        }
        let bps = bytes as f64 * 8.0 / transfer.as_secs_f64();
        self.fast.add(self.cfg.fast_half_life, bps);
        self.slow.add(self.cfg.slow_half_life, bps);
        self.samples += 1;
    }

    /// Bits per second the network is trusted to carry.
    pub fn estimate(&self) -> Option<f64> {
        Some(self.fast.get()?.min(self.slow.get()?))
    }

    /// The rendition to play next, as an index into `bandwidths` (bits per second, any
    /// order), given the one playing and the buffer.
    pub fn choose(&self, bandwidths: &[u64], current: usize, buffer: Duration) -> usize {
        let Some(estimate) = self.estimate() else {
            return current;
        };
        let budget = estimate * self.cfg.safety;
        // The best that fits the budget; the lowest when none does.
        let fits = bandwidths
            .iter()
            .enumerate()
            .filter(|(_, b)| (**b as f64) <= budget)
            .max_by_key(|(_, b)| **b)
            .map(|(i, _)| i)
            .or_else(|| {
                bandwidths
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, b)| **b)
                    .map(|(i, _)| i)
            })
            .unwrap_or(current);
        let (Some(&now), Some(&want)) = (bandwidths.get(current), bandwidths.get(fits)) else {
            return fits;
        };
        if want > now {
            let ready = buffer >= self.cfg.up_buffer && self.samples >= self.cfg.min_samples;
            if ready { fits } else { current }
        } else if want < now && (buffer < self.cfg.panic_buffer || (now as f64) > budget) {
            fits
        } else {
            current
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LADDER: [u64; 3] = [3_000_000, 1_200_000, 600_000];

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// `mbps` of throughput, as a complete object of 1 s transfer.
    fn feed(abr: &mut Abr, mbps: f64, n: usize) {
        for _ in 0..n {
            abr.sample((mbps * 1e6 / 8.0) as u64, ms(1_000), false, ms(1_000));
        }
    }

    #[test]
    fn goes_up_with_throughput_and_buffer_and_down_when_it_fades() {
        let mut abr = Abr::new(AbrConfig::default());
        assert_eq!(abr.choose(&LADDER, 2, ms(2_000)), 2, "no estimate yet");
        feed(&mut abr, 10.0, 5);
        assert_eq!(abr.choose(&LADDER, 2, ms(2_000)), 0);
        assert_eq!(abr.choose(&LADDER, 2, ms(200)), 2, "thin buffer: no switch up");
        // Throughput falls to 1.2 Mb/s: 3 Mb/s no longer fits.
        feed(&mut abr, 1.2, 20);
        assert_eq!(abr.choose(&LADDER, 0, ms(2_000)), 2, "budget 0.8 × ~1.2 Mb/s");
    }

    #[test]
    fn paced_parts_only_ever_argue_for_going_down() {
        let mut abr = Abr::new(AbrConfig::default());
        // Parts that arrive as fast as they are made: no sample.
        for _ in 0..10 {
            abr.sample(100_000, ms(200), true, ms(200));
        }
        assert_eq!(abr.estimate(), None);
        // A part that took twice its media duration: the network is the limit.
        abr.sample(100_000, ms(400), true, ms(200));
        let e = abr.estimate().unwrap();
        assert!((e - 2_000_000.0).abs() < 1.0, "{e}");
    }

    #[test]
    fn the_lowest_rendition_when_nothing_fits() {
        let mut abr = Abr::new(AbrConfig::default());
        feed(&mut abr, 0.1, 5);
        assert_eq!(abr.choose(&LADDER, 0, ms(100)), 2);
        assert_eq!(abr.choose(&[], 0, ms(100)), 0);
    }
}

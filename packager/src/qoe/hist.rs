//! A mergeable histogram of non-negative integers (milliseconds, kb/s) with log-linear
//! buckets: exact below 16, then 16 buckets per power of two (at most 1/16 ≈ 6 % relative
//! error), so quantiles of many edges' histograms merged are as good as of one.

use std::collections::BTreeMap;

/// Values above this are counted in the top bucket (2^40 ms is 34 years).
pub const MAX_VALUE: u64 = 1 << 40;
/// A bucket's count saturates here (2^62 − 1, the largest the relay's varints carry).
pub const MAX_COUNT: u64 = (1 << 62) - 1;
/// Sub-buckets per power of two.
const SUB: u64 = 16;
const SUB_BITS: u32 = 4;
/// The number of buckets a histogram can have (the wire format bounds lists by it).
pub const MAX_BUCKETS: usize = (SUB + (40 - SUB_BITS as u64 + 1) * SUB) as usize;

/// Counts per bucket; sparse (only buckets with a count are stored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hist {
    buckets: BTreeMap<u16, u64>,
}

/// The bucket a value falls in.
pub fn bucket_of(v: u64) -> u16 {
    let v = v.min(MAX_VALUE);
    if v < SUB {
        return v as u16;
    }
    let e = 63 - v.leading_zeros(); // ≥ 4
    let mantissa = (v >> (e - SUB_BITS)) & (SUB - 1);
    (SUB + u64::from(e - SUB_BITS) * SUB + mantissa) as u16
}

/// The values a bucket holds, `[low, high)`.
pub fn bucket_range(b: u16) -> (u64, u64) {
    let b = u64::from(b);
    if b < SUB {
        return (b, b + 1);
    }
    let e = (b - SUB) / SUB + u64::from(SUB_BITS);
    let mantissa = (b - SUB) % SUB;
    let width = 1u64 << (e - u64::from(SUB_BITS));
    let low = (1u64 << e) + mantissa * width;
    (low, low + width)
}

impl Hist {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, v: u64) {
        self.add_n(bucket_of(v), 1);
    }

    /// Adds `n` to bucket `b` (from the wire); a bucket past the last is the last.
    pub fn add_n(&mut self, b: u16, n: u64) {
        if n == 0 {
            return;
        }
        let b = b.min(MAX_BUCKETS as u16 - 1);
        let c = self.buckets.entry(b).or_default();
        *c = c.saturating_add(n).min(MAX_COUNT);
    }

    /// Takes back one [`Hist::add`] of `v` (a session re-opened after it was folded).
    pub fn remove(&mut self, v: u64) {
        let b = bucket_of(v);
        if let Some(c) = self.buckets.get_mut(&b) {
            *c -= 1;
            if *c == 0 {
                self.buckets.remove(&b);
            }
        }
    }

    pub fn merge(&mut self, other: &Hist) {
        for (b, n) in &other.buckets {
            self.add_n(*b, *n);
        }
    }

    /// The counts that `self` has beyond `earlier` (an earlier state of the same cumulative
    /// histogram): what was added in between.
    pub fn since(&self, earlier: &Hist) -> Hist {
        let mut out = Hist::new();
        for (b, n) in &self.buckets {
            out.add_n(*b, n.saturating_sub(earlier.buckets.get(b).copied().unwrap_or(0)));
        }
        out
    }

    pub fn count(&self) -> u64 {
        self.buckets.values().fold(0u64, |a, n| a.saturating_add(*n))
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// (bucket, count) in bucket order.
    pub fn buckets(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.buckets.iter().map(|(b, n)| (*b, *n))
    }

    /// The `q`-quantile (0..=1): the middle of the bucket holding it; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // The rank of the quantile among 1..=total (nearest rank).
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (b, n) in &self.buckets {
            seen = seen.saturating_add(*n);
            if seen >= rank {
                let (lo, hi) = bucket_range(*b);
                return Some(lo + (hi - 1 - lo) / 2);
            }
        }
        self.buckets.keys().next_back().map(|b| bucket_range(*b).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_once_and_in_order() {
        let mut last = 0u16;
        for v in (0..5000u64).chain([1 << 20, (1 << 20) + 1, MAX_VALUE - 1, MAX_VALUE]) {
            let b = bucket_of(v);
            let (lo, hi) = bucket_range(b);
            assert!(lo <= v && v < hi, "{v} in bucket {b} = [{lo},{hi})");
            assert!(b >= last || v >= 1 << 20);
            last = b;
        }
        assert!((bucket_of(MAX_VALUE) as usize) < MAX_BUCKETS);
        assert_eq!(bucket_of(u64::MAX), bucket_of(MAX_VALUE));
    }

    #[test]
    fn quantiles_are_within_the_bucket_error_and_survive_merging() {
        let mut a = Hist::new();
        let mut b = Hist::new();
        for v in 1..=1000u64 {
            if v % 2 == 0 { a.add(v) } else { b.add(v) }
        }
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m.count(), 1000);
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.01, 10.0)] {
            let got = m.quantile(q).unwrap() as f64;
            assert!(
                (got - exact).abs() / exact <= 1.0 / 16.0,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(Hist::new().quantile(0.5), None);
        let mut small = Hist::new();
        small.add(3);
        assert_eq!(small.quantile(0.99), Some(3));
        assert_eq!(m.since(&a), b);
    }
}

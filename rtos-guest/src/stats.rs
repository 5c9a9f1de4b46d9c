//! Latency statistics: fixed-bucket histograms and the `rtos-stats:` line.
//!
//! Samples are nanoseconds. A [`Histogram`] is log-linear (like HdrHistogram with 4
//! significant bits): values below 16 have their own bucket, and every power of two above is
//! split into 16 equal buckets, so a percentile is exact to within 1/16 (6.25 %) of its value
//! with no allocation. Min, max, count and sum are exact.
//!
//! The statistics line is a contract parsed by the system tests and the benchmarks:
//!
//! ```text
//! rtos-stats: periods=N misses=M lat_min_ns=A lat_mean_ns=B lat_p99_ns=C lat_max_ns=D [key=value ...]
//! ```
//!
//! `lat_*` is the timer-interrupt latency (programmed deadline → handler entry), `periods`
//! the jobs completed by the periodic tasks and `misses` their deadline misses. Further
//! `key=value` fields may follow; the first six never change name or order. The line stays
//! within [`LINE_MAX`] bytes (the Tandem console's line limit); the other measurements go on a
//! companion `rtos-detail:` line, and the latency's distribution on an `rtos-hist:` line
//! ([`Report::write_hist`]).
#![forbid(unsafe_code)]

use core::fmt::{self, Write};

/// Sub-buckets per power of two (4 significant bits).
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Largest tracked magnitude: values of 2^40 ns (~18 min) and more share the last bucket.
const MAX_BITS: u32 = 40;
/// Bucket count.
pub const BUCKETS: usize = SUB + (MAX_BITS - SUB_BITS) as usize * SUB;

/// A log-linear histogram of nanosecond samples with exact min/max/mean.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: [u32; BUCKETS],
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket of value `v`.
fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    if msb >= MAX_BITS {
        return BUCKETS - 1;
    }
    let shift = msb - SUB_BITS;
    let sub = ((v >> shift) as usize) & (SUB - 1);
    SUB + shift as usize * SUB + sub
}

/// The largest value that falls in bucket `b`.
fn bucket_high(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let shift = ((b - SUB) / SUB) as u32;
    let sub = ((b - SUB) % SUB) as u64;
    ((SUB as u64 + sub + 1) << shift) - 1
}

impl Histogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        Self {
            counts: [0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    /// Adds one sample.
    pub fn record(&mut self, ns: u64) {
        let b = bucket_of(ns);
        self.counts[b] = self.counts[b].saturating_add(1);
        self.count += 1;
        self.sum = self.sum.saturating_add(ns);
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Smallest sample (0 when empty).
    pub fn min(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min }
    }

    /// Largest sample.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Mean, rounded down (0 when empty).
    pub fn mean(&self) -> u64 {
        self.sum.checked_div(self.count).unwrap_or(0)
    }

    /// The `p`-th percentile (`p` in 0..=100): the upper bound of the bucket holding the
    /// sample of rank ⌈p·n/100⌉, clamped to `[min, max]`. 0 when empty.
    pub fn percentile(&self, p: u32) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = (self.count * u64::from(p.min(100))).div_ceil(100).max(1);
        let mut seen = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return bucket_high(b).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// Samples in `[lo, hi)`. Exact when `lo` and `hi` are bucket boundaries: any value
    /// below 16, or a power of two times 16..=31 (every power of two from 16 is one).
    pub fn count_in(&self, lo: u64, hi: u64) -> u64 {
        let mut low = 0;
        let mut n = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            let high = bucket_high(b);
            if low >= lo && high < hi {
                n += u64::from(c);
            }
            low = high + 1;
        }
        n
    }

    /// Forgets every sample.
    pub fn reset(&mut self) {
        *self = Self::new();
    }
}

/// Everything the statistics line reports, gathered by the workload.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Jobs completed by the periodic tasks.
    pub periods: u64,
    /// Jobs that finished after their deadline.
    pub misses: u64,
    /// Timer-interrupt latency: programmed deadline → handler entry.
    pub irq_latency: Histogram,
    /// Release latency: ideal release instant → the task running.
    pub release: Histogram,
    /// Worst completion time (release → job done) per periodic task, in ns: (name, ns).
    pub response_max: [(&'static str, u64); 2],
    /// Context switches so far.
    pub switches: u64,
    /// SGI round trips CPU 0 → CPU 1 → CPU 0 completed, and the last one's time in ns.
    pub ipi: (u64, u64),
    /// Where the guest runs: `native` or `tandem`.
    pub vm: &'static str,
}

/// Upper bounds (ns) of the `rtos-hist:` bins: 512 ns to 128 µs, doubling.
pub const HIST_BOUNDS: [u64; 9] = [512, 1024, 2048, 4096, 8192, 16_384, 32_768, 65_536, 131_072];

/// The longest line the Tandem console passes unbroken (`kernel::vm::console::LINE_MAX`): a
/// longer one is split, and its tail would no longer start with the line's prefix.
pub const LINE_MAX: usize = 200;

impl Report {
    /// Writes the one-line `rtos-stats:` record (without a line ending): the six contract
    /// fields, then `jitter_p99_ns`, `irqs` and `vm`. At most [`LINE_MAX`] bytes for values
    /// up to 10 digits.
    pub fn write_line(&self, w: &mut impl Write) -> fmt::Result {
        let l = &self.irq_latency;
        write!(
            w,
            "rtos-stats: periods={} misses={} lat_min_ns={} lat_mean_ns={} lat_p99_ns={} lat_max_ns={}",
            self.periods,
            self.misses,
            l.min(),
            l.mean(),
            l.percentile(99),
            l.max()
        )?;
        // Release jitter: the spread of release latencies (p99 minus best case).
        let r = &self.release;
        write!(
            w,
            " jitter_p99_ns={} irqs={} vm={}",
            r.percentile(99).saturating_sub(r.min()),
            l.count(),
            self.vm
        )
    }

    /// Writes the `rtos-hist:` line (no line ending): the timer-interrupt latencies of the
    /// `rtos-stats:` line by power-of-two bins, each `ltN=count` for [N/2, N) ns
    /// ([`HIST_BOUNDS`]; the first from 0), then `geN=count` above the last:
    ///
    /// ```text
    /// rtos-hist: lt512=A lt1024=B ... lt131072=I ge131072=J
    /// ```
    ///
    /// Exact counts (the bounds are bucket boundaries); at most [`LINE_MAX`] bytes with counts
    /// up to 10 digits.
    pub fn write_hist(&self, w: &mut impl Write) -> fmt::Result {
        let l = &self.irq_latency;
        w.write_str("rtos-hist:")?;
        let mut lo = 0;
        for hi in HIST_BOUNDS {
            write!(w, " lt{hi}={}", l.count_in(lo, hi))?;
            lo = hi;
        }
        write!(w, " ge{lo}={}", l.count_in(lo, u64::MAX))
    }

    /// Writes the companion `rtos-detail:` line (release latency, worst completion time per
    /// task, context switches, SGI round trips). Also at most [`LINE_MAX`] bytes.
    pub fn write_detail(&self, w: &mut impl Write) -> fmt::Result {
        let r = &self.release;
        write!(
            w,
            "rtos-detail: rel_mean_ns={} rel_p99_ns={} rel_max_ns={}",
            r.mean(),
            r.percentile(99),
            r.max()
        )?;
        for (name, ns) in self.response_max {
            if !name.is_empty() {
                write!(w, " {name}_resp_max_ns={ns}")?;
            }
        }
        write!(
            w,
            " switches={} ipis={} ipi_rtt_ns={}",
            self.switches, self.ipi.0, self.ipi.1
        )
    }
}

/// The fields of a parsed statistics line that every consumer relies on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedLine {
    /// `periods=`
    pub periods: u64,
    /// `misses=`
    pub misses: u64,
    /// `lat_min_ns=`
    pub lat_min_ns: u64,
    /// `lat_mean_ns=`
    pub lat_mean_ns: u64,
    /// `lat_p99_ns=`
    pub lat_p99_ns: u64,
    /// `lat_max_ns=`
    pub lat_max_ns: u64,
}

/// Parses the contract part of a statistics line (the reference parser for consumers).
pub fn parse_line(line: &str) -> Option<ParsedLine> {
    let rest = line.trim().strip_prefix("rtos-stats: ")?;
    let mut fields = rest.split(' ');
    let mut next = |key: &str| -> Option<u64> {
        fields
            .next()?
            .strip_prefix(key)?
            .strip_prefix('=')?
            .parse()
            .ok()
    };
    Some(ParsedLine {
        periods: next("periods")?,
        misses: next("misses")?,
        lat_min_ns: next("lat_min_ns")?,
        lat_mean_ns: next("lat_mean_ns")?,
        lat_p99_ns: next("lat_p99_ns")?,
        lat_max_ns: next("lat_max_ns")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt::LineBuf;

    /// Every value maps to a bucket whose upper bound is at least the value and within 1/16.
    #[test]
    fn buckets_bound_values_tightly() {
        let mut v = 0u64;
        while v < 1 << 39 {
            let hi = bucket_high(bucket_of(v));
            assert!(hi >= v, "{v}");
            assert!(hi - v <= v / 16, "{v} -> {hi}");
            v = v * 3 / 2 + 1;
        }
    }

    /// Bucket indices increase with the value and stay in range.
    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 39, 1 << 40, u64::MAX]) {
            let b = bucket_of(v);
            assert!(b >= last && b < BUCKETS);
            last = b;
        }
    }

    /// Min, max and mean are exact.
    #[test]
    fn min_max_mean_exact() {
        let mut h = Histogram::new();
        for v in [300, 100, 200] {
            h.record(v);
        }
        assert_eq!((h.min(), h.max(), h.mean(), h.count()), (100, 300, 200, 3));
    }

    /// p99 of 1..=100 is 99 within the bucket resolution, and p100 is the max.
    #[test]
    fn percentile_of_uniform() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v * 1000);
        }
        let p99 = h.percentile(99);
        assert!((99_000..=99_000 + 99_000 / 16).contains(&p99), "{p99}");
        assert_eq!(h.percentile(100), 100_000);
    }

    /// One outlier in a hundred does not move p99, but sets the max.
    #[test]
    fn p99_ignores_single_outlier() {
        let mut h = Histogram::new();
        for _ in 0..99 {
            h.record(500);
        }
        h.record(1_000_000);
        assert!((500..=500 + 500 / 16).contains(&h.percentile(99)));
        assert_eq!(h.max(), 1_000_000);
    }

    /// An empty histogram reports zeros.
    #[test]
    fn empty_reports_zero() {
        let h = Histogram::new();
        assert_eq!((h.min(), h.max(), h.mean(), h.percentile(99)), (0, 0, 0, 0));
    }

    /// The line starts with the contract fields in order and parses back.
    #[test]
    fn line_round_trips_through_parser() {
        let mut r = Report {
            periods: 12,
            misses: 0,
            vm: "native",
            ..Report::default()
        };
        r.irq_latency.record(160);
        r.irq_latency.record(320);
        let mut b = LineBuf::<512>::new();
        r.write_line(&mut b).unwrap();
        let s = b.as_str();
        assert!(
            s.starts_with("rtos-stats: periods=12 misses=0 lat_min_ns=160 lat_mean_ns=240 "),
            "{s}"
        );
        assert!(s.ends_with(" irqs=2 vm=native"), "{s}");
        let p = parse_line(s).unwrap();
        assert_eq!(
            (p.periods, p.misses, p.lat_min_ns, p.lat_max_ns),
            (12, 0, 160, 320)
        );
    }

    /// The histogram line counts each sample once, in its power-of-two bin, exactly; with
    /// the largest counts it stays within the console's line limit.
    #[test]
    fn hist_line_bins_exactly() {
        let mut r = Report::default();
        for v in [
            0,
            511,
            512,
            1023,
            1024,
            5000,
            131_071,
            131_072,
            u64::MAX / 2,
        ] {
            r.irq_latency.record(v);
        }
        let mut b = LineBuf::<512>::new();
        r.write_hist(&mut b).unwrap();
        assert_eq!(
            b.as_str(),
            "rtos-hist: lt512=2 lt1024=2 lt2048=1 lt4096=0 lt8192=1 lt16384=0 \
             lt32768=0 lt65536=0 lt131072=1 ge131072=2"
        );
        let mut lo = 0;
        for hi in HIST_BOUNDS.into_iter().chain([u64::MAX]) {
            r.irq_latency.counts[bucket_of(lo)] = u32::MAX;
            lo = hi;
        }
        let mut b = LineBuf::<512>::new();
        r.write_hist(&mut b).unwrap();
        assert!(b.as_str().len() <= LINE_MAX, "{}", b.as_str());
    }

    /// The detail line names every task's worst completion time.
    #[test]
    fn detail_line_lists_tasks() {
        let r = Report {
            response_max: [("lte", 20_000), ("gsm", 30_000)],
            ipi: (3, 4000),
            ..Report::default()
        };
        let mut b = LineBuf::<512>::new();
        r.write_detail(&mut b).unwrap();
        let s = b.as_str();
        assert!(s.starts_with("rtos-detail: rel_mean_ns=0 "), "{s}");
        assert!(
            s.contains(" lte_resp_max_ns=20000 gsm_resp_max_ns=30000 ")
                && s.ends_with(" ipis=3 ipi_rtt_ns=4000"),
            "{s}"
        );
    }

    /// Both lines fit the Tandem console's line limit even with 10-digit values.
    #[test]
    fn lines_fit_console_limit() {
        let big = 9_999_999_999u64;
        let mut r = Report {
            periods: big,
            misses: big,
            switches: big,
            ipi: (big, big),
            response_max: [("lte", big), ("gsm", big)],
            vm: "tandem",
            ..Report::default()
        };
        for _ in 0..3 {
            r.irq_latency.record(big);
            r.release.record(big);
        }
        r.irq_latency.record(1);
        let (mut a, mut b) = (LineBuf::<512>::new(), LineBuf::<512>::new());
        r.write_line(&mut a).unwrap();
        r.write_detail(&mut b).unwrap();
        assert!(
            a.as_bytes().len() <= LINE_MAX,
            "{} bytes: {}",
            a.as_bytes().len(),
            a.as_str()
        );
        assert!(
            b.as_bytes().len() <= LINE_MAX,
            "{} bytes: {}",
            b.as_bytes().len(),
            b.as_str()
        );
    }

    /// Lines without the exact prefix or field order are rejected.
    #[test]
    fn parser_rejects_other_lines() {
        assert_eq!(parse_line("rtos-stats: misses=0 periods=1"), None);
        assert_eq!(parse_line("stats: periods=1 misses=0"), None);
    }
}

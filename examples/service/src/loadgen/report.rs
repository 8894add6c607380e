//! The load generator's summary: throughput, latency percentiles, and what the cache saved.
//!
//! Percentiles are computed exactly from every request's latency, sorted (nearest rank):
//! a run of a few seconds has some hundred thousand samples at most, a few hundred
//! kilobytes, so a histogram crate (`hdrhistogram`) would buy nothing here.

use std::fmt;
use std::time::Duration;

/// Latency percentiles of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// Half the requests took at most this long.
    pub p50: Duration,
    /// 90% of the requests took at most this long.
    pub p90: Duration,
    /// 99% of the requests took at most this long.
    pub p99: Duration,
    /// The slowest request.
    pub max: Duration,
}

impl Latency {
    /// The percentiles of `samples` (microseconds, in any order; sorted in place). All zero
    /// for no samples.
    pub fn from_micros(samples: &mut [u32]) -> Latency {
        samples.sort_unstable();
        let at = |quantile: f64| Duration::from_micros(u64::from(nearest_rank(samples, quantile)));
        Latency {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// The smallest sample with at least `quantile` of the samples at or below it (`sorted`
/// ascending); 0 for none.
fn nearest_rank(sorted: &[u32], quantile: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    // The rank is a count of samples: at most sorted.len(), so the cast back is exact.
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What a run did, and what the service reported doing meanwhile (deltas of its
/// `/metrics`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// How long requests were sent.
    pub elapsed: Duration,
    /// Read requests answered with a 2xx status.
    pub reads: u64,
    /// Write requests answered with a 2xx status.
    pub writes: u64,
    /// Requests answered with another status, or not at all.
    pub errors: u64,
    /// Latency of every request, errors included.
    pub latency: Latency,
    /// Values the service read from memcached.
    pub cache_hits: u64,
    /// Keys the service did not find in memcached (or could not read).
    pub cache_misses: u64,
    /// Reads answered by another request's read or load in flight.
    pub coalesced: u64,
    /// Queries the service sent to its database.
    pub db_queries: u64,
}

impl Summary {
    /// Requests answered with a 2xx status.
    pub fn requests(&self) -> u64 {
        self.reads + self.writes
    }

    /// Answered requests per second.
    pub fn requests_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.requests() as f64 / seconds
        } else {
            0.0
        }
    }

    /// Hits over lookups (hits and misses), from 0 to 1; 0 for no lookup.
    pub fn hit_rate(&self) -> f64 {
        let lookups = self.cache_hits + self.cache_misses;
        if lookups == 0 {
            0.0
        } else {
            self.cache_hits as f64 / lookups as f64
        }
    }

    /// Database queries the cache saved: every request costs one query without a cache (a
    /// read of one row, of a list, of a page, or a write), so this is answered requests
    /// minus the queries sent.
    pub fn queries_saved(&self) -> u64 {
        self.requests().saturating_sub(self.db_queries)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let saved_share = if self.requests() == 0 {
            0.0
        } else {
            self.queries_saved() as f64 / self.requests() as f64
        };
        writeln!(
            f,
            "requests   {} in {:.1} s: {:.0} requests/s ({} reads, {} writes, {} errors)",
            self.requests(),
            self.elapsed.as_secs_f64(),
            self.requests_per_second(),
            self.reads,
            self.writes,
            self.errors,
        )?;
        writeln!(
            f,
            "latency    p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(self.latency.p50),
            ms(self.latency.p90),
            ms(self.latency.p99),
            ms(self.latency.max),
        )?;
        writeln!(
            f,
            "cache      hit rate {:.1}% ({} hits, {} misses; {} reads shared another's load)",
            self.hit_rate() * 100.0,
            self.cache_hits,
            self.cache_misses,
            self.coalesced,
        )?;
        write!(
            f,
            "database   {} queries for {} requests: {} queries saved ({:.1}%)",
            self.db_queries,
            self.requests(),
            self.queries_saved(),
            saved_share * 100.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut samples: Vec<u32> = (1..=100).rev().collect();
        let latency = Latency::from_micros(&mut samples);
        assert_eq!(latency.p50, Duration::from_micros(50));
        assert_eq!(latency.p90, Duration::from_micros(90));
        assert_eq!(latency.p99, Duration::from_micros(99));
        assert_eq!(latency.max, Duration::from_micros(100));
        assert_eq!(Latency::from_micros(&mut []), Latency::default());
        let one = Latency::from_micros(&mut [7]);
        assert_eq!(
            (one.p50, one.max),
            (Duration::from_micros(7), Duration::from_micros(7))
        );
    }

    #[test]
    fn rates_and_savings() {
        let summary = Summary {
            elapsed: Duration::from_secs(2),
            reads: 900,
            writes: 100,
            errors: 3,
            latency: Latency::default(),
            cache_hits: 750,
            cache_misses: 250,
            coalesced: 4,
            db_queries: 350,
        };
        assert_eq!(summary.requests(), 1000);
        assert_eq!(summary.requests_per_second(), 500.0);
        assert_eq!(summary.hit_rate(), 0.75);
        assert_eq!(summary.queries_saved(), 650);
        let text = summary.to_string();
        assert!(text.contains("hit rate 75.0%"), "{text}");
        assert!(text.contains("650 queries saved (65.0%)"), "{text}");
        assert_eq!(Summary::default().hit_rate(), 0.0);
        assert_eq!(Summary::default().requests_per_second(), 0.0);
    }
}

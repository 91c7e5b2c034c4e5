//! One measurement: a loop of durable batches timed one by one, and what it adds up to.

use std::time::{Duration, Instant};

/// When a measurement stops: after `duration` or after `max_syncs` syncs, whichever comes first.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    /// Wall-clock budget of one measurement.
    pub duration: Duration,
    /// Most syncs one measurement (or one writer of a concurrent measurement) makes.
    pub max_syncs: u64,
}

/// What one measurement did and how long each sync took.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Entries made durable.
    pub entries: u64,
    /// Payload bytes made durable.
    pub bytes: u64,
    /// Wall-clock time of the whole measurement.
    pub elapsed: Duration,
    /// Time of each durable batch (write + sync), in the order they ran.
    pub latencies: Vec<Duration>,
}

impl Sample {
    /// Entries per second.
    pub fn entries_per_sec(&self) -> f64 {
        self.entries as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// Payload MiB per second.
    pub fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / f64::from(1 << 20) / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The `p`-th percentile (0..=100) of the batch latencies by nearest rank; zero if none ran.
    pub fn percentile(&self, p: u32) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = (sorted.len() * p.min(100) as usize).div_ceil(100);
        sorted
            .get(rank.saturating_sub(1))
            .copied()
            .unwrap_or_default()
    }

    /// The union of samples that ran at the same time (one per writer), over `elapsed` of wall
    /// clock.
    pub fn concurrent(parts: Vec<Sample>, elapsed: Duration) -> Sample {
        parts.into_iter().fold(
            Sample {
                elapsed,
                ..Sample::default()
            },
            |mut all, part| {
                all.entries += part.entries;
                all.bytes += part.bytes;
                all.latencies.extend(part.latencies);
                all
            },
        )
    }
}

/// Runs `batch` (which makes one batch of `entries` entries and `bytes` payload bytes durable)
/// until `limit`, timing each call.
///
/// # Errors
/// The first error `batch` returns; the measurement stops there.
pub fn timed_loop<E>(
    limit: Limit,
    entries: u64,
    bytes: u64,
    mut batch: impl FnMut() -> Result<(), E>,
) -> Result<Sample, E> {
    let start = Instant::now();
    let mut sample = Sample::default();
    while (sample.latencies.len() as u64) < limit.max_syncs && start.elapsed() < limit.duration {
        let t = Instant::now();
        batch()?;
        sample.latencies.push(t.elapsed());
        sample.entries += entries;
        sample.bytes += bytes;
    }
    sample.elapsed = start.elapsed();
    Ok(sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_latencies(ms: &[u64]) -> Sample {
        Sample {
            latencies: ms.iter().map(|&m| Duration::from_millis(m)).collect(),
            ..Sample::default()
        }
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let s = with_latencies(&[5, 1, 4, 2, 3, 10, 9, 8, 7, 6]);
        for (p, ms) in [
            (0, 1),
            (10, 1),
            (50, 5),
            (51, 6),
            (90, 9),
            (99, 10),
            (100, 10),
        ] {
            assert_eq!(s.percentile(p), Duration::from_millis(ms), "p{p}");
        }
        assert_eq!(with_latencies(&[]).percentile(50), Duration::ZERO);
    }

    #[test]
    fn rates_divide_by_elapsed() {
        let s = Sample {
            entries: 300,
            bytes: 3 << 20,
            elapsed: Duration::from_secs(3),
            latencies: Vec::new(),
        };
        assert_eq!(s.entries_per_sec(), 100.0);
        assert_eq!(s.mib_per_sec(), 1.0);
    }

    #[test]
    fn timed_loop_stops_at_max_syncs_and_counts_each_batch() {
        let limit = Limit {
            duration: Duration::from_secs(3600),
            max_syncs: 7,
        };
        let mut calls = 0;
        let s = timed_loop::<()>(limit, 16, 1024, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((calls, s.latencies.len()), (7, 7));
        assert_eq!((s.entries, s.bytes), (7 * 16, 7 * 1024));
    }

    #[test]
    fn timed_loop_stops_at_the_first_error() {
        let limit = Limit {
            duration: Duration::from_secs(3600),
            max_syncs: 100,
        };
        let mut calls = 0;
        let r = timed_loop(limit, 1, 1, || {
            calls += 1;
            if calls == 3 { Err("disk full") } else { Ok(()) }
        });
        assert_eq!(r.unwrap_err(), "disk full");
        assert_eq!(calls, 3);
    }

    #[test]
    fn concurrent_adds_counts_and_keeps_every_latency() {
        let mut a = with_latencies(&[1, 2]);
        a.entries = 2;
        a.bytes = 20;
        let mut b = with_latencies(&[3]);
        b.entries = 1;
        b.bytes = 10;
        let all = Sample::concurrent(vec![a, b], Duration::from_secs(1));
        assert_eq!((all.entries, all.bytes, all.latencies.len()), (3, 30, 3));
        assert_eq!(all.elapsed, Duration::from_secs(1));
    }
}

//! The lines `raftwal bench` prints: one row per workload, the log next to the raw disk.

use std::time::Duration;

use super::sample::Sample;
use super::workloads::Readback;
use crate::units::{format_count, format_size};

/// Width of the workload name column.
const NAME: usize = 26;

/// The column titles, matching [`row`].
pub fn header() -> String {
    format!(
        "{:<NAME$} {:>11} {:>9} {:>9} {:>9} | {:>11} {:>9} {:>9} | {:>6}\n{}",
        "workload",
        "entries/s",
        "MiB/s",
        "p50 sync",
        "p99 sync",
        "raw ent/s",
        "raw MiB/s",
        "raw p99",
        "ratio",
        "-".repeat(NAME + 90),
    )
}

/// The name of a workload of `batch` entries of `size` bytes per sync, by `writers` writers.
pub fn workload_name(size: u64, batch: u64, writers: u64) -> String {
    let name = format!("{} x {batch}/sync", format_size(size));
    if writers > 1 {
        format!("{name}, {writers} writers")
    } else {
        name
    }
}

/// One workload: the log's rates and latencies, the raw disk's, and the log's entry rate as a
/// ratio of the raw one.
pub fn row(name: &str, wal: &Sample, raw: &Sample) -> String {
    format!(
        "{name:<NAME$} {:>11} {:>9.1} {:>9} {:>9} | {:>11} {:>9.1} {:>9} | {:>5.2}x",
        format_count(wal.entries_per_sec() as u64),
        wal.mib_per_sec(),
        millis(wal.percentile(50)),
        millis(wal.percentile(99)),
        format_count(raw.entries_per_sec() as u64),
        raw.mib_per_sec(),
        millis(raw.percentile(99)),
        wal.entries_per_sec() / raw.entries_per_sec().max(f64::MIN_POSITIVE),
    )
}

/// The reopen and read-back result.
pub fn readback(r: &Readback) -> String {
    let mib = r.bytes as f64 / f64::from(1 << 20);
    let wal_total = r.open + r.read;
    format!(
        "reopen + read back {} entries x {} ({mib:.0} MiB, {} segments), page cache warm:\n  \
         open {}, read {} ({:.0} MiB/s), open + read {}\n  \
         raw sequential read of the same bytes {} ({:.0} MiB/s)\n  \
         open + read = {:.2}x the raw read time",
        format_count(r.entries),
        format_size(r.bytes / r.entries.max(1)),
        r.segments,
        millis(r.open),
        millis(r.read),
        mib / r.read.as_secs_f64().max(f64::MIN_POSITIVE),
        millis(wal_total),
        millis(r.raw_read),
        mib / r.raw_read.as_secs_f64().max(f64::MIN_POSITIVE),
        wal_total.as_secs_f64() / r.raw_read.as_secs_f64().max(f64::MIN_POSITIVE),
    )
}

/// A duration in milliseconds with three decimals: `0.231 ms`.
fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_shows_both_rates_and_their_ratio() {
        let sample = |entries, ms: u64| Sample {
            entries,
            bytes: entries * 1024,
            elapsed: Duration::from_secs(1),
            latencies: vec![Duration::from_millis(ms)],
        };
        let line = row("1 KiB x 1/sync", &sample(900, 2), &sample(1000, 1));
        assert!(line.starts_with("1 KiB x 1/sync "), "{line}");
        for part in ["900", "1,000", "0.9 ", "2.000 ms", "1.000 ms", "0.90x"] {
            assert!(line.contains(part), "{part:?} missing in {line}");
        }
        assert_eq!(
            line.len(),
            header().lines().next().unwrap().len(),
            "columns line up"
        );
    }

    #[test]
    fn workload_names_say_size_batch_and_writers() {
        assert_eq!(workload_name(128, 1, 1), "128 B x 1/sync");
        assert_eq!(workload_name(16 << 10, 256, 1), "16 KiB x 256/sync");
        assert_eq!(workload_name(1024, 1, 4), "1 KiB x 1/sync, 4 writers");
    }

    #[test]
    fn readback_compares_open_plus_read_with_the_raw_read() {
        let r = Readback {
            entries: 1024,
            bytes: 1 << 20,
            segments: 2,
            open: Duration::from_millis(10),
            read: Duration::from_millis(20),
            raw_read: Duration::from_millis(20),
        };
        let text = readback(&r);
        for part in ["1,024 entries x 1 KiB", "2 segments", "30.000 ms", "1.50x"] {
            assert!(text.contains(part), "{part:?} missing in {text}");
        }
    }
}

//! The workloads `raftwal bench` runs, each on the log and on the raw disk with the same bytes.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftwal::{Batch, Entry, Lsn, Options, Wal};
use tempfile::TempDir;

use super::sample::{Limit, Sample, timed_loop};
use crate::error::CliError;
use crate::raw::{RawFile, payload, read_sequential};

/// Every entry the benchmark writes has this term.
const TERM: u64 = 1;
/// Entries per append while the read-back log is filled (one sync at the end).
const FILL_BATCH: u64 = 256;
/// `max_size` of each `entries` call while reading the log back.
const READ_WINDOW: u64 = 8 << 20;
/// Bytes per read call of the raw sequential read.
const RAW_READ_CHUNK: usize = 1 << 20;

/// `count` entries from index `first` on, all sharing `data`.
fn entries(first: u64, count: u64, data: &Bytes) -> Vec<Entry> {
    (first..first + count)
        .map(|index| Entry::new(index, TERM, data.clone()))
        .collect()
}

/// A new, empty log in its own temp dir under `root`. The log is dropped before the dir.
struct FreshLog {
    wal: Wal,
    _dir: TempDir,
}

impl FreshLog {
    fn open(root: &Path) -> Result<Self, CliError> {
        let dir = TempDir::new_in(root).map_err(CliError::io("create temp dir in", root))?;
        let (wal, _) = Wal::open(dir.path().join("log"), Options::default())?;
        Ok(Self { wal, _dir: dir })
    }
}

/// Batches of `batch` entries of `size` bytes, each written to `raw` with one write and one
/// `fdatasync`: the disk's limit for that workload.
pub fn raw_batches(
    raw: &mut RawFile,
    size: u64,
    batch: u64,
    limit: Limit,
) -> Result<Sample, CliError> {
    let bytes = payload(size as usize).repeat(batch as usize);
    timed_loop(limit, batch, size * batch, || raw.write_sync(&bytes))
        .map_err(CliError::io("write + fdatasync", "the raw baseline file"))
}

/// Batches of `batch` entries of `size` bytes, each appended to a fresh log and synced.
pub fn wal_batches(root: &Path, size: u64, batch: u64, limit: Limit) -> Result<Sample, CliError> {
    let log = FreshLog::open(root)?;
    let data = Bytes::from(payload(size as usize));
    let mut next = log.wal.last_index() + 1;
    let sample = timed_loop(limit, batch, size * batch, || {
        log.wal.append_sync(&Batch {
            entries: entries(next, batch, &data),
            ..Batch::default()
        })?;
        next += batch;
        Ok::<_, raftwal::Error>(())
    })?;
    Ok(sample)
}

/// `writers` threads, each appending one entry of `size` bytes and waiting for it to be durable,
/// over one log: the syncs they share are the log's group commit.
pub fn wal_group(root: &Path, size: u64, writers: u64, limit: Limit) -> Result<Sample, CliError> {
    let log = FreshLog::open(root)?;
    let wal = &log.wal;
    let data = Bytes::from(payload(size as usize));
    // Appends take the next index under this lock; syncs run outside it, so they can overlap.
    let next = Mutex::new(wal.last_index() + 1);
    let one_durable_entry = || -> raftwal::Result<()> {
        let lsn = {
            let mut next = next.lock().unwrap_or_else(PoisonError::into_inner);
            let lsn = wal.append(&Batch {
                entries: entries(*next, 1, &data),
                ..Batch::default()
            })?;
            *next += 1;
            lsn
        };
        wal.sync(lsn)
    };
    let start = Instant::now();
    let parts = thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|_| scope.spawn(|| timed_loop(limit, 1, size, one_durable_entry)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    Ok(Sample::concurrent(parts, start.elapsed()))
}

/// What reopening a log and reading it back cost, next to a raw read of as many bytes.
#[derive(Debug)]
pub struct Readback {
    /// Entries read back.
    pub entries: u64,
    /// Payload bytes read back.
    pub bytes: u64,
    /// Segments the log opened with.
    pub segments: usize,
    /// Time of `Wal::open`.
    pub open: Duration,
    /// Time to read every entry after opening.
    pub read: Duration,
    /// Time to read as many bytes from one file front to back.
    pub raw_read: Duration,
}

/// Fills a log with `count` entries of `size` bytes (one sync at the end), closes it, then times
/// reopening it and reading every entry back, and a raw sequential read of the same byte count.
/// Both reads find the data in the page cache (it was just written).
pub fn readback(root: &Path, count: u64, size: u64) -> Result<Readback, CliError> {
    let dir = TempDir::new_in(root).map_err(CliError::io("create temp dir in", root))?;
    let path = dir.path().join("log");
    let data = Bytes::from(payload(size as usize));
    {
        let (wal, _) = Wal::open(&path, Options::default())?;
        let mut lsn = Lsn::default();
        for first in (1..=count).step_by(FILL_BATCH as usize) {
            let n = FILL_BATCH.min(count + 1 - first);
            lsn = wal.append(&Batch {
                entries: entries(first, n, &data),
                ..Batch::default()
            })?;
        }
        wal.sync(lsn)?;
    }

    let start = Instant::now();
    let (wal, report) = Wal::open(&path, Options::default())?;
    let open = start.elapsed();

    let start = Instant::now();
    let (mut entries, mut bytes) = (0, 0);
    let (mut lo, hi) = (wal.first_index(), wal.last_index() + 1);
    while lo < hi {
        let got = wal.entries(lo, hi, READ_WINDOW)?;
        entries += got.len() as u64;
        bytes += got.iter().map(|e| e.data.len() as u64).sum::<u64>();
        lo += got.len() as u64;
    }
    let read = start.elapsed();
    if entries != count {
        return Err(CliError::Lost {
            written: count,
            read: entries,
        });
    }

    let raw_path = dir.path().join("readback.raw");
    drop(RawFile::create(&raw_path, bytes).map_err(CliError::io("create", &raw_path))?);
    let start = Instant::now();
    read_sequential(&raw_path, bytes, &mut vec![0; RAW_READ_CHUNK])
        .map_err(CliError::io("read", &raw_path))?;
    let raw_read = start.elapsed();

    Ok(Readback {
        entries,
        bytes,
        segments: report.segments,
        open,
        read,
        raw_read,
    })
}

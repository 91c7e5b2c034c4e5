//! The workloads `raftwal bench` runs, each on the log and on the raw disk with the same bytes.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftwal::{Lsn, Options, Wal};
use tempfile::TempDir;

use super::sample::{Limit, Sample, timed_loop};
use crate::error::CliError;
use crate::shared::raw::{RawFile, read_sequential};
use crate::shared::writer::{Writer, on_threads};
use crate::shared::{TempLog, payload};

/// Entries per append while the read-back log is filled (one sync at the end).
const FILL_BATCH: u64 = 256;
/// `max_size` of each `entries` call while reading the log back.
const READ_WINDOW: u64 = 8 << 20;
/// Bytes per read call of the raw sequential read.
const RAW_READ_CHUNK: usize = 1 << 20;

/// A new, empty log with default options in its own temp dir under `root`.
fn fresh_log(root: &Path) -> Result<TempLog, CliError> {
    let dir = TempDir::new_in(root).map_err(CliError::io("create temp dir in", root))?;
    Ok(TempLog::create(dir, Options::default())?)
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
        .map_err(CliError::io("write + fdatasync", raw.path()))
}

/// Batches of `batch` entries of `size` bytes, each appended to a fresh log and synced.
pub fn wal_batches(root: &Path, size: u64, batch: u64, limit: Limit) -> Result<Sample, CliError> {
    let log = fresh_log(root)?;
    let writer = Writer::new(&log.wal, Bytes::from(payload(size as usize)));
    Ok(timed_loop(limit, batch, size * batch, || {
        writer.append_sync(batch)
    })?)
}

/// `writers` threads, each appending one entry of `size` bytes and waiting for it to be durable,
/// over one log: the syncs they share are the log's group commit.
pub fn wal_group(root: &Path, size: u64, writers: u64, limit: Limit) -> Result<Sample, CliError> {
    let log = fresh_log(root)?;
    let writer = Writer::new(&log.wal, Bytes::from(payload(size as usize)));
    let start = Instant::now();
    let parts = on_threads(writers, || {
        timed_loop(limit, 1, size, || writer.append_sync(1))
    });
    let elapsed = start.elapsed();
    Ok(Sample::concurrent(
        parts.into_iter().collect::<Result<_, _>>()?,
        elapsed,
    ))
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
    let log = fresh_log(root)?;
    let writer = Writer::new(&log.wal, Bytes::from(payload(size as usize)));
    let mut lsn = Lsn::default();
    for first in (1..=count).step_by(FILL_BATCH as usize) {
        lsn = writer.append(FILL_BATCH.min(count + 1 - first))?;
    }
    log.wal.sync(lsn)?;
    drop(writer);
    let (path, dir) = log.close();

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

//! The workloads `raftwal bench` runs, each on the log and on the raw disk with the same bytes.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use raftwal::{Options, Wal};
use tempfile::TempDir;

use super::sample::{Limit, Sample, timed_loop};
use crate::error::CliError;
use crate::shared::raw::{RawFile, read_sequential};
use crate::shared::writer::{Compactor, Writer, on_threads};
use crate::shared::{TempLog, payload, read_all};

/// Entries per append while the read-back log is filled (one sync at the end).
const FILL_BATCH: u64 = 256;
/// Bytes per read call of the raw sequential read.
const RAW_READ_CHUNK: usize = 1 << 20;

/// Where and how every workload of a run measures.
#[derive(Debug)]
pub struct Setup<'a> {
    /// The run's temp dir; each workload makes its own log below it.
    pub root: &'a Path,
    /// Options of every log.
    pub options: Options,
    /// How long each side of a workload runs.
    pub limit: Limit,
    /// Alternating slices each workload is cut into.
    pub rounds: u64,
}

impl Setup<'_> {
    /// A new, empty log in its own temp dir under `root`.
    fn fresh_log(&self) -> Result<TempLog, CliError> {
        let dir =
            TempDir::new_in(self.root).map_err(CliError::io("create temp dir in", self.root))?;
        Ok(TempLog::create(dir, self.options.clone())?)
    }
}

/// One workload measured on the log and on the raw disk.
#[derive(Debug)]
pub struct Pair {
    /// The log.
    pub wal: Sample,
    /// The raw disk.
    pub raw: Sample,
}

/// Runs `wal` and `raw` in `setup.rounds` alternating slices of `limit / rounds` each, so that
/// a change in the machine's load during the run (other processes, the disk's own caches) weighs
/// on both alike, and adds up each side's slices.
///
/// NB: a new log zero-fills its next segment in a background thread as it opens; left alone,
/// that burst of writes would land in the first raw slice and flatter the log. A first `wal`
/// slice, not counted, absorbs it; each round then runs the log before the raw disk, so any
/// background work the log starts counts against the log first.
fn interleaved(
    setup: &Setup<'_>,
    mut raw: impl FnMut(Limit) -> Result<Sample, CliError>,
    mut wal: impl FnMut(Limit) -> Result<Sample, CliError>,
) -> Result<Pair, CliError> {
    let slice = setup.limit.split(setup.rounds);
    let mut pair = Pair {
        wal: Sample::default(),
        raw: Sample::default(),
    };
    wal(slice)?;
    for _ in 0..setup.rounds {
        pair.wal.extend(wal(slice)?);
        pair.raw.extend(raw(slice)?);
    }
    Ok(pair)
}

/// Batches of `batch` entries of `size` bytes: on the log, each appended to a fresh log and
/// synced, the log compacted right behind the writer if `compact` (steady state: purged
/// segments are recycled) or else only growing (every segment is a new, zero-filled file); on
/// the raw disk, the same bytes written to `raw` with one write and one `fdatasync`.
pub fn batches(
    setup: &Setup<'_>,
    raw: &mut RawFile,
    size: u64,
    batch: u64,
    compact: bool,
) -> Result<Pair, CliError> {
    let log = setup.fresh_log()?;
    let writer = Writer::new(&log.wal, Bytes::from(payload(size as usize)));
    let mut compactor = compact.then(|| Compactor::new(setup.options.segment_size, size));
    interleaved(setup, raw_batches(raw, size, batch), |slice| {
        Ok(timed_loop(slice, batch, size * batch, || {
            writer.append_sync(batch)?;
            match &mut compactor {
                Some(c) => c.wrote(&log.wal, size * batch),
                None => Ok(()),
            }
        })?)
    })
}

/// `writers` threads, each appending one entry of `size` bytes and waiting for it to be durable,
/// over one log: the syncs they share are the log's group commit. The raw side is one writer
/// (one write + `fdatasync` per entry), the rate group commit is to multiply.
pub fn group(
    setup: &Setup<'_>,
    raw: &mut RawFile,
    size: u64,
    writers: u64,
) -> Result<Pair, CliError> {
    let log = setup.fresh_log()?;
    let writer = Writer::new(&log.wal, Bytes::from(payload(size as usize)));
    interleaved(setup, raw_batches(raw, size, 1), |slice| {
        let start = Instant::now();
        let parts = on_threads(writers, || {
            timed_loop(slice, 1, size, || writer.append_sync(1))
        });
        let elapsed = start.elapsed();
        Ok(Sample::concurrent(
            parts.into_iter().collect::<Result<_, _>>()?,
            elapsed,
        ))
    })
}

/// The raw side of a workload: batches of `batch` entries of `size` bytes, each written to `raw`
/// with one write and one `fdatasync`: the disk's limit for that workload.
fn raw_batches(
    raw: &mut RawFile,
    size: u64,
    batch: u64,
) -> impl FnMut(Limit) -> Result<Sample, CliError> {
    let bytes = payload(size as usize).repeat(batch as usize);
    move |slice| {
        timed_loop(slice, batch, size * batch, || raw.write_sync(&bytes))
            .map_err(CliError::io("write + fdatasync", raw.path()))
    }
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
pub fn readback(setup: &Setup<'_>, count: u64, size: u64) -> Result<Readback, CliError> {
    let log = setup.fresh_log()?;
    let writer = Writer::new(&log.wal, Bytes::from(payload(size as usize)));
    log.wal.sync(writer.fill(count, FILL_BATCH)?)?;
    drop(writer);
    let (path, dir) = log.close()?;

    let start = Instant::now();
    let (wal, report) = Wal::open(&path, setup.options.clone())?;
    let open = start.elapsed();

    let start = Instant::now();
    let (entries, bytes) = read_all(&wal)?;
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

//! Writers that append to a log as a Raft node would: indexes in order, one term, one payload.

use std::sync::{Mutex, PoisonError};
use std::thread;

use bytes::Bytes;
use raftwal::{Batch, Entry, EntryId, Lsn, Result, Wal};

/// Every entry the workloads write has this term.
const TERM: u64 = 1;

/// Appends entries that all carry `data`, continuing `wal` from its last index. Shared by
/// several threads, it hands out indexes in order under a lock and syncs outside it, so
/// concurrent [`Writer::append_sync`] calls meet in the log's group commit.
///
/// Like the raw baseline, which writes one buffer made once, it reuses one batch: the log is
/// timed on what it does with entries, not on the caller's making them.
#[derive(Debug)]
pub struct Writer<'a> {
    wal: &'a Wal,
    data: Bytes,
    next: Mutex<Next>,
}

/// What the next append continues from.
#[derive(Debug)]
struct Next {
    /// Index of the next entry to append. Invariant: `index == wal.last_index() + 1` whenever
    /// the lock is free (this writer is the log's only appender).
    index: u64,
    /// The batch appended last, to be renumbered and resized for the next append. Every entry
    /// carries the writer's `data` and [`TERM`].
    batch: Batch,
}

impl<'a> Writer<'a> {
    /// A writer of `data` entries appending after `wal`'s last entry.
    pub fn new(wal: &'a Wal, data: Bytes) -> Self {
        let next = Mutex::new(Next {
            index: wal.last_index() + 1,
            batch: Batch::default(),
        });
        Self { wal, data, next }
    }

    /// Appends `count` entries as one batch and returns its ticket. Does not sync.
    ///
    /// # Errors
    /// Whatever [`Wal::append`] returns; no index is used up then.
    pub fn append(&self, count: u64) -> Result<Lsn> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let Next { index, batch } = &mut *next;
        let len = usize::try_from(count).unwrap_or(usize::MAX);
        batch
            .entries
            .resize_with(len, || Entry::new(0, TERM, self.data.clone()));
        for (entry, i) in batch.entries.iter_mut().zip(*index..) {
            entry.index = i;
        }
        let lsn = self.wal.append(batch)?;
        *index += count;
        Ok(lsn)
    }

    /// Appends `count` entries in batches of at most `per_batch` and returns the last ticket
    /// (the default ticket if `count` is 0). Does not sync.
    ///
    /// # Errors
    /// Whatever [`Wal::append`] returns.
    pub fn fill(&self, count: u64, per_batch: u64) -> Result<Lsn> {
        let mut lsn = Lsn::default();
        let mut left = count;
        while left > 0 {
            let n = left.min(per_batch.max(1));
            lsn = self.append(n)?;
            left -= n;
        }
        Ok(lsn)
    }

    /// Appends `count` entries as one batch and waits until they are durable.
    ///
    /// # Errors
    /// Whatever [`Wal::append`] or [`Wal::sync`] returns.
    pub fn append_sync(&self, count: u64) -> Result<()> {
        let lsn = self.append(count)?;
        self.wal.sync(lsn)
    }
}

/// Compacts a log right behind its writer, as a Raft node that snapshots often runs it: each
/// time half a segment of payload has been written, purges to a segment's worth of entries
/// behind the last one. About two segments are kept, and each purged one is recycled as a new
/// segment instead of a zero-filled file being made.
#[derive(Debug)]
pub struct Compactor {
    /// Payload bytes between purges: half a segment.
    every: u64,
    /// Entries kept behind the last one: a segment's worth.
    lag: u64,
    /// Payload bytes written since the last purge. Invariant: below `every` between calls.
    written: u64,
}

impl Compactor {
    /// A compactor for a log of `segment_size` segments holding entries of `entry_size` bytes.
    pub fn new(segment_size: u64, entry_size: u64) -> Self {
        Self {
            every: (segment_size / 2).max(1),
            lag: segment_size / entry_size.max(1),
            written: 0,
        }
    }

    /// Notes `bytes` of payload written to `wal`, and purges if it is due. Does not sync: the
    /// purge is durable with the next sync, and its segments are recycled after that.
    ///
    /// # Errors
    /// Whatever [`Wal::purge_to`] returns.
    pub fn wrote(&mut self, wal: &Wal, bytes: u64) -> Result<()> {
        self.written += bytes;
        if self.written < self.every {
            return Ok(());
        }
        self.written = 0;
        let last = wal.last_index();
        if last > self.lag {
            wal.purge_to(EntryId::new(TERM, last - self.lag))?;
        }
        Ok(())
    }
}

/// Runs `work` on `threads` threads at once and returns each result, in thread order.
///
/// # Panics
/// Re-raises a panic of any of the threads.
pub fn on_threads<R: Send>(threads: u64, work: impl Fn() -> R + Sync) -> Vec<R> {
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(&work)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftwal::Options;

    /// The reused batch is renumbered and resized for every append: batches of 4, 4, 2, then 3
    /// entries continue one another, each entry carrying the writer's data.
    #[test]
    fn a_reused_batch_continues_the_log_at_every_size() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path().join("log"), Options::default()).unwrap();
        let data = Bytes::from_static(b"payload");
        let writer = Writer::new(&wal, data.clone());
        writer.fill(10, 4).unwrap();
        writer.append_sync(3).unwrap();
        let want: Vec<_> = (1..=13)
            .map(|i| Entry::new(i, TERM, data.clone()))
            .collect();
        assert_eq!(wal.last_index(), 13);
        assert_eq!(wal.entries(1, 14, u64::MAX).unwrap(), want);
    }

    /// The bench's "compacted" rows claim a log kept to about two segments whose purged ones
    /// come back as new segments: both show in the directory.
    #[test]
    fn a_compacted_log_keeps_few_segments_and_recycles_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut options = Options::default();
        options.segment_size = 1 << 20;
        let (wal, _) = Wal::open(&path, options).unwrap();
        let writer = Writer::new(&wal, Bytes::from(vec![7u8; 1024]));
        let mut compactor = Compactor::new(1 << 20, 1024);
        for _ in 0..1000 {
            writer.append_sync(16).unwrap();
            compactor.wrote(&wal, 16 << 10).unwrap();
        }
        // The log retires purged segments in the background; closed, it changes no file.
        drop(wal);
        let segments = raftwal::inspect::dump(&path).unwrap();
        // The kept ones, the active one, and perhaps its prepared successor.
        assert!(segments.len() <= 4, "{} segments", segments.len());
        let recycled = segments.iter().filter_map(|s| s.header.as_ref().ok());
        assert!(
            recycled.filter(|h| h.recycled).count() > 0,
            "no recycled segment"
        );
    }
}

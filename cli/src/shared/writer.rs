//! Writers that append to a log as a Raft node would: indexes in order, one term, one payload.

use std::sync::{Mutex, PoisonError};
use std::thread;

use bytes::Bytes;
use raftwal::{Batch, Entry, Lsn, Result, Wal};

/// Every entry the workloads write has this term.
const TERM: u64 = 1;

/// Appends entries that all carry `data`, continuing `wal` from its last index. Shared by
/// several threads, it hands out indexes in order under a lock and syncs outside it, so
/// concurrent [`Writer::append_sync`] calls meet in the log's group commit.
#[derive(Debug)]
pub struct Writer<'a> {
    wal: &'a Wal,
    data: Bytes,
    /// Index of the next entry to append. Invariant: `next == wal.last_index() + 1` whenever the
    /// lock is free (this writer is the log's only appender).
    next: Mutex<u64>,
}

impl<'a> Writer<'a> {
    /// A writer of `data` entries appending after `wal`'s last entry.
    pub fn new(wal: &'a Wal, data: Bytes) -> Self {
        let next = Mutex::new(wal.last_index() + 1);
        Self { wal, data, next }
    }

    /// Appends `count` entries as one batch and returns its ticket. Does not sync.
    ///
    /// # Errors
    /// Whatever [`Wal::append`] returns; no index is used up then.
    pub fn append(&self, count: u64) -> Result<Lsn> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let entries = (*next..*next + count)
            .map(|index| Entry::new(index, TERM, self.data.clone()))
            .collect();
        let lsn = self.wal.append(&Batch {
            entries,
            ..Batch::default()
        })?;
        *next += count;
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

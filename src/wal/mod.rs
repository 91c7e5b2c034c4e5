//! The log on disk. API CONTRACT STUB: the signatures below are fixed for the other layers; the
//! WAL work replaces every `todo!()` body (and this paragraph).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Result;
use crate::fs::Fs;
use crate::types::{Entry, EntryId, HardState, SnapshotMeta};

/// Settings of a [`Wal`]. Every field has a default; [`Wal::open`] validates them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Target size of a segment file. Default: 64 MiB.
    pub segment_size: u64,
    /// Largest accepted entry payload. Default: 16 MiB.
    pub max_entry_size: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            max_entry_size: 16 << 20,
        }
    }
}

/// What [`Wal::open`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Bytes of an incomplete, never acknowledged final batch that were cut off.
    pub torn_bytes_dropped: u64,
    /// The segment the torn tail was in, if any.
    pub torn_segment: Option<PathBuf>,
    /// The last index kept.
    pub last_index: u64,
    /// Segments found.
    pub segments: usize,
}

/// One atomic write: after a crash either all of it is in the log or none of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// A snapshot to install first: the log is reset to end at `snapshot.index` (every entry is
    /// dropped, as etcd's `ApplySnapshot`), and its metadata is kept.
    pub snapshot: Option<SnapshotMeta>,
    /// Entries to append. The first may overwrite a suffix (follower append): entries at and
    /// after `entries[0].index` are replaced.
    pub entries: Vec<Entry>,
    /// A hard state to record.
    pub hard_state: Option<HardState>,
}

/// A durability ticket: the sequence number of a write. Writes are numbered in order; syncing
/// one makes it and every earlier write durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

/// The durable segmented log. `Send + Sync`; writers serialise internally, readers never wait
/// for a sync.
#[derive(Debug)]
pub struct Wal {
    _todo: (),
}

#[allow(unused_variables, clippy::missing_errors_doc, missing_docs)]
impl Wal {
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<(Wal, RecoveryReport)> {
        todo!()
    }
    pub fn open_with_fs(
        fs: Arc<dyn Fs>,
        dir: impl AsRef<Path>,
        options: Options,
    ) -> Result<(Wal, RecoveryReport)> {
        todo!()
    }
    /// Validates and writes `batch`; readable at once, durable after [`Wal::sync`] of the Lsn.
    pub fn append(&self, batch: &Batch) -> Result<Lsn> {
        todo!()
    }
    /// Blocks until every write up to `lsn` is durable. Concurrent callers share one fdatasync.
    pub fn sync(&self, lsn: Lsn) -> Result<()> {
        todo!()
    }
    /// Runs `done` on the WAL's background syncer once every write up to `lsn` is durable (or
    /// with the sync's error). Never blocks; a lone waiter is synced at once, not on a timer;
    /// callbacks fire in Lsn order.
    pub fn on_durable(&self, lsn: Lsn, done: Box<dyn FnOnce(Result<()>) + Send>) {
        todo!()
    }
    /// `append` then `sync`.
    pub fn append_sync(&self, batch: &Batch) -> Result<()> {
        todo!()
    }
    /// Removes every entry after `index`.
    pub fn truncate_after(&self, index: u64) -> Result<Lsn> {
        todo!()
    }
    /// Compacts the prefix up to and including `id.index`, keeping `id.term` as the term of the
    /// compaction point. `id.index` may lie beyond the last index (the log becomes empty and
    /// continues at `id.index + 1`).
    pub fn purge_to(&self, id: EntryId) -> Result<Lsn> {
        todo!()
    }
    /// Records metadata of a snapshot taken locally (`meta.index <= last_index`); the log is
    /// unchanged.
    pub fn save_snapshot_meta(&self, meta: SnapshotMeta) -> Result<Lsn> {
        todo!()
    }
    pub fn first_index(&self) -> u64 {
        todo!()
    }
    pub fn last_index(&self) -> u64 {
        todo!()
    }
    pub fn term(&self, index: u64) -> Result<u64> {
        todo!()
    }
    pub fn entries(&self, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>> {
        todo!()
    }
    pub fn hard_state(&self) -> HardState {
        todo!()
    }
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        todo!()
    }
    pub fn dir(&self) -> &Path {
        todo!()
    }
}

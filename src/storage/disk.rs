//! [`Storage`] served from a [`Wal`]: every read goes to the log's in-memory index and, for
//! payloads not in memory, to its segment files.

use std::sync::Arc;

use super::Storage;
use crate::error::Result;
use crate::types::{Entry, RaftState, Snapshot};
use crate::wal::Wal;

/// The etcd `Storage` contract served from a [`Wal`]. Cheap to clone.
///
/// The log keeps snapshot *metadata* only: [`Storage::snapshot`] returns it with empty `data`,
/// and the application attaches the state machine image it keeps elsewhere.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use raftwal::{Batch, DiskStorage, Entry, Options, Storage, Wal};
///
/// let dir = tempfile::tempdir()?;
/// let wal = Arc::new(Wal::open(dir.path(), Options::default())?.0);
/// wal.append_sync(&Batch { entries: vec![Entry::new(1, 1, "a")], ..Batch::default() })?;
/// let storage = DiskStorage::new(wal);
/// assert_eq!((storage.first_index()?, storage.last_index()?, storage.term(1)?), (1, 1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct DiskStorage {
    wal: Arc<Wal>,
}

impl DiskStorage {
    /// Serves reads from `wal`.
    pub fn new(wal: Arc<Wal>) -> Self {
        Self { wal }
    }

    /// The WAL underneath, for writes.
    pub fn wal(&self) -> &Arc<Wal> {
        &self.wal
    }
}

impl Storage for DiskStorage {
    fn initial_state(&self) -> Result<RaftState> {
        Ok(RaftState {
            hard_state: self.wal.hard_state(),
            conf_state: self.wal.snapshot_meta().conf_state,
        })
    }

    fn entries(&self, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>> {
        self.wal.entries(lo, hi, max_size)
    }

    fn term(&self, index: u64) -> Result<u64> {
        self.wal.term(index)
    }

    fn first_index(&self) -> Result<u64> {
        Ok(self.wal.first_index())
    }

    fn last_index(&self) -> Result<u64> {
        Ok(self.wal.last_index())
    }

    /// The latest snapshot metadata with empty `data` (index 0 when none was recorded); never
    /// [`SnapshotTemporarilyUnavailable`](crate::Error::SnapshotTemporarilyUnavailable).
    fn snapshot(&self) -> Result<Snapshot> {
        Ok(Snapshot {
            meta: self.wal.snapshot_meta(),
            data: bytes::Bytes::new(),
        })
    }
}

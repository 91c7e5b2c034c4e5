//! [`Storage`] in memory: etcd's `MemoryStorage` (spec 4.2-4.3), for tests and examples.
//!
//! Where etcd panics (a gap on append, a range past the end, compacting or snapshotting beyond
//! the last index), these methods return a typed error and leave the storage unchanged.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use super::{Storage, check_batch, limited_len};
use crate::error::{Error, Result};
use crate::types::{Entry, HardState, RaftState, Snapshot};

/// An in-memory log for tests and examples.
///
/// Clones share one log, so a test can keep a handle for writes while a
/// [`RaftLog`](crate::RaftLog) owns another for reads. Every call takes one mutex.
///
/// ```
/// use raftwal::{Entry, MemStorage, Storage};
///
/// let storage = MemStorage::new();
/// storage.append(&[Entry::new(1, 1, "a"), Entry::new(2, 1, "b")])?;
/// assert_eq!((storage.first_index()?, storage.last_index()?), (1, 2));
/// storage.compact(1)?;
/// assert_eq!(storage.first_index()?, 2);
/// assert_eq!(storage.term(1)?, 1); // the compaction point keeps its term
/// # Ok::<(), raftwal::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    core: Arc<Mutex<Core>>,
}

#[derive(Debug)]
struct Core {
    hard_state: HardState,
    /// The latest snapshot applied or created (index 0: none).
    snapshot: Snapshot,
    /// `ents[0]` is a dummy holding only the id of the compaction point (`0@0` when nothing
    /// was compacted); real entries follow.
    /// Invariant: never empty; `ents[k].index == ents[0].index + k`.
    ents: Vec<Entry>,
}

impl Default for Core {
    fn default() -> Self {
        Self {
            hard_state: HardState::default(),
            snapshot: Snapshot::default(),
            ents: vec![Entry::default()],
        }
    }
}

impl Core {
    /// The compaction point: the index of the dummy entry.
    fn dummy_index(&self) -> u64 {
        // NB: `ents` is never empty (see its invariant); the fallback keeps this total.
        self.ents.first().map_or(0, |e| e.index)
    }

    fn first_index(&self) -> u64 {
        self.dummy_index() + 1
    }

    fn last_index(&self) -> u64 {
        self.dummy_index() + self.ents.len() as u64 - 1
    }

    /// The position of `index` in `ents`; the caller has checked it is in range.
    fn pos(&self, index: u64) -> usize {
        (index - self.dummy_index()) as usize
    }

    fn check_in_range(&self, index: u64) -> Result<()> {
        if index < self.dummy_index() {
            return Err(Error::Compacted {
                index,
                first_index: self.first_index(),
            });
        }
        if index > self.last_index() {
            return Err(Error::Unavailable {
                index,
                last_index: self.last_index(),
            });
        }
        Ok(())
    }
}

impl MemStorage {
    /// An empty log: first index 1, last index 0, `term(0) == 0`.
    pub fn new() -> Self {
        Self::default()
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        // No method panics while holding the lock, so a poisoned lock still guards valid data.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the hard state. No validation (etcd `SetHardState`).
    pub fn set_hard_state(&self, hard_state: HardState) {
        self.core().hard_state = hard_state;
    }

    /// Appends `entries`, first dropping any of them already compacted and truncating the
    /// stored suffix from `entries[0].index` (etcd `Append`).
    ///
    /// # Errors
    /// [`Error::NotContiguous`] if the entries leave a gap after the last index or inside the
    /// batch, [`Error::TermRegression`] if a term goes down. The log is unchanged on error.
    pub fn append(&self, entries: &[Entry]) -> Result<()> {
        check_batch(0, entries)?;
        let mut core = self.core();
        let first = core.first_index();
        // Entries already compacted are dropped: the log holds them (or their snapshot).
        let entries = match entries.iter().position(|e| e.index >= first) {
            Some(skip) => &entries[skip..],
            None => return Ok(()),
        };
        let Some(head) = entries.first() else {
            return Ok(());
        };
        let expected = core.last_index() + 1;
        if head.index > expected {
            return Err(Error::NotContiguous {
                expected,
                found: head.index,
            });
        }
        let keep = core.pos(head.index);
        let prev_term = core.ents.get(keep - 1).map_or(0, |e| e.term);
        check_batch(prev_term, &entries[..1])?;
        core.ents.truncate(keep);
        core.ents.extend_from_slice(entries);
        Ok(())
    }

    /// Replaces the log with `snapshot`: every entry is dropped and the log continues at
    /// `snapshot.meta.index + 1` (etcd `ApplySnapshot`). On a fresh storage an index-0 snapshot
    /// (membership only) is accepted.
    ///
    /// # Errors
    /// [`Error::SnapshotOutOfDate`] if a snapshot at or beyond its index is already held.
    pub fn apply_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        let mut core = self.core();
        let current = core.snapshot.meta.index;
        if current != 0 && current >= snapshot.meta.index {
            return Err(Error::SnapshotOutOfDate {
                index: snapshot.meta.index,
                current,
            });
        }
        core.ents = vec![Entry::new(
            snapshot.meta.index,
            snapshot.meta.term,
            Bytes::new(),
        )];
        core.snapshot = snapshot;
        Ok(())
    }

    /// Records a snapshot of the state up to `index`: its term is read from the log,
    /// `conf_state` replaces the membership when given. The log is not compacted.
    ///
    /// # Errors
    /// [`Error::SnapshotOutOfDate`] if `index` is not beyond the current snapshot,
    /// [`Error::Compacted`] / [`Error::Unavailable`] if the log has no term for `index`.
    pub fn create_snapshot(
        &self,
        index: u64,
        conf_state: Option<Bytes>,
        data: Bytes,
    ) -> Result<Snapshot> {
        let mut core = self.core();
        let current = core.snapshot.meta.index;
        if index <= current {
            return Err(Error::SnapshotOutOfDate { index, current });
        }
        core.check_in_range(index)?;
        let term = core.ents[core.pos(index)].term;
        let snap = &mut core.snapshot;
        snap.meta.index = index;
        snap.meta.term = term;
        if let Some(cs) = conf_state {
            snap.meta.conf_state = cs;
        }
        snap.data = data;
        Ok(snap.clone())
    }

    /// Discards entries up to and including `index`, which becomes the compaction point and
    /// keeps its term. The snapshot is not touched; compacting beyond `applied` is the
    /// caller's mistake to avoid.
    ///
    /// # Errors
    /// [`Error::Compacted`] if `index` is at or below the compaction point,
    /// [`Error::Unavailable`] if it is beyond the last index.
    pub fn compact(&self, index: u64) -> Result<()> {
        let mut core = self.core();
        if index <= core.dummy_index() {
            return Err(Error::Compacted {
                index,
                first_index: core.first_index(),
            });
        }
        core.check_in_range(index)?;
        let pos = core.pos(index);
        let dummy = Entry::new(index, core.ents[pos].term, Bytes::new());
        // A fresh vector, so the dropped prefix's memory is released.
        let mut ents = Vec::with_capacity(core.ents.len() - pos);
        ents.push(dummy);
        ents.extend_from_slice(&core.ents[pos + 1..]);
        core.ents = ents;
        Ok(())
    }
}

impl Storage for MemStorage {
    fn initial_state(&self) -> Result<RaftState> {
        let core = self.core();
        Ok(RaftState {
            hard_state: core.hard_state,
            conf_state: core.snapshot.meta.conf_state.clone(),
        })
    }

    fn entries(&self, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>> {
        let core = self.core();
        if lo <= core.dummy_index() {
            return Err(Error::Compacted {
                index: lo,
                first_index: core.first_index(),
            });
        }
        if lo > hi {
            return Err(Error::InvalidCall("entries: lo > hi"));
        }
        let last_index = core.last_index();
        if hi > last_index + 1 {
            return Err(Error::Unavailable {
                index: hi - 1,
                last_index,
            });
        }
        if core.ents.len() == 1 {
            return Err(Error::Unavailable {
                index: lo,
                last_index,
            });
        }
        let range = &core.ents[core.pos(lo)..core.pos(hi)];
        Ok(range[..limited_len(range, max_size)].to_vec())
    }

    fn term(&self, index: u64) -> Result<u64> {
        let core = self.core();
        core.check_in_range(index)?;
        Ok(core.ents[core.pos(index)].term)
    }

    fn first_index(&self) -> Result<u64> {
        Ok(self.core().first_index())
    }

    fn last_index(&self) -> Result<u64> {
        Ok(self.core().last_index())
    }

    fn snapshot(&self) -> Result<Snapshot> {
        Ok(self.core().snapshot.clone())
    }
}

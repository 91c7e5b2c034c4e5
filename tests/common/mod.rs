//! Helpers shared by the log-layer test crates: compact entry and snapshot builders, and a
//! writer whose durability the test releases by hand.
#![allow(dead_code, reason = "each test crate uses a different subset")]

use std::sync::Mutex;

use bytes::Bytes;
pub use raftwal::Entry;
use raftwal::wal::{Batch, Lsn};
use raftwal::{LogWriter, MemStorage, Result, Snapshot, SnapshotMeta};

/// Entry `index@term` with an empty payload.
pub fn e(index: u64, term: u64) -> Entry {
    Entry::new(index, term, Bytes::new())
}

/// Entries from `(index, term)` pairs.
pub fn ents(ids: &[(u64, u64)]) -> Vec<Entry> {
    ids.iter().map(|&(i, t)| e(i, t)).collect()
}

/// Entries `lo..hi` whose term is their index.
pub fn ents_term_is_index(lo: u64, hi: u64) -> Vec<Entry> {
    (lo..hi).map(|i| e(i, i)).collect()
}

/// A snapshot at `index@term` with no membership or data.
pub fn snap(index: u64, term: u64) -> Snapshot {
    Snapshot {
        meta: SnapshotMeta {
            index,
            term,
            conf_state: Bytes::new(),
        },
        data: Bytes::new(),
    }
}

/// `(index, term)` of each entry, for compact assertions.
pub fn ids(ents: &[Entry]) -> Vec<(u64, u64)> {
    ents.iter().map(|e| (e.index, e.term)).collect()
}

type Callback = Box<dyn FnOnce(Result<()>) + Send>;

/// A [`LogWriter`] over a [`MemStorage`]: writes land in the storage at once (readable
/// before they are durable, like the WAL), and each write's durability callback waits until
/// the test releases it, so acknowledgements can be delayed at will.
#[derive(Debug, Default)]
pub struct HeldWriter {
    pub storage: MemStorage,
    state: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    next_lsn: u64,
    /// Callbacks not yet fired, in Lsn order.
    waiting: Vec<(Lsn, Callback)>,
    /// Everything up to here was released.
    durable: Lsn,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("next_lsn", &self.next_lsn)
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl HeldWriter {
    pub fn new(storage: MemStorage) -> Self {
        Self {
            storage,
            state: Mutex::default(),
        }
    }

    /// Makes the oldest `n` writes durable (fewer if fewer are written); returns how many.
    pub fn release(&self, n: usize) -> usize {
        let fired: Vec<(Lsn, Callback)> = {
            let mut state = self.state.lock().unwrap();
            let n = n.min(state.waiting.len());
            let fired: Vec<_> = state.waiting.drain(..n).collect();
            if let Some((lsn, _)) = fired.last() {
                state.durable = *lsn;
            }
            fired
        };
        let count = fired.len();
        for (_, done) in fired {
            done(Ok(()));
        }
        count
    }

    /// Makes every write so far durable.
    pub fn release_all(&self) -> usize {
        self.release(usize::MAX)
    }

    /// Fails the next sync: the oldest waiting write gets the error.
    pub fn fail_next(&self) {
        let first = {
            let mut state = self.state.lock().unwrap();
            (!state.waiting.is_empty()).then(|| state.waiting.remove(0))
        };
        if let Some((_, done)) = first {
            done(Err(raftwal::Error::Poisoned));
        }
    }
}

impl LogWriter for HeldWriter {
    fn append(&self, batch: &Batch) -> Result<Lsn> {
        if let Some(meta) = &batch.snapshot {
            self.storage.apply_snapshot(Snapshot {
                meta: meta.clone(),
                data: Bytes::new(),
            })?;
        }
        self.storage.append(&batch.entries)?;
        if let Some(hs) = batch.hard_state {
            self.storage.set_hard_state(hs);
        }
        let mut state = self.state.lock().unwrap();
        state.next_lsn += 1;
        Ok(Lsn(state.next_lsn))
    }

    fn on_durable(&self, lsn: Lsn, done: Box<dyn FnOnce(Result<()>) + Send>) {
        let mut state = self.state.lock().unwrap();
        if lsn <= state.durable {
            drop(state);
            done(Ok(()));
        } else {
            state.waiting.push((lsn, done));
        }
    }
}

/// `(index, term)` in the spec's tables.
pub type Id = (u64, u64);
/// A list of `(index, term)`.
pub type Ids<'a> = &'a [Id];
pub mod model;

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
/// before they are durable, like the WAL) and become durable only when the test releases them,
/// so acknowledgements can be delayed at will.
#[derive(Debug, Default)]
pub struct HeldWriter {
    pub storage: MemStorage,
    state: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    /// The newest write.
    written: Lsn,
    /// Every write up to here is durable.
    durable: Lsn,
    /// A sync failed: nothing more becomes durable.
    failed: bool,
    /// Callbacks not yet run.
    waiting: Vec<(Lsn, Callback)>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("written", &self.written)
            .field("durable", &self.durable)
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

    /// Makes writes durable up to `lsn` (at most the newest write); returns how many writes
    /// became durable. Runs the callbacks this satisfies.
    fn make_durable(&self, lsn: Lsn) -> u64 {
        let (newly, fired) = {
            let mut state = self.state.lock().unwrap();
            if state.failed {
                return 0;
            }
            let target = lsn.min(state.written).max(state.durable);
            let newly = target.0 - state.durable.0;
            state.durable = target;
            let (fired, waiting) = std::mem::take(&mut state.waiting)
                .into_iter()
                .partition(|(l, _)| *l <= target);
            state.waiting = waiting;
            (newly, fired)
        };
        run(fired, || Ok(()));
        newly
    }

    /// Makes the oldest `n` writes not yet durable durable; returns how many there were.
    pub fn release(&self, n: usize) -> u64 {
        let durable = self.state.lock().unwrap().durable;
        self.make_durable(Lsn(durable.0.saturating_add(n as u64)))
    }

    /// Makes every write so far durable.
    pub fn release_all(&self) -> u64 {
        self.make_durable(Lsn(u64::MAX))
    }

    /// The next sync fails: every write not yet durable never will be.
    pub fn fail_next(&self) {
        let fired = {
            let mut state = self.state.lock().unwrap();
            state.failed = true;
            std::mem::take(&mut state.waiting)
        };
        run(fired, || Err(raftwal::Error::Poisoned));
    }
}

/// Runs `callbacks` in Lsn order with `result()`.
fn run(mut callbacks: Vec<(Lsn, Callback)>, result: impl Fn() -> Result<()>) {
    callbacks.sort_by_key(|(lsn, _)| *lsn);
    for (_, done) in callbacks {
        done(result());
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
        state.written.0 += 1;
        Ok(state.written)
    }

    /// Makes every write up to `lsn` durable, as a sync would.
    fn sync(&self, lsn: Lsn) -> Result<()> {
        self.make_durable(lsn);
        match self.state.lock().unwrap().failed {
            true => Err(raftwal::Error::Poisoned),
            false => Ok(()),
        }
    }

    fn on_durable(&self, lsn: Lsn, done: Box<dyn FnOnce(Result<()>) + Send>) {
        let mut state = self.state.lock().unwrap();
        if lsn <= state.durable {
            drop(state);
            done(Ok(()));
        } else if state.failed {
            drop(state);
            done(Err(raftwal::Error::Poisoned));
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

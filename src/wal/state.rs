//! The log's logical state in memory: which entries exist, where their bytes are, the hard
//! state and the snapshot metadata. Every write is first checked here (`check_*`, which never
//! changes anything) and then applied (`apply_*`), both when appending and when replaying the
//! frames of a segment at open.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::error::{DecodeError, Error, Result};
use crate::record::Checkpoint;
use crate::types::{Entry, EntryId, HardState, SnapshotMeta};
use crate::wal::Batch;

/// Where an entry's payload lives.
#[derive(Clone, Debug)]
pub(crate) enum Loc {
    /// In a segment that was purged: known to exist only because a checkpoint says so. Replay
    /// creates these and the purge that allowed the segment's removal drops them again.
    Missing,
    /// In segment `seg`, `len` bytes at `offset`; `data` holds them when they are in memory
    /// (the caller's buffer while the segment is active, a slice of its map once sealed).
    Stored {
        seg: u64,
        offset: u64,
        len: u32,
        data: Option<Bytes>,
    },
}

/// One retained entry.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub(crate) term: u64,
    pub(crate) loc: Loc,
}

impl Slot {
    /// The entry's [`Entry::size`].
    fn size(&self) -> u64 {
        let len = match &self.loc {
            Loc::Missing => 0,
            Loc::Stored { len, .. } => u64::from(*len),
        };
        crate::types::ENTRY_OVERHEAD + len
    }
}

/// What a write does to the log, checked before it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing changes; nothing needs writing.
    None,
    /// The log changes as the record says.
    Change,
}

/// The log's logical state.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogState {
    /// The compaction point: the entry just before `slots[0]`. Its term stays answerable.
    compacted: EntryId,
    /// Entries `(compacted.index, compacted.index + slots.len()]`, in index order. Their
    /// segments never decrease with the index (the log only grows at its end).
    slots: VecDeque<Slot>,
    /// The last hard state written.
    hard_state: HardState,
    /// The latest snapshot metadata (index 0: none).
    snapshot: SnapshotMeta,
}

impl LogState {
    /// The state a checkpoint describes, with every entry it counts [`Loc::Missing`].
    pub(crate) fn from_checkpoint(c: &Checkpoint) -> Result<Self, DecodeError> {
        let count = c
            .last
            .index
            .checked_sub(c.compacted.index)
            .ok_or(DecodeError::Malformed {
                what: "checkpoint's last index is below its compaction point",
            })?;
        let count = usize::try_from(count).map_err(|_| DecodeError::BadLength {
            len: count,
            max: usize::MAX as u64,
        })?;
        let mut slots = VecDeque::new();
        slots.resize(
            count,
            Slot {
                term: 0,
                loc: Loc::Missing,
            },
        );
        if let Some(last) = slots.back_mut() {
            last.term = c.last.term;
        }
        Ok(Self {
            compacted: c.compacted,
            slots,
            hard_state: c.hard_state,
            snapshot: c.snapshot.clone(),
        })
    }

    /// The checkpoint that describes this state.
    pub(crate) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            compacted: self.compacted,
            last: EntryId::new(self.last_term(), self.last_index()),
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
        }
    }

    pub(crate) fn first_index(&self) -> u64 {
        self.compacted.index + 1
    }

    pub(crate) fn last_index(&self) -> u64 {
        self.compacted.index + self.slots.len() as u64
    }

    fn last_term(&self) -> u64 {
        self.slots.back().map_or(self.compacted.term, |s| s.term)
    }

    pub(crate) fn compacted(&self) -> EntryId {
        self.compacted
    }

    pub(crate) fn hard_state(&self) -> HardState {
        self.hard_state
    }

    pub(crate) fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    /// The slots from `index` on. Callers check `index` is in `[first_index, last_index + 1]`.
    pub(crate) fn slots_from(&self, index: u64) -> impl Iterator<Item = &Slot> {
        let skip = index.saturating_sub(self.first_index());
        self.slots
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
    }

    /// Mutable slots from `index` on.
    pub(crate) fn slots_from_mut(&mut self, index: u64) -> impl Iterator<Item = &mut Slot> {
        let skip = index.saturating_sub(self.first_index());
        self.slots
            .iter_mut()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
    }

    /// The slots at the end of the log whose bytes are in segment `seq`.
    pub(crate) fn tail_slots_mut(&mut self, seq: u64) -> impl Iterator<Item = &mut Slot> {
        let in_seq = move |s: &&mut Slot| matches!(s.loc, Loc::Stored { seg, .. } if seg == seq);
        self.slots.iter_mut().rev().take_while(in_seq)
    }

    /// True if some entry's payload is known only to a purged segment.
    pub(crate) fn has_missing(&self) -> bool {
        self.slots.iter().any(|s| matches!(s.loc, Loc::Missing))
    }

    /// The term of entry `index`, answerable for `[first_index - 1, last_index]`.
    ///
    /// # Errors
    /// [`Error::Compacted`] below that range, [`Error::Unavailable`] above it.
    pub(crate) fn term(&self, index: u64) -> Result<u64> {
        if index < self.compacted.index {
            return Err(Error::Compacted {
                index,
                first_index: self.first_index(),
            });
        }
        if index == self.compacted.index {
            return Ok(self.compacted.term);
        }
        self.slots_from(index)
            .next()
            .map(|s| s.term)
            .ok_or(Error::Unavailable {
                index,
                last_index: self.last_index(),
            })
    }

    /// Checks `[lo, hi)` and returns how many entries from `lo` fit in `max_size` (at least
    /// one when the range is not empty).
    ///
    /// # Errors
    /// [`Error::Compacted`], [`Error::Unavailable`], or [`Error::InvalidCall`] if `lo > hi`.
    pub(crate) fn range_len(&self, lo: u64, hi: u64, max_size: u64) -> Result<usize> {
        if lo < self.first_index() {
            return Err(Error::Compacted {
                index: lo,
                first_index: self.first_index(),
            });
        }
        if hi > self.last_index() + 1 {
            return Err(Error::Unavailable {
                index: hi - 1,
                last_index: self.last_index(),
            });
        }
        if lo > hi {
            return Err(Error::InvalidCall("entries: lo is greater than hi"));
        }
        let mut total = 0u64;
        let fits = self
            .slots_from(lo)
            .take(usize::try_from(hi - lo).unwrap_or(usize::MAX))
            .take_while(|s| {
                total = total.saturating_add(s.size());
                total <= max_size
            })
            .count();
        Ok(if lo == hi { 0 } else { fits.max(1) })
    }

    /// Checks an append; see [`Wal::append`](crate::Wal::append) for the rules.
    pub(crate) fn check_batch(&self, batch: &Batch, max_entry_size: u64) -> Result<Effect> {
        let mut view = self.clone_bounds();
        if let Some(meta) = &batch.snapshot {
            if self.snapshot.index != 0 && self.snapshot.index >= meta.index {
                return Err(Error::SnapshotOutOfDate {
                    index: meta.index,
                    current: self.snapshot.index,
                });
            }
            view = Bounds {
                compacted: meta.id(),
                last: meta.id(),
            };
        }
        if let Some(first) = batch.entries.first() {
            let mut prev = EntryId::new(0, first.index.wrapping_sub(1));
            for (i, e) in batch.entries.iter().enumerate() {
                let expected = first.index.saturating_add(i as u64);
                if e.index != expected {
                    return Err(Error::NotContiguous {
                        expected,
                        found: e.index,
                    });
                }
                if i > 0 && e.term < prev.term {
                    return Err(Error::TermRegression {
                        index: e.index,
                        term: e.term,
                        prev_term: prev.term,
                    });
                }
                let size = e.data.len() as u64;
                if size > max_entry_size {
                    return Err(Error::EntryTooLarge {
                        index: e.index,
                        size,
                        max: max_entry_size,
                    });
                }
                prev = e.id();
            }
            if first.index > view.last.index + 1 {
                return Err(Error::NotContiguous {
                    expected: view.last.index + 1,
                    found: first.index,
                });
            }
            let commit = self.hard_state.commit;
            if batch.snapshot.is_none() && first.index <= view.last.index && first.index <= commit {
                return Err(Error::BelowCommitted {
                    index: first.index,
                    committed: commit,
                });
            }
            if first.index <= view.compacted.index {
                return Err(Error::Compacted {
                    index: first.index,
                    first_index: view.first(),
                });
            }
            let prev_term = if batch.snapshot.is_some() {
                view.last.term
            } else {
                self.term(first.index - 1)?
            };
            if first.term < prev_term {
                return Err(Error::TermRegression {
                    index: first.index,
                    term: first.term,
                    prev_term,
                });
            }
            view.last = prev;
        }
        if let Some(hs) = &batch.hard_state {
            if hs.term < self.hard_state.term {
                return Err(Error::InvalidCall("the hard state's term goes backwards"));
            }
            if hs.commit > view.last.index {
                return Err(Error::CommitBeyondLast {
                    commit: hs.commit,
                    last_index: view.last.index,
                });
            }
        }
        let empty =
            batch.entries.is_empty() && batch.hard_state.is_none() && batch.snapshot.is_none();
        Ok(if empty { Effect::None } else { Effect::Change })
    }

    /// Checks a suffix truncation after `index`.
    ///
    /// # Errors
    /// [`Error::BelowCommitted`] if committed entries would go, [`Error::Compacted`] if `index`
    /// is below the compaction point.
    pub(crate) fn check_truncate(&self, index: u64) -> Result<Effect> {
        if index >= self.last_index() {
            return Ok(Effect::None);
        }
        if index < self.hard_state.commit {
            return Err(Error::BelowCommitted {
                index: index + 1,
                committed: self.hard_state.commit,
            });
        }
        if index < self.compacted.index {
            return Err(Error::Compacted {
                index,
                first_index: self.first_index(),
            });
        }
        Ok(Effect::Change)
    }

    /// Checks a purge up to `id`.
    ///
    /// # Errors
    /// [`Error::InvalidCall`] if `id.index` is in the log with another term.
    pub(crate) fn check_purge(&self, id: EntryId) -> Result<Effect> {
        if id.index <= self.compacted.index {
            return Ok(Effect::None);
        }
        if id.index <= self.last_index() && self.term(id.index)? != id.term {
            return Err(Error::InvalidCall(
                "purge_to: the term does not match the entry's",
            ));
        }
        Ok(Effect::Change)
    }

    /// Checks the metadata of a locally taken snapshot.
    ///
    /// # Errors
    /// [`Error::SnapshotOutOfDate`] if it is not newer than the one held,
    /// [`Error::Unavailable`] if it is past the last index.
    pub(crate) fn check_snapshot_meta(&self, meta: &SnapshotMeta) -> Result<Effect> {
        if self.snapshot.index != 0 && meta.index <= self.snapshot.index {
            return Err(Error::SnapshotOutOfDate {
                index: meta.index,
                current: self.snapshot.index,
            });
        }
        if meta.index > self.last_index() {
            return Err(Error::Unavailable {
                index: meta.index,
                last_index: self.last_index(),
            });
        }
        Ok(Effect::Change)
    }

    /// Applies a batch whose entries' payloads are at `locs` (one per entry, in order).
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] if the batch does not fit the log (only replay of damaged
    /// but checksum-valid bytes can get here; appends are checked first).
    pub(crate) fn apply_batch(
        &mut self,
        batch: &Batch,
        locs: impl IntoIterator<Item = Loc>,
    ) -> Result<(), DecodeError> {
        if let Some(meta) = &batch.snapshot {
            self.compacted = meta.id();
            self.slots.clear();
            self.snapshot = meta.clone();
        }
        if let Some(first) = batch.entries.first() {
            if first.index <= self.compacted.index || first.index > self.last_index() + 1 {
                return Err(DecodeError::Malformed {
                    what: "batch does not continue the log",
                });
            }
            self.truncate_after(first.index - 1);
            let terms = batch.entries.iter().map(|e: &Entry| e.term);
            self.slots
                .extend(terms.zip(locs).map(|(term, loc)| Slot { term, loc }));
        }
        if let Some(hs) = batch.hard_state {
            self.hard_state = hs;
        }
        Ok(())
    }

    /// Removes every entry after `index` (nothing if `index >= last_index`).
    pub(crate) fn truncate_after(&mut self, index: u64) {
        let keep = index.saturating_sub(self.compacted.index);
        self.slots
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }

    /// Compacts up to and including `id`.
    pub(crate) fn apply_purge(&mut self, id: EntryId) {
        if id.index <= self.compacted.index {
            return;
        }
        let drop = (id.index - self.compacted.index).min(self.slots.len() as u64);
        self.slots
            .drain(..usize::try_from(drop).unwrap_or(usize::MAX));
        self.compacted = id;
    }

    /// Records snapshot metadata.
    pub(crate) fn apply_snapshot_meta(&mut self, meta: &SnapshotMeta) {
        self.snapshot = meta.clone();
    }

    fn clone_bounds(&self) -> Bounds {
        Bounds {
            compacted: self.compacted,
            last: EntryId::new(self.last_term(), self.last_index()),
        }
    }
}

/// The ends of the log, as a batch being checked sees them.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    compacted: EntryId,
    last: EntryId,
}

impl Bounds {
    fn first(&self) -> u64 {
        self.compacted.index + 1
    }
}

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
#[derive(Clone, Copy, Debug)]
pub(crate) enum Loc {
    /// In a segment that was purged: known to exist only because a checkpoint says so. Replay
    /// creates these and the purge that allowed the segment's removal drops them again.
    Missing,
    /// In segment `seg`, `len` bytes at `offset`.
    Stored { seg: u64, offset: u64, len: u32 },
}

/// One retained entry: 32 bytes, with no payload handle of its own (a million entries are
/// 32 MiB of slots, touched once at open).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    pub(crate) term: u64,
    pub(crate) loc: Loc,
}

const _: () = assert!(
    size_of::<Slot>() == 32,
    "a slot grew: every entry pays for it"
);

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
    /// segments never decrease with the index (the log only grows at its end). Invariant:
    /// the [`Loc::Missing`] slots, if any, come first: only a checkpoint makes them, and
    /// every later change adds or removes slots at the ends.
    slots: VecDeque<Slot>,
    /// The payloads of the newest entries, appended since their segment was last mapped:
    /// `fresh[k]` is that of `slots[slots.len() - fresh.len() + k]`. Invariant:
    /// `fresh.len() <= slots.len()`. Older payloads are read from their segment.
    fresh: VecDeque<Bytes>,
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
            fresh: VecDeque::new(),
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

    /// The entries from `index` on, each with its payload if it is held in memory. Callers
    /// check `index` is in `[first_index, last_index + 1]`.
    pub(crate) fn entries_from(&self, index: u64) -> impl Iterator<Item = (&Slot, Option<&Bytes>)> {
        let skip = usize::try_from(index.saturating_sub(self.first_index())).unwrap_or(usize::MAX);
        // NB: `fresh_from` is where `fresh` starts among the slots; before it, no payloads.
        let fresh_from = self.slots.len().saturating_sub(self.fresh.len());
        let held = (0..fresh_from.saturating_sub(skip)).map(|_| None).chain(
            self.fresh
                .iter()
                .skip(skip.saturating_sub(fresh_from))
                .map(Some),
        );
        self.slots_from(index).zip(held)
    }

    /// Lets go of the payloads held in memory: their segment is mapped now, or readable only
    /// from its file. Returns them, for the caller to drop once it holds no lock: a
    /// segment's worth of payloads takes milliseconds to free.
    #[must_use = "dropping the payloads under a lock stalls readers and writers"]
    pub(crate) fn release_payloads(&mut self) -> VecDeque<Bytes> {
        std::mem::take(&mut self.fresh)
    }

    /// True if some entry's payload is known only to a purged segment.
    ///
    /// Cost: O(1), by the invariant on `slots`.
    pub(crate) fn has_missing(&self) -> bool {
        self.slots
            .front()
            .is_some_and(|s| matches!(s.loc, Loc::Missing))
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

    /// The entries of `[lo, hi)` that fit in `max_size` bytes by [`Entry::size`], but at least
    /// one when the range is not empty (etcd's rules): index, slot, and the payload if it is
    /// held in memory.
    ///
    /// # Errors
    /// [`Error::Compacted`], [`Error::Unavailable`], or [`Error::InvalidCall`] if `lo > hi`.
    pub(crate) fn range(
        &self,
        lo: u64,
        hi: u64,
        max_size: u64,
    ) -> Result<impl Iterator<Item = (u64, &Slot, Option<&Bytes>)>> {
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
        let fits = move |(index, (slot, _)): &(u64, (&Slot, _))| {
            total = total.saturating_add(slot.size());
            total <= max_size || *index == lo
        };
        let entries = (lo..hi).zip(self.entries_from(lo)).take_while(fits);
        Ok(entries.map(|(index, (slot, held))| (index, slot, held)))
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
            if first.index <= view.compacted.index {
                return Err(Error::Compacted {
                    index: first.index,
                    first_index: view.first(),
                });
            }
            let commit = self.committed();
            if batch.snapshot.is_none() && first.index <= view.last.index && first.index <= commit {
                return Err(Error::BelowCommitted {
                    index: first.index,
                    committed: commit,
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
        let hard_state = batch.hard_state.unwrap_or(self.hard_state);
        if hard_state.term < self.hard_state.term {
            return Err(Error::InvalidCall("the hard state's term goes backwards"));
        }
        // Also catches a snapshot that would reset the log below the commit index.
        if hard_state.commit > view.last.index {
            return Err(Error::CommitBeyondLast {
                commit: hard_state.commit,
                last_index: view.last.index,
            });
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
        let committed = self.committed();
        if index < committed {
            return Err(Error::BelowCommitted {
                index: index + 1,
                committed,
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

    /// Applies an appended batch whose entries' payloads are at `locs` (one per entry, in
    /// order), and holds the payloads until their segment is mapped.
    ///
    /// # Errors
    /// As [`LogState::apply_parts`].
    pub(crate) fn apply_batch(
        &mut self,
        batch: &Batch,
        locs: impl IntoIterator<Item = Loc>,
    ) -> Result<(), DecodeError> {
        let terms = batch.entries.iter().map(|e: &Entry| e.term);
        let slots = terms.zip(locs).map(|(term, loc)| Slot { term, loc });
        let first = batch.entries.first().map(|e| e.index);
        self.apply_parts(batch.snapshot.as_ref(), first, slots, batch.hard_state)?;
        self.fresh
            .extend(batch.entries.iter().map(|e| e.data.clone()));
        Ok(())
    }

    /// Applies a batch taken apart: the snapshot it installs, the index of its first entry
    /// (`None` without entries), its entries as slots, and its hard state.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] if the batch does not fit the log (only replay of damaged
    /// but checksum-valid bytes can get here; appends are checked first).
    pub(crate) fn apply_parts(
        &mut self,
        snapshot: Option<&SnapshotMeta>,
        first: Option<u64>,
        slots: impl IntoIterator<Item = Slot>,
        hard_state: Option<HardState>,
    ) -> Result<(), DecodeError> {
        if let Some(meta) = snapshot {
            self.compacted = meta.id();
            self.slots.clear();
            self.fresh.clear();
            self.snapshot = meta.clone();
        }
        if let Some(first) = first {
            if first <= self.compacted.index || first > self.last_index() + 1 {
                return Err(DecodeError::Malformed {
                    what: "batch does not continue the log",
                });
            }
            self.truncate_after(first - 1);
            self.slots.extend(slots);
        }
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
        Ok(())
    }

    /// Makes room for `additional` more entries, growing at least twofold if it must grow:
    /// replay knows roughly how many entries are coming, and one large allocation spares it
    /// the copies and page faults of many doublings.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let needed = self.slots.len().saturating_add(additional);
        if needed > self.slots.capacity() {
            let target = needed.max(self.slots.capacity().saturating_mul(2));
            self.slots.reserve_exact(target - self.slots.len());
        }
    }

    /// Removes every entry after `index` (nothing if `index >= last_index`).
    pub(crate) fn truncate_after(&mut self, index: u64) {
        let keep = index.saturating_sub(self.compacted.index);
        let before = self.slots.len();
        self.slots
            .truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        let removed = before - self.slots.len();
        self.fresh
            .truncate(self.fresh.len().saturating_sub(removed));
    }

    /// Compacts up to and including `id`.
    pub(crate) fn apply_purge(&mut self, id: EntryId) {
        if id.index <= self.compacted.index {
            return;
        }
        let drop = (id.index - self.compacted.index).min(self.slots.len() as u64);
        self.slots
            .drain(..usize::try_from(drop).unwrap_or(usize::MAX));
        let stale = self.fresh.len().saturating_sub(self.slots.len());
        self.fresh.drain(..stale);
        self.compacted = id;
    }

    /// Records snapshot metadata.
    pub(crate) fn apply_snapshot_meta(&mut self, meta: &SnapshotMeta) {
        self.snapshot = meta.clone();
    }

    /// The highest index no write may change: the commit index, or a snapshot's (a snapshot
    /// covers committed entries only).
    fn committed(&self) -> u64 {
        self.hard_state.commit.max(self.snapshot.index)
    }

    /// Checks what every accepted write keeps true. Debug builds only; never run on replayed
    /// bytes, which are checked by [`DecodeError`]s instead.
    pub(crate) fn check_invariants(&self) {
        debug_assert!(
            self.hard_state.commit <= self.last_index(),
            "commit beyond the log"
        );
        debug_assert!(
            self.snapshot.index <= self.last_index(),
            "snapshot beyond the log"
        );
        debug_assert!(
            self.fresh.len() <= self.slots.len(),
            "payloads of entries not in the log"
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries 6..=9 of 10 bytes each (term 2, then 3 from 8 on), compacted at 5@2.
    fn log() -> LogState {
        let mut log = LogState::default();
        log.apply_purge(EntryId::new(2, 5));
        let entries = (6..10)
            .map(|i| Entry::new(i, 2 + i / 8, vec![0u8; 10]))
            .collect();
        let batch = Batch {
            entries,
            ..Batch::default()
        };
        let locs = (0..4).map(|i| Loc::Stored {
            seg: 1,
            offset: i * 10,
            len: 10,
        });
        log.apply_batch(&batch, locs).unwrap();
        log
    }

    #[test]
    fn terms_are_answered_from_the_compaction_point_to_the_end() {
        let log = log();
        // (index, term or error)
        let cases = [
            (4, Err("compacted")),
            (5, Ok(2)),
            (6, Ok(2)),
            (8, Ok(3)),
            (9, Ok(3)),
            (10, Err("unavailable")),
        ];
        for (index, want) in cases {
            let got = log.term(index).map_err(|e| match e {
                Error::Compacted { .. } => "compacted",
                Error::Unavailable { .. } => "unavailable",
                _ => "other",
            });
            assert_eq!(got, want, "term({index})");
        }
    }

    #[test]
    fn ranges_are_checked_and_limited_by_size_but_never_empty() {
        let log = log();
        let size = 10 + crate::types::ENTRY_OVERHEAD;
        // (lo, hi, max_size, entries or error)
        let cases = [
            (6, 10, u64::MAX, Ok(4)),
            (6, 10, 0, Ok(1)),
            (6, 10, 2 * size, Ok(2)),
            (6, 10, 2 * size - 1, Ok(1)),
            (7, 7, 0, Ok(0)),
            (10, 10, 0, Ok(0)),
            (5, 7, u64::MAX, Err("compacted")),
            (6, 11, u64::MAX, Err("unavailable")),
            (8, 7, u64::MAX, Err("invalid")),
        ];
        for (lo, hi, max, want) in cases {
            let got = log
                .range(lo, hi, max)
                .map(Iterator::count)
                .map_err(|e| match e {
                    Error::Compacted { .. } => "compacted",
                    Error::Unavailable { .. } => "unavailable",
                    Error::InvalidCall(_) => "invalid",
                    _ => "other",
                });
            assert_eq!(got, want, "[{lo}, {hi}) max {max}");
        }
    }

    /// Appends entries `indexes` (term 1) with one-byte payloads `index * mul`.
    fn append(log: &mut LogState, indexes: std::ops::RangeInclusive<u64>, mul: u64) {
        let entries: Vec<_> = indexes
            .map(|i| Entry::new(i, 1, vec![(i * mul) as u8]))
            .collect();
        let locs = entries.iter().map(|e| Loc::Stored {
            seg: 1,
            offset: e.index,
            len: 1,
        });
        let batch = Batch {
            entries: entries.clone(),
            ..Batch::default()
        };
        log.apply_batch(&batch, locs).unwrap();
    }

    /// The held payload of every entry from `lo` on (`None`: read from the segment).
    fn held(log: &LogState, lo: u64) -> Vec<Option<u8>> {
        let held = log.entries_from(lo).map(|(_, data)| data.map(|d| d[0]));
        held.collect()
    }

    #[test]
    fn held_payloads_stay_with_their_entries_through_every_change() {
        let mut log = LogState::default();
        append(&mut log, 1..=3, 1);
        assert_eq!(held(&log, 1), [Some(1), Some(2), Some(3)]);
        assert_eq!(held(&log, 3), [Some(3)]);
        assert_eq!(
            log.release_payloads().len(),
            3,
            "the payloads held are handed back"
        );
        append(&mut log, 4..=6, 1);
        assert_eq!(held(&log, 2), [None, None, Some(4), Some(5), Some(6)]);
        // A follower's overwrite of entries 5 and 6, then of the released entry 3.
        append(&mut log, 5..=6, 10);
        assert_eq!(held(&log, 3), [None, Some(4), Some(50), Some(60)]);
        append(&mut log, 3..=4, 20);
        assert_eq!(held(&log, 1), [None, None, Some(60), Some(80)]);
        log.apply_purge(EntryId::new(1, 3));
        assert_eq!(held(&log, 4), [Some(80)]);
        log.apply_purge(EntryId::new(1, 9));
        append(&mut log, 10..=10, 1);
        assert_eq!(held(&log, 10), [Some(10)]);
        let snapshot = SnapshotMeta {
            index: 12,
            term: 1,
            conf_state: Bytes::new(),
        };
        log.apply_parts(Some(&snapshot), None, [], None).unwrap();
        append(&mut log, 13..=13, 1);
        assert_eq!(held(&log, 13), [Some(13)]);
        log.check_invariants();
    }

    #[test]
    fn reserving_room_changes_no_entry() {
        let mut log = log();
        log.reserve(1000);
        assert!(log.slots.capacity() >= log.slots.len() + 1000);
        assert_eq!((log.first_index(), log.last_index()), (6, 9));
        assert_eq!(log.range(6, 10, u64::MAX).unwrap().count(), 4);
    }

    #[test]
    fn a_checkpoint_describes_the_state_it_rebuilds() {
        let log = log();
        let again = LogState::from_checkpoint(&log.checkpoint()).unwrap();
        assert_eq!((again.first_index(), again.last_index()), (6, 9));
        assert_eq!((again.term(5).unwrap(), again.term(9).unwrap()), (2, 3));
        assert!(again.has_missing(), "a checkpoint carries no payloads");
        assert!(!log.has_missing());
    }
}

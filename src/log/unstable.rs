//! etcd's `unstable` (log_unstable.go): the tail of the log, and an incoming snapshot, that are
//! not yet known to be durable in [`Storage`](crate::Storage). Pure: no I/O.

use crate::error::{Error, Result};
use crate::storage::check_batch;
use crate::types::{Entry, EntryId, Snapshot};

/// Entries and a snapshot not yet known durable, with the part already handed out for writing.
///
/// Index landscape (half-open ranges):
///
/// ```text
///   snapshot.index < offset <= offset_in_progress <= offset + entries.len()
///   [ known durable ..)[ being written ......)[ not yet handed out ..)
/// ```
///
/// Every method keeps etcd's name and semantics (spec 2.1); `(T, bool)` results are `Option<T>`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unstable {
    /// An incoming snapshot not yet known durable; written before `entries`.
    /// Invariant: if set, `snapshot.meta.index < offset` (equal to `offset - 1` until entries
    /// after it are stabilised).
    snapshot: Option<Snapshot>,
    /// Entries not yet known durable.
    /// Invariant: `entries[k].index == offset + k`, terms never decrease.
    entries: Vec<Entry>,
    /// The index of `entries[0]`: everything below is durable as far as this log knows.
    /// Moved up by `stable_to`, reset by `restore` and by an append that replaces all entries.
    offset: u64,
    /// `entries[offset..offset_in_progress)` were handed out in an accepted Ready and are being
    /// written; exclusive. Moved up by `accept_in_progress`, down by a truncating append.
    /// Invariant: `offset <= offset_in_progress <= offset + entries.len()`.
    offset_in_progress: u64,
    /// The snapshot was handed out in an accepted Ready and is being written.
    /// Invariant: implies `snapshot.is_some()`.
    snapshot_in_progress: bool,
}

impl Unstable {
    /// An empty unstable log whose next entry has index `offset` (the storage's last index + 1).
    pub fn new(offset: u64) -> Self {
        Self {
            offset,
            offset_in_progress: offset,
            ..Self::default()
        }
    }

    /// An unstable log in the given state, for tests and for rebuilding a saved state.
    ///
    /// # Errors
    /// [`Error::InvalidCall`] if the parts break a field invariant (see the type's docs).
    ///
    /// ```
    /// use raftwal::{Entry, Unstable};
    ///
    /// let u = Unstable::from_parts(None, vec![Entry::new(5, 1, ""), Entry::new(6, 1, "")], 5, 6, false)?;
    /// assert_eq!(u.next_entries(), &[Entry::new(6, 1, "")]);
    /// assert!(Unstable::from_parts(None, vec![Entry::new(5, 1, "")], 5, 7, false).is_err());
    /// # Ok::<(), raftwal::Error>(())
    /// ```
    pub fn from_parts(
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        offset: u64,
        offset_in_progress: u64,
        snapshot_in_progress: bool,
    ) -> Result<Self> {
        let u = Self {
            snapshot,
            entries,
            offset,
            offset_in_progress,
            snapshot_in_progress,
        };
        match u.broken_invariant() {
            Some(what) => Err(Error::InvalidCall(what)),
            None => Ok(u),
        }
    }

    /// The entries not yet known durable; `entries()[k]` has index `offset() + k`.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The index of the first unstable entry.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// One past the last entry handed out for writing.
    pub fn offset_in_progress(&self) -> u64 {
        self.offset_in_progress
    }

    /// The pending snapshot, in progress or not.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// True once the pending snapshot was handed out for writing.
    pub fn snapshot_in_progress(&self) -> bool {
        self.snapshot_in_progress
    }

    /// The first index of the log if a snapshot is pending (its index + 1). Entries alone
    /// never define it: the storage does.
    pub fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.meta.index + 1)
    }

    /// The last index if there are entries or a snapshot.
    pub fn maybe_last_index(&self) -> Option<u64> {
        match self.entries.len() {
            0 => self.snapshot.as_ref().map(|s| s.meta.index),
            n => Some(self.offset + n as u64 - 1),
        }
    }

    /// The term of entry `index` if this unstable log knows it: an entry, or the pending
    /// snapshot's own index.
    pub fn maybe_term(&self, index: u64) -> Option<u64> {
        if index < self.offset {
            return self
                .snapshot
                .as_ref()
                .filter(|s| s.meta.index == index)
                .map(|s| s.meta.term);
        }
        self.entries
            .get((index - self.offset) as usize)
            .map(|e| e.term)
    }

    /// The entries not yet handed out for writing (empty when there are none).
    pub fn next_entries(&self) -> &[Entry] {
        let start = (self.offset_in_progress - self.offset) as usize;
        self.entries.get(start..).unwrap_or_default()
    }

    /// The snapshot if one is pending and not yet handed out.
    pub fn next_snapshot(&self) -> Option<&Snapshot> {
        self.snapshot
            .as_ref()
            .filter(|_| !self.snapshot_in_progress)
    }

    /// Marks every entry and the snapshot as handed out for writing.
    pub fn accept_in_progress(&mut self) {
        if !self.entries.is_empty() {
            self.offset_in_progress = self.offset + self.entries.len() as u64;
        }
        if self.snapshot.is_some() {
            self.snapshot_in_progress = true;
        }
        self.check_invariants();
    }

    /// Forgets the entries up to and including `id`, now durable in storage, if `id` still
    /// names an unstable entry (not the snapshot) with the same term. Otherwise does nothing:
    /// the tail was replaced after the write started (spec 2.1 `stableTo`).
    ///
    /// The caller must know that no write still in flight can overwrite these entries: that is
    /// what the term check of [`RaftLog::on_persisted`](crate::RaftLog::on_persisted) proves.
    /// Memory: the entries vector is released once empty.
    pub fn stable_to(&mut self, id: EntryId) {
        if id.index < self.offset || self.maybe_term(id.index) != Some(id.term) {
            return;
        }
        let n = (id.index + 1 - self.offset) as usize;
        if n == self.entries.len() {
            self.entries = Vec::new();
        } else {
            self.entries.drain(..n);
        }
        self.offset = id.index + 1;
        self.offset_in_progress = self.offset_in_progress.max(self.offset);
        self.check_invariants();
    }

    /// Forgets the pending snapshot if it is the one at `index`, now durable.
    pub fn stable_snap_to(&mut self, index: u64) {
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.meta.index == index)
        {
            self.snapshot = None;
            self.snapshot_in_progress = false;
        }
        self.check_invariants();
    }

    /// Replaces everything with `snapshot`: entries are dropped (in progress or not) and the
    /// log continues at `snapshot.meta.index + 1`.
    pub fn restore(&mut self, snapshot: Snapshot) {
        self.offset = snapshot.meta.index + 1;
        self.offset_in_progress = self.offset;
        self.entries = Vec::new();
        self.snapshot = Some(snapshot);
        self.snapshot_in_progress = false;
        self.check_invariants();
    }

    /// Appends `ents`, first truncating any unstable entries at and after `ents[0].index`.
    /// In-progress marks survive only below that index.
    ///
    /// # Errors
    /// Leaving the state unchanged: [`Error::NotContiguous`] if `ents` has a gap or starts
    /// beyond `offset + len`, [`Error::TermRegression`] if a term goes down (inside `ents` or
    /// against the unstable entry before it), [`Error::BelowCommitted`] if `ents` would
    /// overwrite the pending snapshot (etcd-io/raft#157).
    pub fn truncate_and_append(&mut self, ents: &[Entry]) -> Result<()> {
        let Some(first) = ents.first() else {
            return Ok(());
        };
        let from = first.index;
        let end = self.offset + self.entries.len() as u64;
        if from > end {
            return Err(Error::NotContiguous {
                expected: end,
                found: from,
            });
        }
        if let Some(snap) = &self.snapshot
            && from <= snap.meta.index
        {
            return Err(Error::BelowCommitted {
                index: from,
                committed: snap.meta.index,
            });
        }
        let prev_term = from
            .checked_sub(1)
            .and_then(|prev| self.maybe_term(prev))
            .unwrap_or(0);
        check_batch(prev_term, ents)?;
        if from <= self.offset {
            // Everything is replaced; nothing is in progress any more.
            self.entries = ents.to_vec();
            self.offset = from;
            self.offset_in_progress = from;
        } else {
            // Pure append (from == end) or truncation inside the entries.
            self.entries.truncate((from - self.offset) as usize);
            self.entries.extend_from_slice(ents);
            self.offset_in_progress = self.offset_in_progress.min(from);
        }
        self.check_invariants();
        Ok(())
    }

    /// The entries `[lo, hi)`, all of which must be unstable.
    ///
    /// # Errors
    /// [`Error::InvalidCall`] if `lo > hi` or the range reaches outside
    /// `[offset, offset + len)` (where etcd panics).
    pub fn slice(&self, lo: u64, hi: u64) -> Result<&[Entry]> {
        if lo > hi {
            return Err(Error::InvalidCall("unstable slice with lo > hi"));
        }
        if lo < self.offset {
            return Err(Error::InvalidCall("unstable slice below offset"));
        }
        let (lo, hi) = ((lo - self.offset) as usize, (hi - self.offset) as usize);
        self.entries
            .get(lo..hi)
            .ok_or(Error::InvalidCall("unstable slice beyond the last entry"))
    }

    /// The first field invariant `self` breaks, if any.
    fn broken_invariant(&self) -> Option<&'static str> {
        let end = self.offset + self.entries.len() as u64;
        if self.offset > self.offset_in_progress || self.offset_in_progress > end {
            return Some("offset <= offset_in_progress <= offset + len");
        }
        let first_term = self.entries.first().map_or(0, |e| e.term);
        let mut prev = EntryId::new(first_term, self.offset.wrapping_sub(1));
        for e in &self.entries {
            if e.index != prev.index.wrapping_add(1) || e.term < prev.term {
                return Some("entries are contiguous from offset with terms never going down");
            }
            prev = e.id();
        }
        if self.snapshot_in_progress && self.snapshot.is_none() {
            return Some("snapshot_in_progress implies a snapshot");
        }
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.meta.index >= self.offset)
        {
            return Some("the snapshot precedes the entries");
        }
        None
    }

    /// Asserts the field invariants (debug builds only).
    fn check_invariants(&self) {
        debug_assert_eq!(self.broken_invariant(), None, "{self:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ents(range: std::ops::Range<u64>, term: u64) -> Vec<Entry> {
        range.map(|i| Entry::new(i, term, vec![0u8; 64])).collect()
    }

    #[test]
    fn stable_to_releases_the_entries_vector() {
        let mut u = Unstable::new(1);
        u.truncate_and_append(&ents(1..257, 1)).unwrap();
        u.accept_in_progress();
        u.stable_to(EntryId::new(1, 100));
        assert_eq!(u.entries().len(), 156);
        u.stable_to(EntryId::new(1, 256));
        assert!(u.entries().is_empty());
        assert_eq!(
            u.entries.capacity(),
            0,
            "no memory kept after everything is stable"
        );
    }

    #[test]
    fn bad_appends_leave_the_state_unchanged() {
        let mut u = Unstable::new(5);
        u.truncate_and_append(&ents(5..7, 2)).unwrap();
        let before = u.clone();
        let gap = u.truncate_and_append(&ents(8..9, 2));
        assert!(matches!(
            gap,
            Err(Error::NotContiguous {
                expected: 7,
                found: 8
            })
        ));
        let backwards = u.truncate_and_append(&ents(7..8, 1));
        assert!(matches!(
            backwards,
            Err(Error::TermRegression { index: 7, .. })
        ));
        let holey = [Entry::new(7, 2, ""), Entry::new(9, 2, "")];
        assert!(matches!(
            u.truncate_and_append(&holey),
            Err(Error::NotContiguous { .. })
        ));
        assert_eq!(u, before);
    }

    #[test]
    fn an_append_may_not_overwrite_the_pending_snapshot() {
        let mut u = Unstable::new(1);
        u.restore(Snapshot {
            meta: crate::SnapshotMeta {
                index: 4,
                term: 2,
                ..Default::default()
            },
            ..Default::default()
        });
        let before = u.clone();
        let r = u.truncate_and_append(&ents(4..6, 2));
        assert!(matches!(
            r,
            Err(Error::BelowCommitted {
                index: 4,
                committed: 4
            })
        ));
        assert_eq!(u, before);
        u.truncate_and_append(&ents(5..6, 2)).unwrap();
        assert_eq!(u.maybe_last_index(), Some(5));
    }
}

//! etcd's `raftLog` (log.go): durable [`Storage`] plus the [`Unstable`] tail, with the commit,
//! apply and apply-flow-control indexes (spec 1.3, 2.2).

use crate::error::{Error, Result};
use crate::log::Unstable;
use crate::storage::{Storage, check_batch, limited_len};
use crate::types::{Entry, EntryId, HardState, Snapshot, entries_size};

/// Settings of a [`RaftLog`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Byte budget ([`Entry::size`]) of committed entries handed out for applying but not yet
    /// acknowledged by [`RaftLog::applied_to`] (etcd `MaxCommittedSizePerReady`). At least
    /// one entry is always handed out. Must not be 0. Default: no limit.
    pub max_applying_size: u64,
    /// Asynchronous storage writes: Readies are persisted by a pipeline that reports back
    /// through [`RaftLog::on_persisted`], and only locally durable entries are handed out for
    /// applying. Default: false (synchronous, [`RaftLog::advance`]).
    pub async_storage_writes: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_applying_size: u64::MAX,
            async_storage_writes: false,
        }
    }
}

/// The Raft log as the consensus layer sees it: stable entries in `S`, the unstable tail in
/// memory, and how far it is committed, handed out for applying and applied.
///
/// ```text
///   first_index-1 .. applied <= applying <= committed .......... last_index
///   [ storage: compaction point | stable entries ...][ unstable: offset .. ]
/// ```
///
/// Where etcd panics on a broken invariant, the methods here return a typed [`Error`] and leave
/// the log unchanged. Storage errors other than `Compacted`/`Unavailable` are passed through.
///
/// The synchronous loop over [`MemStorage`](crate::MemStorage) (with the WAL, writes go
/// through a [`Pipeline`](crate::Pipeline) instead):
///
/// ```
/// use raftwal::{Entry, EntryId, MemStorage, RaftLog};
///
/// let storage = MemStorage::new();
/// let mut log = RaftLog::new(storage.clone())?;
/// log.set_term_vote(1, 1)?;
/// log.append(&[Entry::new(1, 1, "x"), Entry::new(2, 1, "y")])?;
///
/// let rd = log.ready_without_accept()?;
/// log.accept_ready(&rd)?;
/// storage.append(rd.entries())?; // persist first ...
/// if let Some(hs) = rd.hard_state() {
///     storage.set_hard_state(hs);
/// }
/// log.advance()?; // ... then report it
/// assert!(log.unstable().entries().is_empty());
///
/// assert!(log.maybe_commit(EntryId::new(1, 2))?); // a quorum has 1..=2
/// let rd = log.ready_without_accept()?;
/// assert_eq!(rd.committed_entries().len(), 2);
/// log.accept_ready(&rd)?;
/// log.advance()?; // applied
/// assert_eq!(log.applied(), 2);
/// # Ok::<(), raftwal::Error>(())
/// ```
#[derive(Debug)]
pub struct RaftLog<S> {
    /// Everything known durable since the last snapshot.
    pub(super) storage: S,
    /// Entries and a snapshot not yet known durable.
    pub(super) unstable: Unstable,
    /// The highest index known committed on a quorum. Never decreases except by `restore`.
    /// Invariant: `applying <= committed <= last_index()`.
    pub(super) committed: u64,
    /// The highest index handed out for applying (in an accepted Ready).
    /// Invariant: `applied <= applying <= committed`.
    pub(super) applying: u64,
    /// The highest index the application reported applied.
    pub(super) applied: u64,
    /// Byte budget of handed-out, unacknowledged committed entries. Invariant: > 0.
    pub(super) max_applying_size: u64,
    /// Bytes of committed entries handed out and not yet acknowledged by `applied_to`.
    pub(super) applying_size: u64,
    /// No more committed entries are handed out until `applied_to` makes room.
    /// Invariant: false implies `applying_size < max_applying_size`.
    pub(super) applying_paused: bool,
    /// Term and vote the consensus layer set; with `committed` they form the hard state.
    pub(super) term: u64,
    /// See `term`.
    pub(super) vote: u64,
    /// The hard state of the last accepted Ready (initially the stored one).
    pub(super) prev_hard_state: HardState,
    /// Asynchronous storage writes (see [`LogConfig::async_storage_writes`]).
    pub(super) async_writes: bool,
    /// Sync mode: what [`RaftLog::advance`] does for the accepted Ready; `None` when no Ready
    /// awaits `advance`.
    pub(super) pending_advance: Option<super::ready::Advance>,
}

impl<S: Storage> RaftLog<S> {
    /// A log over `storage` with the default [`LogConfig`] (etcd `newLog`).
    ///
    /// # Errors
    /// As [`RaftLog::with_config`].
    pub fn new(storage: S) -> Result<Self> {
        Self::with_config(storage, LogConfig::default())
    }

    /// A log over `storage`: the unstable tail starts after the storage's last index; committed,
    /// applying and applied start at the compaction point, then committed moves to the stored
    /// hard state's commit (etcd `newLogWithSize` + `loadState`).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] if `max_applying_size` is 0, [`Error::CommitBeyondLast`] if the
    /// stored commit index is beyond the last index, and any storage error.
    pub fn with_config(storage: S, config: LogConfig) -> Result<Self> {
        if config.max_applying_size == 0 {
            return Err(Error::InvalidOption {
                name: "max_applying_size",
                reason: "must be at least 1",
            });
        }
        let first_index = storage.first_index()?;
        let last_index = storage.last_index()?;
        let hard_state = storage.initial_state()?.hard_state;
        if hard_state.commit > last_index {
            return Err(Error::CommitBeyondLast {
                commit: hard_state.commit,
                last_index,
            });
        }
        let start = first_index - 1;
        Ok(Self {
            storage,
            unstable: Unstable::new(last_index + 1),
            // NB: a snapshot proves its index committed, whatever the hard state says.
            committed: hard_state.commit.max(start),
            applying: start,
            applied: start,
            max_applying_size: config.max_applying_size,
            applying_size: 0,
            applying_paused: false,
            term: hard_state.term,
            vote: hard_state.vote,
            prev_hard_state: hard_state,
            async_writes: config.async_storage_writes,
            pending_advance: None,
        })
    }

    /// The storage underneath.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage underneath, for writes in synchronous mode.
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// The unstable tail.
    pub fn unstable(&self) -> &Unstable {
        &self.unstable
    }

    /// The highest index known committed.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// The highest index handed out for applying.
    pub fn applying(&self) -> u64 {
        self.applying
    }

    /// The highest index reported applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Bytes of committed entries handed out for applying and not yet acknowledged.
    pub fn applying_size(&self) -> u64 {
        self.applying_size
    }

    /// True while committed entries are held back until `applied_to` makes room.
    pub fn applying_paused(&self) -> bool {
        self.applying_paused
    }

    /// The first index readable through [`RaftLog::slice`].
    ///
    /// # Errors
    /// Storage errors.
    pub fn first_index(&self) -> Result<u64> {
        match self.unstable.maybe_first_index() {
            Some(i) => Ok(i),
            None => self.storage.first_index(),
        }
    }

    /// The index of the last entry (the snapshot index when there are none).
    ///
    /// # Errors
    /// Storage errors.
    pub fn last_index(&self) -> Result<u64> {
        match self.unstable.maybe_last_index() {
            Some(i) => Ok(i),
            None => self.storage.last_index(),
        }
    }

    /// The term of entry `index`, for `index` in `[first_index - 1, last_index]`.
    ///
    /// # Errors
    /// [`Error::Compacted`] below that range, [`Error::Unavailable`] above it, storage errors.
    pub fn term(&self, index: u64) -> Result<u64> {
        if let Some(t) = self.unstable.maybe_term(index) {
            return Ok(t);
        }
        let first_index = self.first_index()?;
        if index + 1 < first_index {
            return Err(Error::Compacted { index, first_index });
        }
        let last_index = self.last_index()?;
        if index > last_index {
            return Err(Error::Unavailable { index, last_index });
        }
        self.storage.term(index)
    }

    /// The term of `index`, or `None` when it is outside the log (etcd `zeroTermOnOutOfBounds`).
    fn term_if_present(&self, index: u64) -> Result<Option<u64>> {
        match self.term(index) {
            Ok(t) => Ok(Some(t)),
            Err(Error::Compacted { .. } | Error::Unavailable { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The id of the last entry; `(0, 0)` on a fresh log.
    ///
    /// # Errors
    /// Storage errors.
    pub fn last_entry_id(&self) -> Result<EntryId> {
        let index = self.last_index()?;
        Ok(EntryId::new(self.term(index)?, index))
    }

    /// True if the log holds `id.index` with term `id.term`.
    ///
    /// # Errors
    /// Storage errors other than the index being outside the log.
    pub fn match_term(&self, id: EntryId) -> Result<bool> {
        Ok(self.term_if_present(id.index)? == Some(id.term))
    }

    /// True if a log ending at `their` is at least as up to date as this one (Raft's vote rule).
    ///
    /// # Errors
    /// Storage errors.
    pub fn is_up_to_date(&self, their: EntryId) -> Result<bool> {
        let our = self.last_entry_id()?;
        Ok(their.term > our.term || (their.term == our.term && their.index >= our.index))
    }

    /// The index of the first entry of `ents` that the log does not hold with the same term
    /// (a conflict, or the first new entry); 0 if the log holds them all.
    ///
    /// # Errors
    /// Storage errors.
    pub fn find_conflict(&self, ents: &[Entry]) -> Result<u64> {
        for e in ents {
            if !self.match_term(e.id())? {
                return Ok(e.index);
            }
        }
        Ok(0)
    }

    /// The last `(index, term)` at or below `index` whose term is at most `term` (a rejection
    /// hint); `(index, 0)` as soon as the term of an index is unknown, `(0, 0)` if none.
    ///
    /// # Errors
    /// Storage errors.
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> Result<(u64, u64)> {
        let mut index = index;
        while index > 0 {
            match self.term_if_present(index)? {
                None => return Ok((index, 0)),
                Some(t) if t <= term => return Ok((index, t)),
                Some(_) => index -= 1,
            }
        }
        Ok((0, 0))
    }

    /// Appends `ents`, replacing any entries at and after `ents[0].index`; returns the new last
    /// index. Empty `ents` changes nothing.
    ///
    /// # Errors
    /// Leaving the log unchanged: [`Error::BelowCommitted`] if `ents` would overwrite a
    /// committed entry, [`Error::NotContiguous`] if they leave a gap, [`Error::TermRegression`]
    /// if a term goes down, storage errors.
    pub fn append(&mut self, ents: &[Entry]) -> Result<u64> {
        let Some(first) = ents.first() else {
            return self.last_index();
        };
        if first.index <= self.committed {
            return Err(Error::BelowCommitted {
                index: first.index,
                committed: self.committed,
            });
        }
        let expected = self.last_index()? + 1;
        if first.index > expected {
            return Err(Error::NotContiguous {
                expected,
                found: first.index,
            });
        }
        // `first.index - 1 >= committed >= first_index - 1`, so its term is in the log. Only the
        // first entry needs it: `truncate_and_append` checks the rest of the batch itself.
        check_batch(self.term(first.index - 1)?, std::slice::from_ref(first))?;
        self.unstable.truncate_and_append(ents)?;
        self.check_invariants();
        self.last_index()
    }

    /// A follower's append of a leader's entries that follow `prev` (etcd `maybeAppend`).
    /// Returns `None` (nothing changed) if the log does not hold `prev`; otherwise writes the
    /// entries from the first conflict on (never truncating when there is none), commits up to
    /// `min(committed, last new index)` and returns that last new index.
    ///
    /// # Errors
    /// Leaving the log unchanged: [`Error::NotContiguous`] / [`Error::TermRegression`] if
    /// `ents` do not follow `prev`, [`Error::BelowCommitted`] if a committed entry conflicts,
    /// storage errors.
    pub fn maybe_append(
        &mut self,
        prev: EntryId,
        committed: u64,
        ents: &[Entry],
    ) -> Result<Option<u64>> {
        if let Some(first) = ents.first()
            && prev.index.checked_add(1) != Some(first.index)
        {
            return Err(Error::NotContiguous {
                expected: prev.index.saturating_add(1),
                found: first.index,
            });
        }
        check_batch(prev.term, ents)?;
        if !self.match_term(prev)? {
            return Ok(None);
        }
        let last_new = prev.index + ents.len() as u64;
        let conflict = self.find_conflict(ents)?;
        if conflict != 0 {
            if conflict <= self.committed {
                return Err(Error::BelowCommitted {
                    index: conflict,
                    committed: self.committed,
                });
            }
            let skip = (conflict - (prev.index + 1)) as usize;
            self.append(ents.get(skip..).unwrap_or_default())?;
        }
        self.commit_to(committed.min(last_new))?;
        self.check_invariants();
        Ok(Some(last_new))
    }

    /// Moves the commit index up to `to_commit`; a lower value changes nothing.
    ///
    /// # Errors
    /// [`Error::CommitBeyondLast`] if `to_commit` is beyond the last index (the log was lost or
    /// truncated), storage errors.
    pub fn commit_to(&mut self, to_commit: u64) -> Result<()> {
        if to_commit <= self.committed {
            return Ok(());
        }
        let last_index = self.last_index()?;
        if to_commit > last_index {
            return Err(Error::CommitBeyondLast {
                commit: to_commit,
                last_index,
            });
        }
        self.committed = to_commit;
        self.check_invariants();
        Ok(())
    }

    /// Commits up to `at.index` if the log holds `at` and `at` moves the commit index; a leader
    /// passes its own term, so it only commits entries of its term. Returns whether it did.
    ///
    /// # Errors
    /// Storage errors.
    pub fn maybe_commit(&mut self, at: EntryId) -> Result<bool> {
        if at.term == 0 || at.index <= self.committed || !self.match_term(at)? {
            return Ok(false);
        }
        self.commit_to(at.index)?;
        Ok(true)
    }

    /// Records that the application applied everything up to `index`, acknowledging `size`
    /// bytes of handed-out entries (saturating at 0).
    ///
    /// # Errors
    /// [`Error::InvalidCall`] if `index` is beyond `committed` or below `applied`.
    pub fn applied_to(&mut self, index: u64, size: u64) -> Result<()> {
        if index > self.committed {
            return Err(Error::InvalidCall("applied_to beyond the committed index"));
        }
        if index < self.applied {
            return Err(Error::InvalidCall("applied_to below the applied index"));
        }
        self.applied = index;
        self.applying = self.applying.max(index);
        self.applying_size = self.applying_size.saturating_sub(size);
        self.applying_paused = self.applying_size >= self.max_applying_size;
        self.check_invariants();
        Ok(())
    }

    /// Records that committed entries up to `index`, `size` bytes, were handed out for applying.
    /// Pauses further hand-outs when the budget is used up or the batch was cut short by it.
    ///
    /// # Errors
    /// [`Error::InvalidCall`] if `index` is beyond `committed` or below `applied`.
    pub fn accept_applying(&mut self, index: u64, size: u64, allow_unstable: bool) -> Result<()> {
        if index > self.committed {
            return Err(Error::InvalidCall(
                "accept_applying beyond the committed index",
            ));
        }
        if index < self.applied {
            return Err(Error::InvalidCall(
                "accept_applying below the applied index",
            ));
        }
        self.applying = index;
        self.applying_size = self.applying_size.saturating_add(size);
        self.applying_paused = self.applying_size >= self.max_applying_size
            || index < self.max_appliable_index(allow_unstable);
        self.check_invariants();
        Ok(())
    }

    /// The highest index that may be applied: `committed`, and with `!allow_unstable` only
    /// what is durable locally.
    pub(super) fn max_appliable_index(&self, allow_unstable: bool) -> u64 {
        if allow_unstable {
            self.committed
        } else {
            self.committed.min(self.unstable.offset() - 1)
        }
    }

    /// True if [`RaftLog::next_committed_ents`] would return entries.
    pub fn has_next_committed_ents(&self, allow_unstable: bool) -> bool {
        !self.applying_paused
            && self.unstable.snapshot().is_none()
            && self.applying < self.max_appliable_index(allow_unstable)
    }

    /// Committed entries not yet handed out for applying, within the remaining apply budget
    /// (at least one). Empty while paused or while a snapshot is pending.
    ///
    /// # Errors
    /// Storage errors.
    pub fn next_committed_ents(&self, allow_unstable: bool) -> Result<Vec<Entry>> {
        if !self.has_next_committed_ents(allow_unstable) {
            return Ok(Vec::new());
        }
        let hi = self.max_appliable_index(allow_unstable) + 1;
        // Not paused implies room left in the budget (see `applying_paused`).
        let budget = self.max_applying_size - self.applying_size;
        self.slice(self.applying + 1, hi, budget)
    }

    /// The unstable entries not yet handed out for writing.
    pub fn next_unstable_ents(&self) -> &[Entry] {
        self.unstable.next_entries()
    }

    /// True if there are unstable entries not yet handed out.
    pub fn has_next_unstable_ents(&self) -> bool {
        !self.next_unstable_ents().is_empty()
    }

    /// True if there are unstable entries, handed out or not.
    pub fn has_next_or_in_progress_unstable_ents(&self) -> bool {
        !self.unstable.entries().is_empty()
    }

    /// The pending snapshot if not yet handed out.
    pub fn next_unstable_snapshot(&self) -> Option<&Snapshot> {
        self.unstable.next_snapshot()
    }

    /// True if a snapshot is pending, handed out or not.
    pub fn has_next_or_in_progress_snapshot(&self) -> bool {
        self.unstable.snapshot().is_some()
    }

    /// Marks every unstable entry and the snapshot as handed out for writing.
    pub fn accept_unstable(&mut self) {
        self.unstable.accept_in_progress();
    }

    /// Forgets unstable entries up to `id`, now durable (see [`Unstable::stable_to`]).
    pub fn stable_to(&mut self, id: EntryId) {
        self.unstable.stable_to(id);
    }

    /// Forgets the pending snapshot at `index`, now durable.
    pub fn stable_snap_to(&mut self, index: u64) {
        self.unstable.stable_snap_to(index);
    }

    /// The latest snapshot: the pending one, else the storage's.
    ///
    /// # Errors
    /// Storage errors such as [`Error::SnapshotTemporarilyUnavailable`].
    pub fn snapshot(&self) -> Result<Snapshot> {
        match self.unstable.snapshot() {
            Some(s) => Ok(s.clone()),
            None => self.storage.snapshot(),
        }
    }

    /// Resets the log to `snapshot`: every unstable entry is dropped, the log continues after
    /// it and `committed` becomes its index (a consensus layer only restores snapshots beyond
    /// its commit index). `applied` moves when the snapshot is reported durable.
    ///
    /// # Errors
    /// [`Error::BelowCommitted`] if the snapshot ends below entries already handed out for
    /// applying; the log is unchanged.
    pub fn restore(&mut self, snapshot: Snapshot) -> Result<()> {
        if snapshot.meta.index < self.applying {
            return Err(Error::BelowCommitted {
                index: snapshot.meta.index,
                committed: self.applying,
            });
        }
        self.committed = snapshot.meta.index;
        self.unstable.restore(snapshot);
        self.check_invariants();
        Ok(())
    }

    /// Entries from `index` to the end, at most `max_size` bytes (at least one).
    ///
    /// # Errors
    /// As [`RaftLog::slice`].
    pub fn entries(&self, index: u64, max_size: u64) -> Result<Vec<Entry>> {
        let last_index = self.last_index()?;
        if index > last_index {
            return Ok(Vec::new());
        }
        self.slice(index, last_index + 1, max_size)
    }

    /// Every entry in the log, retrying if a compaction races the read.
    ///
    /// # Errors
    /// Storage errors.
    pub fn all_entries(&self) -> Result<Vec<Entry>> {
        loop {
            match self.entries(self.first_index()?, u64::MAX) {
                Err(Error::Compacted { .. }) => continue,
                result => return result,
            }
        }
    }

    /// The entries `[lo, hi)`, read from storage and then the unstable tail: the longest prefix
    /// of at most `max_size` bytes, but at least one entry when `lo < hi`.
    ///
    /// # Errors
    /// [`Error::InvalidCall`] if `lo > hi`, [`Error::Compacted`] if `lo < first_index`,
    /// [`Error::Unavailable`] if `hi > last_index + 1`, storage errors.
    pub fn slice(&self, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>> {
        self.check_out_of_bounds(lo, hi)?;
        if lo == hi {
            return Ok(Vec::new());
        }
        let offset = self.unstable.offset();
        if lo >= offset {
            let ents = self.unstable.slice(lo, hi)?;
            return Ok(ents[..limited_len(ents, max_size)].to_vec());
        }
        let cut = hi.min(offset);
        let mut ents = self.storage.entries(lo, cut, max_size)?;
        if hi <= offset || (ents.len() as u64) < cut - lo {
            return Ok(ents);
        }
        let size = entries_size(&ents);
        if size >= max_size {
            return Ok(ents);
        }
        let tail = self.unstable.slice(offset, hi)?;
        let tail = &tail[..limited_len(tail, max_size - size)];
        // `limited_len` keeps one entry even when it alone overflows the remaining budget.
        if entries_size(tail) <= max_size - size {
            ents.extend_from_slice(tail);
        }
        Ok(ents)
    }

    /// Calls `visit` with consecutive pages of `[lo, hi)`, each one entry or at most
    /// `page_size` bytes; stops at the first error, which it returns (a visitor may use an
    /// error to break off).
    ///
    /// # Errors
    /// As [`RaftLog::slice`], or the visitor's error.
    pub fn scan<E: From<Error>>(
        &self,
        lo: u64,
        hi: u64,
        page_size: u64,
        mut visit: impl FnMut(&[Entry]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut lo = lo;
        while lo < hi {
            let page = self.slice(lo, hi, page_size)?;
            if page.is_empty() {
                return Err(Error::Unavailable {
                    index: lo,
                    last_index: self.last_index()?,
                }
                .into());
            }
            visit(&page)?;
            lo += page.len() as u64;
        }
        Ok(())
    }

    /// Checks `[lo, hi)` lies within `[first_index, last_index + 1)`.
    fn check_out_of_bounds(&self, lo: u64, hi: u64) -> Result<()> {
        if lo > hi {
            return Err(Error::InvalidCall("slice with lo > hi"));
        }
        let first_index = self.first_index()?;
        if lo < first_index {
            return Err(Error::Compacted {
                index: lo,
                first_index,
            });
        }
        let last_index = self.last_index()?;
        if hi > last_index + 1 {
            return Err(Error::Unavailable {
                index: hi - 1,
                last_index,
            });
        }
        Ok(())
    }

    /// Asserts `applied <= applying <= committed <= last_index` (debug builds only).
    pub(super) fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            assert!(self.applied <= self.applying && self.applying <= self.committed);
            if let Ok(last) = self.last_index() {
                assert!(
                    self.committed <= last,
                    "committed {} <= last {last}",
                    self.committed
                );
            }
        }
    }
}

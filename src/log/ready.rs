//! The Ready lifecycle on the log (spec section 3): what to persist and apply next, accepting
//! it, and the acknowledgements that move the log once it is durable.

use crate::error::{Error, Result};
use crate::log::RaftLog;
use crate::storage::Storage;
use crate::types::{Entry, EntryId, HardState, Snapshot, entries_size};
use crate::wal::Batch;

/// What the log asks of the application: persist [`Ready::persist_part`], then apply
/// [`Ready::committed_entries`]. Built by [`RaftLog::ready_without_accept`], handed over by
/// [`RaftLog::accept_ready`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a Ready must be accepted with `accept_ready`, persisted and applied"]
pub struct Ready {
    /// Entries to persist: the unstable ones not yet handed out.
    entries: Vec<Entry>,
    /// Committed entries to apply, in order, after `entries` (sync mode: may overlap them).
    committed_entries: Vec<Entry>,
    /// The hard state to persist, if it changed since the last accepted Ready.
    hard_state: Option<HardState>,
    /// A snapshot to persist before `entries`.
    snapshot: Option<Snapshot>,
    /// Entries, term or vote changed: the write must be synced before it is acknowledged.
    must_sync: bool,
    /// What the write reports back once durable.
    ack: PersistAck,
}

impl Ready {
    /// The entries to persist.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The committed entries to apply once `entries` are persisted.
    pub fn committed_entries(&self) -> &[Entry] {
        &self.committed_entries
    }

    /// The hard state to persist, if it changed.
    pub fn hard_state(&self) -> Option<HardState> {
        self.hard_state
    }

    /// The snapshot to persist (and to install in the state machine) before the entries.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// True if entries, term or vote changed; a commit-only change need not be synced.
    pub fn must_sync(&self) -> bool {
        self.must_sync
    }

    /// The part to write to storage, with the acknowledgement to report once it is durable.
    /// Clones the entries (cheap: payloads are shared).
    pub fn persist_part(&self) -> Persist {
        Persist {
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
            hard_state: self.hard_state,
            must_sync: self.must_sync,
            ack: self.ack,
        }
    }
}

/// One write for the storage: a snapshot first, then entries (replacing any stored suffix from
/// the first), with a hard state, all-or-nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persist {
    /// A snapshot to install first; the log then continues after it.
    pub snapshot: Option<Snapshot>,
    /// Entries to append.
    pub entries: Vec<Entry>,
    /// A hard state to record.
    pub hard_state: Option<HardState>,
    /// See [`Ready::must_sync`].
    pub must_sync: bool,
    /// Hand this to [`RaftLog::on_persisted`] once the write is durable.
    pub ack: PersistAck,
}

impl Persist {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.snapshot.is_none() && self.entries.is_empty() && self.hard_state.is_none()
    }

    /// The WAL batch for this write, and the acknowledgement to report once it is durable.
    pub fn into_batch(self) -> (Batch, PersistAck) {
        let batch = Batch {
            snapshot: self.snapshot.map(|s| s.meta),
            entries: self.entries,
            hard_state: self.hard_state,
        };
        (batch, self.ack)
    }
}

/// What a durable write reports back to the log (etcd's `MsgStorageAppendResp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistAck {
    /// The term when the write was issued. An ack from an older term is ignored for entries:
    /// a newer leader may have queued an overwrite behind it (the ABA race, spec 6.1).
    pub term: u64,
    /// The last entry of the whole log when the write was issued (earlier writes carry the
    /// rest and are durable first); `None` when there were no unstable entries.
    pub last: Option<EntryId>,
    /// The pending snapshot when the write was issued: installed by this write or an earlier
    /// one, so durable with it. Like `last`, this keeps the log consistent even if acks are
    /// fed out of order.
    pub snapshot: Option<EntryId>,
}

/// Sync mode: the effects [`RaftLog::advance`] applies for the accepted Ready.
#[derive(Clone, Copy, Debug)]
pub(super) struct Advance {
    /// The accepted Ready's acknowledgement.
    ack: PersistAck,
    /// The last committed entry handed out and the bytes handed out, if any.
    applied: Option<(u64, u64)>,
}

impl<S: Storage> RaftLog<S> {
    /// The hard state: the term and vote last set, and the commit index.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.committed,
        }
    }

    /// Records the consensus layer's term and vote, to be persisted with the next Ready.
    ///
    /// # Errors
    /// [`Error::InvalidCall`] if the term goes down or the vote changes within a term.
    pub fn set_term_vote(&mut self, term: u64, vote: u64) -> Result<()> {
        if term < self.term {
            return Err(Error::InvalidCall("set_term_vote: term went down"));
        }
        if term == self.term && self.vote != 0 && vote != self.vote {
            return Err(Error::InvalidCall(
                "set_term_vote: vote changed within a term",
            ));
        }
        self.term = term;
        self.vote = vote;
        Ok(())
    }

    /// True if there is anything to persist or apply (spec 3.1, without messages).
    pub fn has_ready(&self) -> bool {
        let hs = self.hard_state();
        (!hs.is_empty() && hs != self.prev_hard_state)
            || self.next_unstable_snapshot().is_some()
            || self.has_next_unstable_ents()
            || self.has_next_committed_ents(!self.async_writes)
    }

    /// What to persist and apply next, without changing anything (spec 3.2). Async mode hands
    /// out only committed entries already durable locally.
    ///
    /// # Errors
    /// Storage errors while reading committed entries.
    pub fn ready_without_accept(&self) -> Result<Ready> {
        let hs = self.hard_state();
        let prev = self.prev_hard_state;
        let entries = self.next_unstable_ents().to_vec();
        let snapshot = self.next_unstable_snapshot().cloned();
        let last = match self.has_next_or_in_progress_unstable_ents() {
            true => Some(self.last_entry_id()?),
            false => None,
        };
        Ok(Ready {
            must_sync: !entries.is_empty() || hs.term != prev.term || hs.vote != prev.vote,
            committed_entries: self.next_committed_ents(!self.async_writes)?,
            hard_state: (hs != prev).then_some(hs),
            ack: PersistAck {
                term: self.term,
                last,
                // The pending snapshot, new in this Ready or already being written.
                snapshot: self.unstable.snapshot().map(|s| s.meta.id()),
            },
            entries,
            snapshot,
        })
    }

    /// Hands `rd` over: its entries and snapshot are now being written, its committed entries
    /// being applied (spec 3.3).
    ///
    /// # Errors
    /// Leaving the log unchanged, [`Error::InvalidCall`] if `rd` is stale (the log changed
    /// since it was built) or, in sync mode, the previous Ready was not advanced.
    pub fn accept_ready(&mut self, rd: &Ready) -> Result<()> {
        if !self.async_writes && self.pending_advance.is_some() {
            return Err(Error::InvalidCall(
                "accept_ready twice without advance in between",
            ));
        }
        if !self.is_current(rd) {
            return Err(Error::InvalidCall("accept_ready with a stale Ready"));
        }
        let applied = rd
            .committed_entries
            .last()
            .map(|last| (last.index, entries_size(&rd.committed_entries)));
        if let Some((index, size)) = applied {
            self.accept_applying(index, size, !self.async_writes)?;
        }
        if let Some(hs) = rd.hard_state {
            self.prev_hard_state = hs;
        }
        self.unstable.accept_in_progress();
        if !self.async_writes {
            self.pending_advance = Some(Advance {
                ack: rd.ack,
                applied,
            });
        }
        self.check_invariants();
        Ok(())
    }

    /// True if `rd` is what `ready_without_accept` would build now, as far as accepting it goes.
    fn is_current(&self, rd: &Ready) -> bool {
        let next = self.next_unstable_ents();
        let same_entries = rd.entries.len() == next.len()
            && rd.entries.first().map(Entry::id) == next.first().map(Entry::id)
            && rd.entries.last().map(Entry::id) == next.last().map(Entry::id);
        let same_snapshot = rd.snapshot.as_ref().map(|s| s.meta.id())
            == self.next_unstable_snapshot().map(|s| s.meta.id());
        let same_committed = match (rd.committed_entries.first(), rd.committed_entries.last()) {
            (Some(first), Some(last)) => {
                first.index == self.applying + 1
                    && last.index <= self.max_appliable_index(!self.async_writes)
            }
            _ => true,
        };
        same_entries && same_snapshot && same_committed
    }

    /// Sync mode: the accepted Ready was persisted and its committed entries applied. Marks its
    /// entries and snapshot stable and its committed entries applied (spec 3.4). Does nothing
    /// if no Ready was accepted.
    ///
    /// # Errors
    /// [`Error::InvalidCall`] in async mode (report writes with [`RaftLog::on_persisted`]).
    pub fn advance(&mut self) -> Result<()> {
        if self.async_writes {
            return Err(Error::InvalidCall("advance in async storage-write mode"));
        }
        let Some(pending) = self.pending_advance.take() else {
            return Ok(());
        };
        self.on_persisted(&pending.ack)?;
        if let Some((index, size)) = pending.applied {
            self.applied_to(index.max(self.applied), size)?;
        }
        Ok(())
    }

    /// A write is durable: moves the log with etcd's rules (spec 3.5). Entries are marked
    /// stable only if the term has not changed since the write was issued (a newer leader's
    /// overwrite may be queued behind it); a snapshot is always honoured, and counts as
    /// applied (the application installs its data when it takes the Ready).
    ///
    /// # Errors
    /// [`Error::InvalidCall`] if the snapshot lies beyond the committed index (a forged ack).
    pub fn on_persisted(&mut self, ack: &PersistAck) -> Result<()> {
        if let Some(snap) = ack.snapshot
            && snap.index > self.committed
        {
            return Err(Error::InvalidCall(
                "on_persisted: snapshot beyond committed",
            ));
        }
        if ack.term == self.term
            && let Some(last) = ack.last
        {
            self.unstable.stable_to(last);
        }
        if let Some(snap) = ack.snapshot {
            self.unstable.stable_snap_to(snap.index);
            self.applied_to(snap.index.max(self.applied), 0)?;
        }
        self.check_invariants();
        Ok(())
    }
}

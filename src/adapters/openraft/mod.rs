//! openraft 0.9 log storage: [`OpenraftLog`] implements `RaftLogStorage` and `RaftLogReader`
//! (openraft's `storage-v2` API) over one [`Wal`].
//!
//! Everything openraft asks to keep lives in the one WAL, so every write is ordered with every
//! other, as openraft requires ("all write-IO must be serialized"):
//!
//! | openraft                  | raftwal                                                          |
//! |---------------------------|------------------------------------------------------------------|
//! | entry at index `i`        | entry at index `i + 1`, term = leader term, data = leader node id, payload kind, payload (layout in `codec.rs`) |
//! | vote                      | hard state: `term` = vote term, `vote` = `node_id << 1 \| committed` |
//! | committed log id          | hard state: `commit` = index + 1 (0 = none); the rest of the id is read back from the entry, or is the last purged id once the entry is purged |
//! | last purged log id        | snapshot metadata `{index + 1, term, conf_state = leader node id}`, then the WAL's compaction point |
//!
//! Durability:
//! - `append` returns once the batch is written and readable. Its `LogFlushed` callback runs on
//!   the WAL's syncer ([`Wal::on_durable`]) after the fdatasync that covers the batch, never
//!   before; a lone write is synced at once, not on a timer.
//! - `save_vote`, `truncate` and `purge` return after a sync.
//! - `save_committed` is written but not synced: after a crash openraft may read back an older
//!   committed id and re-apply less, which is all the pointer is for.
//! - `purge` records the last purged id before compacting, in an earlier WAL write, so it is
//!   durable first; [`OpenraftLog::new`] finishes a compaction a crash cut short.
//!
//! openraft's default (multi-leader-per-term) log ids are stored; its `single-term-leader` feature
//! changes `LeaderId` and is not supported.
//!
//! # Example
//!
//! ```
//! use std::io::Cursor; // `declare_raft_types!` names it unqualified
//!
//! use openraft::storage::RaftLogStorage;
//! use raftwal::DecodeError;
//! use raftwal::adapters::openraft::{LogCodec, OpenraftLog, decode_basic_node, encode_basic_node};
//!
//! openraft::declare_raft_types!(pub Config: D = Vec<u8>, R = ());
//!
//! impl LogCodec for Config {
//!     fn encode_data(data: &Vec<u8>, out: &mut Vec<u8>) {
//!         out.extend_from_slice(data);
//!     }
//!     fn decode_data(bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
//!         Ok(bytes.to_vec())
//!     }
//!     fn encode_node(node: &openraft::BasicNode, out: &mut Vec<u8>) {
//!         encode_basic_node(node, out);
//!     }
//!     fn decode_node(bytes: &[u8]) -> Result<openraft::BasicNode, DecodeError> {
//!         decode_basic_node(bytes)
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let (mut log, _report) = OpenraftLog::<Config>::open(dir.path(), raftwal::Options::default())?;
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! runtime.block_on(async {
//!     log.save_vote(&openraft::Vote::new(3, 1)).await?;
//!     assert_eq!(log.read_vote().await?, Some(openraft::Vote::new(3, 1)));
//!     Ok::<_, openraft::StorageError<u64>>(())
//! })?;
//! # Ok(())
//! # }
//! ```

mod codec;

pub use codec::{LogCodec, decode_basic_node, encode_basic_node};

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, LogId, OptionalSend, StorageError, StorageIOError, Vote};

use crate::error::{DecodeError, Error};
use crate::types::{Entry, EntryId, HardState};
use crate::wal::{Batch, Lsn, Options, RecoveryReport, Wal};

/// Why an [`OpenraftLog`] call failed. openraft receives it inside a [`StorageError`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenraftLogError {
    /// The WAL refused or failed the operation (indexes in it are raftwal's: openraft's + 1).
    #[error(transparent)]
    Wal(#[from] Error),
    /// Bytes the WAL returned intact are not what this adapter writes.
    #[error("stored openraft value at raftwal index {index} does not decode: {source}")]
    Decode {
        /// The raftwal index of the entry or snapshot metadata.
        index: u64,
        /// What is wrong with the bytes.
        #[source]
        source: DecodeError,
    },
    /// A value this layout cannot hold (see the module docs).
    #[error("openraft value cannot be stored: {what}")]
    Unrepresentable {
        /// Which limit it exceeds.
        what: &'static str,
    },
}

impl From<codec::Unrepresentable> for OpenraftLogError {
    fn from(e: codec::Unrepresentable) -> Self {
        Self::Unrepresentable { what: e.0 }
    }
}

/// openraft's log store over a [`Wal`]: see the module docs for the layout and the durability of
/// each call.
#[derive(Debug)]
pub struct OpenraftLog<C: LogCodec> {
    /// The log, shared with every reader handed out.
    wal: Arc<Wal>,
    /// The Lsn of the latest write made through this handle. Invariant: syncing it makes every
    /// write this handle made durable.
    last_lsn: Lsn,
    _config: PhantomData<fn() -> C>,
}

/// A cheap handle that reads the log while the [`OpenraftLog`] it came from keeps writing
/// (openraft's replication tasks each hold one).
#[derive(Debug)]
pub struct OpenraftLogReader<C: LogCodec> {
    /// The log.
    wal: Arc<Wal>,
    _config: PhantomData<fn() -> C>,
}

impl<C: LogCodec> Clone for OpenraftLogReader<C> {
    fn clone(&self) -> Self {
        Self {
            wal: Arc::clone(&self.wal),
            _config: PhantomData,
        }
    }
}

impl<C: LogCodec> OpenraftLog<C> {
    /// Opens the log in `dir`, creating it if missing, and finishes a purge a crash cut short.
    ///
    /// # Errors
    /// What [`Wal::open`] returns, and [`OpenraftLogError::Wal`] if finishing the purge fails.
    pub fn open(
        dir: impl AsRef<Path>,
        options: Options,
    ) -> Result<(Self, RecoveryReport), OpenraftLogError> {
        let (wal, report) = Wal::open(dir, options)?;
        Ok((Self::new(wal)?, report))
    }

    /// Serves openraft from an open WAL that only this adapter has written to.
    ///
    /// If a crash came between recording the last purged id and compacting the log, the
    /// compaction is done now (one purge record and one sync).
    ///
    /// # Errors
    /// [`OpenraftLogError::Wal`] if that compaction fails.
    pub fn new(wal: Wal) -> Result<Self, OpenraftLogError> {
        let mut log = Self {
            wal: Arc::new(wal),
            last_lsn: Lsn::default(),
            _config: PhantomData,
        };
        let purged = log.wal.snapshot_meta();
        if purged.index >= log.wal.first_index() {
            let lsn = log.wal.purge_to(purged.id())?;
            log.sync(lsn)?;
        }
        Ok(log)
    }

    /// The WAL underneath, for inspection (its indexes are openraft's + 1).
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// A reader sharing this log.
    pub fn reader(&self) -> OpenraftLogReader<C> {
        OpenraftLogReader {
            wal: Arc::clone(&self.wal),
            _config: PhantomData,
        }
    }

    /// Appends `batch`; returns its Lsn.
    fn write(&mut self, batch: &Batch) -> Result<Lsn, Error> {
        let lsn = self.wal.append(batch)?;
        self.last_lsn = lsn;
        Ok(lsn)
    }

    /// Syncs up to `lsn`, a write this handle made.
    fn sync(&mut self, lsn: Lsn) -> Result<(), Error> {
        self.last_lsn = self.last_lsn.max(lsn);
        self.wal.sync(lsn)
    }

    fn write_hard_state(&mut self, hs: HardState) -> Result<Lsn, Error> {
        self.write(&Batch {
            hard_state: Some(hs),
            ..Batch::default()
        })
    }

    fn store_vote(&mut self, vote: &Vote<u64>) -> Result<(), OpenraftLogError> {
        let hs = codec::vote_into_hard_state(vote, self.wal.hard_state())?;
        let lsn = self.write_hard_state(hs)?;
        Ok(self.sync(lsn)?)
    }

    fn store_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), OpenraftLogError> {
        let commit = match committed {
            Some(id) => codec::wal_index(id.index)?,
            None => 0,
        };
        self.write_hard_state(HardState {
            commit,
            ..self.wal.hard_state()
        })?;
        Ok(())
    }

    fn last_purged(&self) -> Result<Option<LogId<u64>>, OpenraftLogError> {
        let meta = self.wal.snapshot_meta();
        codec::purged_from_meta(&meta).map_err(|source| OpenraftLogError::Decode {
            index: meta.index,
            source,
        })
    }

    fn log_state(&self) -> Result<LogState<C>, OpenraftLogError> {
        let last_purged_log_id = self.last_purged()?;
        let last = self.wal.last_index();
        let last_log_id = if last >= self.wal.first_index() {
            Some(log_id_at(&self.wal, last)?)
        } else {
            last_purged_log_id
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    fn committed(&self) -> Result<Option<LogId<u64>>, OpenraftLogError> {
        let commit = self.wal.hard_state().commit;
        if commit == 0 {
            return Ok(None);
        }
        // NB: purged entries are in a snapshot, so they are committed: a committed id at or below
        // the purge point is the purge point, whose full id is kept.
        let purged = self.last_purged()?;
        if let Some(purged) = purged
            && commit <= purged.index + 1
        {
            return Ok(Some(purged));
        }
        if (self.wal.first_index()..=self.wal.last_index()).contains(&commit) {
            return Ok(Some(log_id_at(&self.wal, commit)?));
        }
        // Below an empty log's adopted start (see `adopt_start`): nothing is known to claim.
        Ok(None)
    }

    fn append_entries(
        &mut self,
        entries: impl IntoIterator<Item = openraft::Entry<C>>,
    ) -> Result<Lsn, OpenraftLogError> {
        let mut entries = entries
            .into_iter()
            .map(|entry| codec::encode_entry(&entry))
            .collect::<Result<Vec<_>, _>>()?;
        // NB: entries at or below the last purged id are already covered by a snapshot, and the
        // log keeps only what follows it: appending them again changes nothing. (openraft's suite
        // does this right after `get_initial_state` purged up to the state machine.)
        let purged = self.wal.snapshot_meta().index;
        entries.retain(|entry| entry.index > purged);
        let Some(first) = entries.first() else {
            return Ok(self.last_lsn);
        };
        self.adopt_start(first)?;
        Ok(self.write(&Batch {
            entries,
            ..Batch::default()
        })?)
    }

    /// Lets an empty log that never had a purge begin at `first`, as openraft's in-memory stores
    /// do (its storage suite starts logs at index 1 or 2). Any other gap is left to the WAL, which
    /// rejects it.
    fn adopt_start(&mut self, first: &Entry) -> Result<(), OpenraftLogError> {
        let last = self.wal.last_index();
        let empty = last < self.wal.first_index();
        if !empty || first.index <= last + 1 || self.last_purged()?.is_some() {
            return Ok(());
        }
        // Covered by the sync of the append that follows: writes are durable in Lsn order.
        self.last_lsn = self
            .wal
            .purge_to(EntryId::new(first.term, first.index - 1))?;
        Ok(())
    }

    /// Removes openraft entries `index..` and syncs.
    fn truncate_from(&mut self, index: u64) -> Result<(), OpenraftLogError> {
        // openraft removes [index, ∞), which is raftwal's [index + 1, ∞).
        if index >= self.wal.last_index() {
            return Ok(());
        }
        let lsn = self.wal.truncate_after(index)?;
        Ok(self.sync(lsn)?)
    }

    /// Records `log_id` as the last purged id, drops the entries up to it, and syncs.
    fn purge_upto(&mut self, log_id: &LogId<u64>) -> Result<(), OpenraftLogError> {
        if self.last_purged()?.is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        let meta = codec::purged_meta(log_id)?;
        let first = self.wal.first_index();
        let last = self.wal.last_index();
        if meta.index < first.saturating_sub(1) {
            // An empty log adopted a later start (see `adopt_start`): nothing is there to purge.
            return Ok(());
        }
        if meta.index >= last || self.wal.term(meta.index)? != meta.term {
            // NB: past the end, or the log does not hold this id. Entries after a mismatch belong
            // to another history (log matching) and cannot follow the purge point; openraft gets
            // here when its state machine is ahead of a stale log. The snapshot install resets the
            // log to end at the purge point and records it, in one atomic write. Committed
            // entries are never among those dropped.
            let committed = self.wal.hard_state().commit;
            if committed > meta.index {
                return Err(Error::BelowCommitted {
                    index: meta.index + 1,
                    committed,
                }
                .into());
            }
            let lsn = self.write(&Batch {
                snapshot: Some(meta),
                ..Batch::default()
            })?;
            return Ok(self.sync(lsn)?);
        }
        // The purge point is recorded before the compaction: writes become durable in Lsn order,
        // so a durable compaction implies a durable record; a crash between the two leaves the
        // record alone, and `new` finishes the compaction.
        let id = meta.id();
        let mut lsn = self.wal.save_snapshot_meta(meta)?;
        if id.index >= first {
            lsn = self.wal.purge_to(id)?;
        }
        Ok(self.sync(lsn)?)
    }
}

/// The openraft log id of the entry at raftwal index `index`.
fn log_id_at(wal: &Wal, index: u64) -> Result<LogId<u64>, OpenraftLogError> {
    let entries = wal.entries(index, index + 1, u64::MAX)?;
    let entry = entries.first().ok_or(Error::Unavailable {
        index,
        last_index: wal.last_index(),
    })?;
    codec::decode_log_id(entry).map_err(|source| OpenraftLogError::Decode { index, source })
}

/// Entries with openraft indexes in `range`; those not in the log are left out.
fn read_entries<C: LogCodec>(
    wal: &Wal,
    range: &impl RangeBounds<u64>,
) -> Result<Vec<openraft::Entry<C>>, OpenraftLogError> {
    // openraft's [lo, hi) is raftwal's [lo + 1, hi + 1); saturating is exact after the clamp.
    let lo = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    }
    .saturating_add(1);
    let hi = match range.end_bound() {
        Bound::Included(&i) => i.saturating_add(1),
        Bound::Excluded(&i) => i,
        Bound::Unbounded => u64::MAX,
    }
    .saturating_add(1);
    let mut bounds = (wal.first_index(), wal.last_index());
    loop {
        let lo = lo.max(bounds.0);
        let hi = hi.min(bounds.1.saturating_add(1));
        if lo >= hi {
            return Ok(Vec::new());
        }
        match wal.entries(lo, hi, u64::MAX) {
            Ok(entries) => {
                return entries
                    .iter()
                    .map(|entry| {
                        codec::decode_entry(entry).map_err(|source| OpenraftLogError::Decode {
                            index: entry.index,
                            source,
                        })
                    })
                    .collect();
            }
            Err(e @ (Error::Compacted { .. } | Error::Unavailable { .. })) => {
                // A purge or truncation moved the bounds after they were read: read again
                // within the new ones. Bounds that did not move mean a real error.
                let moved = (wal.first_index(), wal.last_index());
                if moved == bounds {
                    return Err(e.into());
                }
                bounds = moved;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Wraps an error as openraft's `StorageError`, with `kind` (e.g. `StorageIOError::write_logs`)
/// naming what failed.
fn storage_error<E: Into<OpenraftLogError>>(
    kind: fn(AnyError) -> StorageIOError<u64>,
) -> impl FnOnce(E) -> StorageError<u64> {
    move |e| kind(AnyError::new(&e.into())).into()
}

impl<C: LogCodec> RaftLogReader<C> for OpenraftLogReader<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        read_entries(&self.wal, &range).map_err(storage_error(StorageIOError::read_logs))
    }
}

impl<C: LogCodec> RaftLogReader<C> for OpenraftLog<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        read_entries(&self.wal, &range).map_err(storage_error(StorageIOError::read_logs))
    }
}

impl<C: LogCodec> RaftLogStorage<C> for OpenraftLog<C> {
    type LogReader = OpenraftLogReader<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        self.log_state()
            .map_err(storage_error(StorageIOError::read_logs))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.store_vote(vote)
            .map_err(storage_error(StorageIOError::write_vote))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(codec::vote_from_hard_state(&self.wal.hard_state()))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.store_committed(committed)
            .map_err(storage_error(StorageIOError::write_logs))
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        self.committed()
            .map_err(storage_error(StorageIOError::read_logs))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let lsn = self
            .append_entries(entries)
            .map_err(storage_error(StorageIOError::write_logs))?;
        self.wal.on_durable(
            lsn,
            Box::new(move |synced| callback.log_io_completed(synced.map_err(io::Error::other))),
        );
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.truncate_from(log_id.index)
            .map_err(storage_error(StorageIOError::write_logs))
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.purge_upto(&log_id)
            .map_err(storage_error(StorageIOError::write_logs))
    }
}

//! [`raft::Storage`] for tikv's raft-rs 0.7 over a [`Wal`], and the two persistence loops a
//! raft-rs application runs on it.
//!
//! # What is stored where
//!
//! | raft-rs                   | raftwal                                                        |
//! | ------------------------- | -------------------------------------------------------------- |
//! | `eraftpb::Entry`          | an [`Entry`] with the same index and term whose `data` is the whole entry's protobuf bytes |
//! | `eraftpb::HardState`      | [`HardState`], field for field                                 |
//! | `SnapshotMetadata`        | [`SnapshotMeta`]; its `conf_state` is the `ConfState`'s protobuf bytes |
//! | `Snapshot::data`          | not in the log: the state machine's, served by a [`SnapshotSource`] |
//!
//! Keeping each entry's protobuf bytes makes `max_size` limits exact (raft-rs counts
//! `compute_size()`, which is the stored length) and round trips lossless (`entry_type`,
//! `context`, `sync_log` included); reads parse zero-copy slices of the WAL's buffers.
//!
//! The membership [`initial_state`](raft::Storage::initial_state) reports is the one of the
//! latest snapshot (or of [`RaftRsStorage::initialize_with_conf_state`]). Configuration changes
//! after it are log entries: on restart raft-rs hands back every committed entry after
//! `Config::applied`, so restart with `applied` no higher than the index your state machine
//! restored from and apply the conf changes again, as etcd's raftexample does.
//!
//! # The two loops
//!
//! Synchronous, [`advance_sync`]: take the Ready's messages, apply its snapshot and committed
//! entries, then write and fsync (if `must_sync`) and advance in one call. Asynchronous,
//! [`Pipeline`]: the write returns as soon as it is readable, raft-rs moves on at once
//! (`advance_append_async`), and the WAL's group commit reports durability later
//! (`on_persist_ready`), releasing the messages that had to wait for it.
//!
//! Errors: every raftwal error reaches raft-rs as the [`StorageError`] it expects (see the
//! `From<crate::Error>` impl below); a failed fsync poisons the WAL, and the loop must stop
//! before it advances or sends anything more.
//!
//! # Example: a one-node cluster on the synchronous loop
//!
//! ```
//! use std::sync::Arc;
//!
//! use raft::StateRole;
//! use raft::prelude::{Config, RawNode};
//! use raftwal::adapters::raft_rs::{NoSnapshots, RaftRsStorage, advance_sync};
//! use raftwal::{Options, Wal};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let (wal, _report) = Wal::open(dir.path(), Options::default())?;
//! let storage = RaftRsStorage::new(Arc::new(wal), Arc::new(NoSnapshots));
//! storage.initialize_with_conf_state((vec![1], vec![]))?;
//!
//! let logger = slog::Logger::root(slog::Discard, slog::o!());
//! let mut node = RawNode::new(&Config::new(1), storage, &logger)?;
//! node.campaign()?;
//!
//! let mut applied = Vec::new();
//! let mut proposed = false;
//! while applied.is_empty() {
//!     if node.raft.state == StateRole::Leader && !proposed {
//!         node.propose(vec![], b"hello".to_vec())?;
//!         proposed = true;
//!     }
//!     if !node.has_ready() {
//!         continue;
//!     }
//!     let mut rd = node.ready();
//!     // A cluster sends `rd.take_messages()` here and installs `rd.snapshot()`.
//!     let mut apply = |entries: Vec<raft::prelude::Entry>| {
//!         applied.extend(entries.into_iter().filter(|e| !e.data.is_empty()).map(|e| e.data));
//!     };
//!     apply(rd.take_committed_entries());
//!     let mut done = advance_sync(&mut node, rd)?;
//!     // ... and sends `done.messages` and `done.light.take_messages()` here.
//!     apply(done.light.take_committed_entries());
//!     node.advance_apply();
//! }
//! assert_eq!(applied, [&b"hello"[..]]);
//! # Ok(())
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::{self, ConfState, Message, SnapshotMetadata};
use raft::{GetEntriesContext, LightReady, RaftState, RawNode, Ready, StorageError};

use crate::error::{DecodeError, Error};
use crate::types::{ENTRY_OVERHEAD, Entry, EntryId, HardState, SnapshotMeta};
use crate::wal::{Batch, Lsn, Wal};

/// Gives raft-rs the state machine's image for a snapshot whose metadata the log keeps.
///
/// The log records which snapshot is current ([`RaftRsStorage::create_snapshot`] on the
/// leader, an installed Ready snapshot on a follower); the image itself belongs to the state
/// machine. Closures `Fn(&SnapshotMetadata, u64) -> raft::Result<Bytes>` implement it.
pub trait SnapshotSource: Send + Sync {
    /// The state machine's image as of exactly `meta.index`, for peer `to`.
    ///
    /// # Errors
    /// Return `raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable)` to make
    /// raft-rs ask again later; raft-rs treats any other error as fatal.
    fn snapshot_data(&self, meta: &SnapshotMetadata, to: u64) -> raft::Result<Bytes>;
}

impl<F> SnapshotSource for F
where
    F: Fn(&SnapshotMetadata, u64) -> raft::Result<Bytes> + Send + Sync,
{
    fn snapshot_data(&self, meta: &SnapshotMetadata, to: u64) -> raft::Result<Bytes> {
        self(meta, to)
    }
}

/// A [`SnapshotSource`] for applications that never compact their log: it has no image to give.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSnapshots;

impl SnapshotSource for NoSnapshots {
    fn snapshot_data(&self, _meta: &SnapshotMetadata, _to: u64) -> raft::Result<Bytes> {
        Err(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

/// raft-rs's [`Storage`](raft::Storage) over a [`Wal`]. Cheap to clone: clones share the log.
///
/// Reads see every write at once, synced or not, as raft-rs requires of
/// `advance_append_async`. Each write is one WAL batch (one write syscall, no fsync) and
/// returns the [`Lsn`] to pass to [`Wal::sync`] or [`Wal::on_durable`]; [`advance_sync`] and
/// [`Pipeline`] do that for a Ready.
#[derive(Clone)]
pub struct RaftRsStorage {
    /// The log: entries, hard state, and the latest snapshot's metadata with the membership.
    wal: Arc<Wal>,
    /// The state machine's images for the snapshots the log names.
    snapshots: Arc<dyn SnapshotSource>,
}

impl fmt::Debug for RaftRsStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftRsStorage")
            .field("wal", &self.wal)
            .finish_non_exhaustive()
    }
}

impl RaftRsStorage {
    /// Serves raft-rs from `wal`, and snapshot images from `snapshots`.
    pub fn new(wal: Arc<Wal>, snapshots: Arc<dyn SnapshotSource>) -> Self {
        Self { wal, snapshots }
    }

    /// The WAL underneath.
    pub fn wal(&self) -> &Arc<Wal> {
        &self.wal
    }

    /// Bootstraps a new node with the cluster's first membership and syncs it (raft-rs
    /// `MemStorage::initialize_with_conf_state`). Every founding node must be given the same one.
    ///
    /// # Errors
    /// `InvalidCall` (as `StorageError::Other`) if the log already holds a membership, a hard
    /// state or entries; a write or sync error.
    pub fn initialize_with_conf_state(&self, conf_state: impl Into<ConfState>) -> raft::Result<()> {
        let fresh = self.wal.last_index() == 0
            && self.wal.hard_state().is_empty()
            && self.wal.snapshot_meta() == SnapshotMeta::default();
        if !fresh {
            return Err(Error::InvalidCall("raft-rs storage is already initialized").into());
        }
        let meta = SnapshotMeta {
            conf_state: encode(&conf_state.into())?,
            ..SnapshotMeta::default()
        };
        let lsn = self.wal.save_snapshot_meta(meta)?;
        Ok(self.wal.sync(lsn)?)
    }

    /// Appends `entries`, replacing the log from `entries[0].index` on (raft-rs
    /// `MemStorage::append`). Readable at once.
    ///
    /// # Errors
    /// `Compacted` if the first entry lies below the first index; raftwal's typed error (as
    /// `StorageError::Other`) for a gap, a term regression or a truncation below the committed
    /// index; a protobuf or write error.
    pub fn append(&self, entries: &[eraftpb::Entry]) -> raft::Result<Lsn> {
        self.write(&Batch {
            entries: to_wal_entries(entries)?,
            ..Batch::default()
        })
    }

    /// Records `hs`. Readable at once.
    ///
    /// # Errors
    /// raftwal's typed error (as `StorageError::Other`) if `hs.commit` is beyond the last
    /// index; a write error.
    pub fn set_hard_state(&self, hs: &eraftpb::HardState) -> raft::Result<Lsn> {
        self.write(&Batch {
            hard_state: Some(to_wal_hard_state(hs)),
            ..Batch::default()
        })
    }

    /// Installs the metadata of a snapshot received from the leader: the log is reset to end at
    /// its index (raft-rs `MemStorage::apply_snapshot`). `snapshot.data` is the state
    /// machine's to install.
    ///
    /// # Errors
    /// `SnapshotOutOfDate` if the snapshot is older than the first index; a protobuf or
    /// write error.
    pub fn apply_snapshot(&self, snapshot: &eraftpb::Snapshot) -> raft::Result<Lsn> {
        let meta = snapshot.get_metadata();
        if meta.index < self.wal.first_index() {
            return Err(raft::Error::Store(StorageError::SnapshotOutOfDate));
        }
        self.write(&Batch {
            snapshot: Some(to_wal_snapshot_meta(meta)?),
            ..Batch::default()
        })
    }

    /// Records that the state machine holds an image as of `index` with membership
    /// `conf_state`: from now on [`snapshot`](raft::Storage::snapshot) offers it, with the
    /// image from the [`SnapshotSource`]. The log is unchanged; [`compact`](Self::compact)
    /// may now drop entries up to `index`.
    ///
    /// Keep the previous image until the returned Lsn is durable: a crash before then leaves
    /// the previous snapshot current.
    ///
    /// # Errors
    /// `Compacted`/`Unavailable` if `index` is outside `[first_index - 1, last_index]`;
    /// `SnapshotOutOfDate` if it is below the current snapshot; a write error.
    pub fn create_snapshot(&self, index: u64, conf_state: &ConfState) -> raft::Result<Lsn> {
        let current = self.wal.snapshot_meta().index;
        if index < current {
            return Err(raft::Error::Store(StorageError::SnapshotOutOfDate));
        }
        let meta = SnapshotMeta {
            index,
            term: self.wal.term(index)?,
            conf_state: encode(conf_state)?,
        };
        Ok(self.wal.save_snapshot_meta(meta)?)
    }

    /// Drops the entries before `compact_index` (raft-rs `MemStorage::compact`); the term of
    /// `compact_index - 1` stays answerable. Nothing to do if `compact_index <= first_index`.
    ///
    /// Durable with the next sync; losing it in a crash only leaves more log.
    ///
    /// # Errors
    /// `InvalidCall` (as `StorageError::Other`) if `compact_index - 1` lies beyond the latest
    /// snapshot, which would leave a lagging follower neither entries nor a snapshot to catch
    /// up from; `Unavailable` beyond the last index; a write error.
    pub fn compact(&self, compact_index: u64) -> raft::Result<()> {
        if compact_index <= self.wal.first_index() {
            return Ok(());
        }
        let point = compact_index - 1;
        if point > self.wal.snapshot_meta().index {
            return Err(Error::InvalidCall("compaction beyond the latest snapshot").into());
        }
        self.wal
            .purge_to(EntryId::new(self.wal.term(point)?, point))?;
        Ok(())
    }

    /// Writes what `rd` asks to be persisted (snapshot metadata, entries, hard state) as one
    /// atomic batch, readable at once. `None` if the Ready has nothing to persist. Does not
    /// sync: see [`advance_sync`] and [`Pipeline`].
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn write_ready(&self, rd: &Ready) -> raft::Result<Option<Lsn>> {
        let snapshot = rd.snapshot();
        let batch = Batch {
            snapshot: if snapshot.is_empty() {
                None
            } else {
                Some(to_wal_snapshot_meta(snapshot.get_metadata())?)
            },
            entries: to_wal_entries(rd.entries())?,
            hard_state: rd.hs().map(to_wal_hard_state),
        };
        if batch.snapshot.is_none() && batch.entries.is_empty() && batch.hard_state.is_none() {
            return Ok(None);
        }
        self.write(&batch).map(Some)
    }

    /// Records a new commit index, keeping term and vote.
    fn set_commit(&self, commit: u64) -> raft::Result<Lsn> {
        self.write(&Batch {
            hard_state: Some(HardState {
                commit,
                ..self.wal.hard_state()
            }),
            ..Batch::default()
        })
    }

    fn write(&self, batch: &Batch) -> raft::Result<Lsn> {
        Ok(self.wal.append(batch)?)
    }
}

impl raft::Storage for RaftRsStorage {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let hs = self.wal.hard_state();
        let conf_state =
            ConfState::parse_from_carllerche_bytes(&self.wal.snapshot_meta().conf_state)?;
        Ok(RaftState::new(to_raft_hard_state(&hs), conf_state))
    }

    /// Entries `[low, high)`, at most `max_size` protobuf bytes but at least one.
    ///
    /// Errors: `Compacted` below the first index (raft-rs then sends a snapshot). Never
    /// `LogTemporarilyUnavailable` (reads are synchronous), nor `Unavailable` for anything
    /// written, synced or not; `Unavailable` only for `high > last_index + 1`, which raft-rs
    /// never asks for and treats as fatal.
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<eraftpb::Entry>> {
        let max_size = max_size.into();
        // raftwal limits by stored length + ENTRY_OVERHEAD, raft-rs by stored length alone:
        // with one overhead allowed per entry, the WAL's answer holds every entry raft-rs keeps.
        let allowance = ENTRY_OVERHEAD.saturating_mul(high.saturating_sub(low));
        let wal_max = max_size.map_or(u64::MAX, |max| max.saturating_add(allowance));
        let mut entries = self
            .wal
            .entries(low, high, wal_max)?
            .iter()
            .map(to_raft_entry)
            .collect::<raft::Result<Vec<_>>>()?;
        raft::util::limit_size(&mut entries, max_size);
        Ok(entries)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        Ok(self.wal.term(idx)?)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.wal.first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.wal.last_index())
    }

    /// The latest snapshot: metadata from the log, image from the [`SnapshotSource`].
    ///
    /// Errors: `SnapshotTemporarilyUnavailable` (raft-rs retries later) when there is no
    /// snapshot or it is older than `request_index`: create a newer one with
    /// [`RaftRsStorage::create_snapshot`]. Otherwise whatever the source returns.
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<eraftpb::Snapshot> {
        let meta = self.wal.snapshot_meta();
        if meta.index == 0 || meta.index < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let metadata = to_raft_snapshot_meta(&meta)?;
        let mut snapshot = eraftpb::Snapshot {
            data: self.snapshots.snapshot_data(&metadata, to)?,
            ..eraftpb::Snapshot::default()
        };
        snapshot.set_metadata(metadata);
        Ok(snapshot)
    }
}

/// raftwal errors as raft-rs expects them: the log's own `Compacted`, `Unavailable` and
/// snapshot conditions become the matching [`StorageError`]s, which raft-rs handles (a
/// snapshot instead of entries, a retry); everything else is `StorageError::Other` holding
/// the raftwal [`Error`], which raft-rs treats as fatal.
impl From<Error> for raft::Error {
    fn from(error: Error) -> Self {
        raft::Error::Store(match error {
            Error::Compacted { .. } => StorageError::Compacted,
            Error::Unavailable { .. } => StorageError::Unavailable,
            Error::SnapshotOutOfDate { .. } => StorageError::SnapshotOutOfDate,
            Error::SnapshotTemporarilyUnavailable => StorageError::SnapshotTemporarilyUnavailable,
            other => StorageError::Other(Box::new(other)),
        })
    }
}

/// What persisting a Ready released, to hand on in this order.
#[derive(Debug)]
#[must_use = "the messages must be sent and the committed entries applied"]
pub struct Persisted {
    /// Messages raft-rs held back until the Ready was durable (a follower's votes and append
    /// responses): send them now.
    pub messages: Vec<Message>,
    /// What the advance made ready: committed entries to apply, then messages to send. Its
    /// commit index is already recorded in the log.
    pub light: LightReady,
}

/// The synchronous loop's persistence step: writes `rd` (snapshot metadata, entries, hard
/// state) as one batch, fsyncs it if `rd.must_sync()`, and calls
/// [`advance_append`](RawNode::advance_append), recording the commit index it returns.
///
/// Before: send `rd.take_messages()`, install `rd.snapshot()` in the state machine and apply
/// `rd.take_committed_entries()`. After: send [`Persisted::messages`], handle
/// [`Persisted::light`], then call `advance_apply`.
///
/// Cost: one write; one fdatasync if `must_sync` (shared with concurrent syncs of the WAL).
///
/// # Errors
/// A write or sync error: raft-rs has not advanced, and the loop must stop (a failed sync
/// poisons the WAL until it is reopened).
pub fn advance_sync(node: &mut RawNode<RaftRsStorage>, mut rd: Ready) -> raft::Result<Persisted> {
    let store = node.store();
    if let Some(lsn) = store.write_ready(&rd)?
        && rd.must_sync()
    {
        store.wal.sync(lsn)?;
    }
    let messages = rd.take_persisted_messages();
    let light = node.advance_append(rd);
    if let Some(commit) = light.commit_index() {
        // NB: raft-rs says the commit index need not be durable; the next sync makes it so.
        node.store().set_commit(commit)?;
    }
    Ok(Persisted { messages, light })
}

/// One durability report: a Ready number and the outcome of the sync that covers it.
type Ack = (u64, crate::Result<()>);

/// The asynchronous loop's persistence pipeline: Readies are written and handed back to
/// raft-rs at once, and the WAL's background syncer reports when they are durable.
///
/// Per Ready: send `rd.take_messages()`, install `rd.snapshot()`, apply
/// `rd.take_committed_entries()`, then [`submit`](Self::submit), which also tells raft-rs they
/// are applied. Whenever convenient, [`poll`](Self::poll) (or [`wait`](Self::wait) when idle)
/// and send the messages it releases. Commit-index advances arrive in later Readies.
///
/// Invariants: a Ready is reported to raft-rs (`on_persist_ready`) and its held messages are
/// released only once every write up to its own is durable; raft-rs hears that a snapshot is
/// applied only once it is durable (it refuses an applied index beyond its persisted one).
///
/// # Example
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use raft::prelude::{Config, RawNode};
/// use raftwal::adapters::raft_rs::{NoSnapshots, Pipeline, RaftRsStorage};
/// use raftwal::{Options, Wal};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let (wal, _report) = Wal::open(dir.path(), Options::default())?;
/// let storage = RaftRsStorage::new(Arc::new(wal), Arc::new(NoSnapshots));
/// storage.initialize_with_conf_state((vec![1], vec![]))?;
/// let logger = slog::Logger::root(slog::Discard, slog::o!());
/// let mut node = RawNode::new(&Config::new(1), storage, &logger)?;
/// let mut pipeline = Pipeline::new();
///
/// node.campaign()?;
/// while node.raft.raft_log.committed == 0 {
///     if node.has_ready() {
///         let mut rd = node.ready();
///         // Send `rd.take_messages()`, install `rd.snapshot()`, apply committed entries.
///         let _ = rd.take_committed_entries();
///         pipeline.submit(&mut node, rd)?;
///     }
///     let _released = pipeline.wait(&mut node, Duration::from_millis(10))?; // send these
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Pipeline {
    /// Cloned into each durability callback.
    acks_tx: Sender<Ack>,
    /// Reports from the callbacks, possibly out of Ready order.
    acks: Receiver<Ack>,
    /// Persisted messages of submitted Readies not yet known durable, by Ready number, oldest
    /// first.
    held: VecDeque<(u64, Vec<Message>)>,
    /// The latest write a Ready had to wait for (`must_sync`); later Readies that need no
    /// sync of their own wait for it instead. `None` until the first such write.
    last_synced_write: Option<Lsn>,
    /// The number of a submitted Ready that carried a snapshot, until it is durable: until
    /// then raft-rs must not hear that anything is applied.
    unpersisted_snapshot: Option<u64>,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipeline {
    /// An empty pipeline, for one node.
    pub fn new() -> Self {
        let (acks_tx, acks) = mpsc::channel();
        Self {
            acks_tx,
            acks,
            held: VecDeque::new(),
            last_synced_write: None,
            unpersisted_snapshot: None,
        }
    }

    /// Writes `rd` (readable at once), takes its persisted messages to hold, hands it back
    /// with [`advance_append_async`](RawNode::advance_append_async), asks the WAL to report
    /// when it is durable, and tells raft-rs that every committed entry delivered so far is
    /// applied (`advance_apply`; after a snapshot, once the snapshot is durable). Never waits
    /// for a sync.
    ///
    /// # Errors
    /// A write error: raft-rs has not advanced, and the loop must stop.
    pub fn submit(&mut self, node: &mut RawNode<RaftRsStorage>, mut rd: Ready) -> raft::Result<()> {
        let number = rd.number();
        let store = node.store();
        let written = store.write_ready(&rd)?;
        if rd.must_sync() {
            self.last_synced_write = written.or(self.last_synced_write);
        }
        match self.last_synced_write {
            Some(lsn) => {
                let acks = self.acks_tx.clone();
                let report = move |result| {
                    // NB: the receiver is gone only if the pipeline was dropped; nobody waits.
                    let _ = acks.send((number, result));
                };
                store.wal.on_durable(lsn, Box::new(report));
            }
            None => {
                let _ = self.acks_tx.send((number, Ok(())));
            }
        }
        self.held.push_back((number, rd.take_persisted_messages()));
        if !rd.snapshot().is_empty() {
            self.unpersisted_snapshot = Some(number);
        }
        node.advance_append_async(rd);
        if self.unpersisted_snapshot.is_none() {
            node.advance_apply();
        }
        Ok(())
    }

    /// Reports every Ready found durable since the last call to raft-rs
    /// ([`on_persist_ready`](RawNode::on_persist_ready)) and returns the messages that were
    /// waiting for them, in order. Never blocks.
    ///
    /// # Errors
    /// A sync error: nothing more is reported, and the loop must stop.
    pub fn poll(&mut self, node: &mut RawNode<RaftRsStorage>) -> raft::Result<Vec<Message>> {
        self.release(node, None)
    }

    /// As [`poll`](Self::poll), but first waits up to `timeout` for a report if none is
    /// there yet.
    ///
    /// # Errors
    /// As [`poll`](Self::poll).
    pub fn wait(
        &mut self,
        node: &mut RawNode<RaftRsStorage>,
        timeout: Duration,
    ) -> raft::Result<Vec<Message>> {
        // NB: the channel never disconnects: the pipeline holds a sender.
        let first = self.acks.recv_timeout(timeout).ok();
        self.release(node, first)
    }

    /// Readies submitted and not yet reported durable.
    pub fn in_flight(&self) -> usize {
        self.held.len()
    }

    fn release(
        &mut self,
        node: &mut RawNode<RaftRsStorage>,
        first: Option<Ack>,
    ) -> raft::Result<Vec<Message>> {
        let mut durable = None;
        for (number, result) in first.into_iter().chain(self.acks.try_iter()) {
            result?;
            // NB: Ready numbers grow with Lsns, so a durable Ready implies every earlier one,
            // even when callbacks for equal Lsns arrive out of order.
            durable = durable.max(Some(number));
        }
        let Some(durable) = durable else {
            return Ok(Vec::new());
        };
        node.on_persist_ready(durable);
        if self
            .unpersisted_snapshot
            .is_some_and(|number| number <= durable)
        {
            self.unpersisted_snapshot = None;
            node.advance_apply();
        }
        let mut released = Vec::new();
        while let Some((_, messages)) = self.held.pop_front_if(|(number, _)| *number <= durable) {
            released.extend(messages);
        }
        Ok(released)
    }
}

fn encode(message: &impl protobuf::Message) -> raft::Result<Bytes> {
    Ok(Bytes::from(message.write_to_bytes()?))
}

fn to_wal_entries(entries: &[eraftpb::Entry]) -> raft::Result<Vec<Entry>> {
    entries
        .iter()
        .map(|entry| Ok(Entry::new(entry.index, entry.term, encode(entry)?)))
        .collect()
}

fn to_raft_entry(entry: &Entry) -> raft::Result<eraftpb::Entry> {
    let decoded = eraftpb::Entry::parse_from_carllerche_bytes(&entry.data)?;
    if decoded.index != entry.index || decoded.term != entry.term {
        // The log holds something other than raft-rs entries (another adapter's log?).
        let malformed = DecodeError::Malformed {
            what: "raft-rs entry whose index or term differs from its log position",
        };
        return Err(raft::Error::Store(StorageError::Other(Box::new(malformed))));
    }
    Ok(decoded)
}

fn to_wal_hard_state(hs: &eraftpb::HardState) -> HardState {
    HardState {
        term: hs.term,
        vote: hs.vote,
        commit: hs.commit,
    }
}

fn to_raft_hard_state(hs: &HardState) -> eraftpb::HardState {
    eraftpb::HardState {
        term: hs.term,
        vote: hs.vote,
        commit: hs.commit,
        ..eraftpb::HardState::default()
    }
}

fn to_wal_snapshot_meta(meta: &SnapshotMetadata) -> raft::Result<SnapshotMeta> {
    Ok(SnapshotMeta {
        index: meta.index,
        term: meta.term,
        conf_state: encode(meta.get_conf_state())?,
    })
}

fn to_raft_snapshot_meta(meta: &SnapshotMeta) -> raft::Result<SnapshotMetadata> {
    let mut raft_meta = SnapshotMetadata {
        index: meta.index,
        term: meta.term,
        ..SnapshotMetadata::default()
    };
    raft_meta.set_conf_state(ConfState::parse_from_carllerche_bytes(&meta.conf_state)?);
    Ok(raft_meta)
}

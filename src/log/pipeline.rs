//! The asynchronous persistence path: accepted Readies are written at once and synced in the
//! background; each durable write comes back as a [`PersistAck`] for
//! [`RaftLog::on_persisted`](crate::RaftLog::on_persisted).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};
use crate::log::{Persist, PersistAck};
use crate::wal::{Batch, Lsn, Wal};

/// Where a [`Pipeline`] writes: an ordered log whose writes are readable at once and durable
/// later. [`Wal`] is the one to use; tests substitute writers that hold durability back.
pub trait LogWriter: Send + Sync + 'static {
    /// Writes `batch` (readable at once) and returns its durability ticket.
    ///
    /// # Errors
    /// The write's error; nothing was written.
    fn append(&self, batch: &Batch) -> Result<Lsn>;
    /// Blocks until every write up to `lsn` is durable.
    ///
    /// # Errors
    /// The sync's error.
    fn sync(&self, lsn: Lsn) -> Result<()>;
    /// Calls `done` once every write up to `lsn` is durable, or with the sync's error, from a
    /// background thread. Callbacks must fire in `Lsn` order.
    fn on_durable(&self, lsn: Lsn, done: Box<dyn FnOnce(Result<()>) + Send>);
}

impl LogWriter for Wal {
    fn append(&self, batch: &Batch) -> Result<Lsn> {
        Wal::append(self, batch)
    }

    fn sync(&self, lsn: Lsn) -> Result<()> {
        Wal::sync(self, lsn)
    }

    fn on_durable(&self, lsn: Lsn, done: Box<dyn FnOnce(Result<()>) + Send>) {
        Wal::on_durable(self, lsn, done);
    }
}

/// Writes accepted Readies without waiting for their sync, and collects the acknowledgements
/// of the ones that became durable, in write order.
///
/// One thread submits and polls (the consensus loop). Who syncs depends on how it collects:
/// [`Pipeline::completed`] never blocks and hands the writes in flight to the writer's
/// background syncer; [`Pipeline::wait_completed`], for a loop with nothing else to do, syncs
/// them on the calling thread, saving the hand-offs to and from the syncer. A failed sync
/// stops the pipeline for good: acknowledgements already durable are still handed out, then
/// the error, then [`Error::Poisoned`] for every later call.
///
/// One turn of the consensus loop (DESIGN.md section 4; a full program is
/// `examples/ready_loop.rs`):
///
/// ```
/// use raftwal::{Pipeline, RaftLog, Storage, Wal};
///
/// fn turn<S: Storage>(log: &mut RaftLog<S>, pipeline: &Pipeline<Wal>) -> raftwal::Result<()> {
///     if log.has_ready() {
///         let rd = log.ready_without_accept()?;
///         log.accept_ready(&rd)?;
///         pipeline.submit(rd.persist_part())?; // returns before the sync
///         // ... apply rd.committed_entries(), then log.applied_to(..)
///     }
///     for ack in pipeline.completed()? {
///         log.on_persisted(&ack)?; // stable_to / stable_snap_to, with etcd's ignore rules
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Pipeline<W: LogWriter = Wal> {
    writer: Arc<W>,
    shared: Arc<Shared>,
}

/// The state the submitting thread and the writer's syncer share.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Submitted writes not yet handed out, in write order, with what each acknowledges.
    /// Invariant: Lsns strictly increase.
    pending: VecDeque<(Lsn, PersistAck)>,
    /// Every write up to here is durable.
    durable: Lsn,
    /// The background syncer was asked to report every write up to here.
    watched: Lsn,
    /// The first sync error, until it is handed out.
    failure: Option<Error>,
    /// A write or sync failed; nothing more is accepted or acknowledged.
    poisoned: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, so a poisoned lock still guards valid data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the outcome of a sync up to `lsn`, from the syncer or an inline sync.
    fn synced(&self, lsn: Lsn, result: Result<()>) {
        let mut state = self.state();
        match result {
            // NB: after a failure nothing more counts as durable, whatever a later sync says.
            Ok(()) if !state.poisoned => state.durable = state.durable.max(lsn),
            Ok(()) => {}
            Err(e) => {
                if !state.poisoned {
                    state.failure = Some(e);
                }
                state.poisoned = true;
            }
        }
    }
}

impl State {
    /// How many of the oldest pending writes are durable.
    fn durable_count(&self) -> usize {
        self.pending
            .partition_point(|(lsn, _)| *lsn <= self.durable)
    }

    /// True if an acknowledgement or an error is ready to be handed out.
    fn has_news(&self) -> bool {
        self.poisoned || self.durable_count() > 0
    }

    /// Hands out the acknowledgements of durable writes, else the failure. After a failure,
    /// writes not yet known durable are never acknowledged.
    fn take(&mut self) -> Result<Vec<PersistAck>> {
        let n = self.durable_count();
        if n > 0 {
            return Ok(self.pending.drain(..n).map(|(_, ack)| ack).collect());
        }
        match self.failure.take() {
            Some(e) => Err(e),
            None if self.poisoned => Err(Error::Poisoned),
            None => Ok(Vec::new()),
        }
    }
}

impl<W: LogWriter> Pipeline<W> {
    /// A pipeline writing to `writer`.
    pub fn new(writer: Arc<W>) -> Self {
        Self {
            writer,
            shared: Arc::default(),
        }
    }

    /// Writes `persist` (snapshot first, then entries, with the hard state, as one atomic
    /// batch) and returns without waiting for the sync. The write is readable through the
    /// writer's storage at once; its acknowledgement comes out of [`Pipeline::completed`] or
    /// [`Pipeline::wait_completed`] once it is durable. An empty `persist` writes nothing.
    ///
    /// Cost: one `append` on the writer (one write syscall for the WAL); no sync here.
    ///
    /// # Errors
    /// [`Error::Poisoned`] after a failed write or sync; the writer's error for this write
    /// (which also stops the pipeline: a later write must not land after a lost one).
    pub fn submit(&self, persist: Persist) -> Result<()> {
        if persist.is_empty() {
            return Ok(());
        }
        if self.shared.state().poisoned {
            return Err(Error::Poisoned);
        }
        let (batch, ack) = persist.into_batch();
        let lsn = match self.writer.append(&batch) {
            Ok(lsn) => lsn,
            Err(e) => {
                self.shared.state().poisoned = true;
                return Err(e);
            }
        };
        self.shared.state().pending.push_back((lsn, ack));
        Ok(())
    }

    /// The acknowledgements of writes that became durable since the last call, in write order.
    /// Never blocks: writes still in flight are handed to the writer's background syncer
    /// ([`LogWriter::on_durable`]) and show up in a later call.
    ///
    /// # Errors
    /// Once every durable acknowledgement was handed out: the sync error that stopped the
    /// pipeline, then [`Error::Poisoned`].
    pub fn completed(&self) -> Result<Vec<PersistAck>> {
        let unwatched: Vec<Lsn> = {
            let mut state = self.shared.state();
            let watched = state.watched.max(state.durable);
            // Lsns increase, so the unwatched writes are a suffix.
            let first = state.pending.partition_point(|(lsn, _)| *lsn <= watched);
            let lsns: Vec<Lsn> = state.pending.range(first..).map(|(lsn, _)| *lsn).collect();
            if let Some(&newest) = lsns.last() {
                state.watched = newest;
            }
            lsns
        };
        // Outside the lock: a callback may run at once, on this thread.
        for lsn in unwatched {
            let shared = Arc::clone(&self.shared);
            self.writer
                .on_durable(lsn, Box::new(move |result| shared.synced(lsn, result)));
        }
        self.shared.state().take()
    }

    /// As [`Pipeline::completed`], but when nothing is durable yet, syncs the writes in flight
    /// on the calling thread (sharing the fdatasync with the background syncer, if it is at
    /// work, through group commit). Returns at once if nothing is in flight.
    ///
    /// Cost: at most one sync, on this thread; no thread hand-off.
    ///
    /// # Errors
    /// As [`Pipeline::completed`].
    pub fn wait_completed(&self) -> Result<Vec<PersistAck>> {
        let newest = {
            let mut state = self.shared.state();
            match state.pending.back() {
                Some(&(lsn, _)) if !state.has_news() => lsn,
                _ => return state.take(),
            }
        };
        self.shared.synced(newest, self.writer.sync(newest));
        self.shared.state().take()
    }

    /// Writes submitted and not yet durable.
    pub fn in_flight(&self) -> usize {
        let state = self.shared.state();
        state.pending.len() - state.durable_count()
    }

    /// The writer underneath.
    pub fn writer(&self) -> &Arc<W> {
        &self.writer
    }
}

//! The asynchronous persistence path: accepted Readies are written at once and synced in the
//! background; each durable write comes back as a [`PersistAck`] for
//! [`RaftLog::on_persisted`](crate::RaftLog::on_persisted).

use std::mem;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

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
    /// Calls `done` once every write up to `lsn` is durable, or with the sync's error.
    /// Callbacks must fire in `Lsn` order and must not block on the caller of `append`.
    fn on_durable(&self, lsn: Lsn, done: Box<dyn FnOnce(Result<()>) + Send>);
}

impl LogWriter for Wal {
    fn append(&self, batch: &Batch) -> Result<Lsn> {
        Wal::append(self, batch)
    }

    fn on_durable(&self, lsn: Lsn, done: Box<dyn FnOnce(Result<()>) + Send>) {
        Wal::on_durable(self, lsn, done);
    }
}

/// Writes accepted Readies without waiting for their sync, and collects the acknowledgements
/// of the ones that became durable, in write order.
///
/// One thread submits (the consensus loop); the writer's syncer completes. A failed sync stops
/// the pipeline for good: acknowledgements already durable are still handed out, then the
/// error, then [`Error::Poisoned`] for every later call.
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

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a write completes.
    completed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Acknowledgements of durable writes not yet handed out, in write order.
    done: Vec<PersistAck>,
    /// Writes submitted and not yet completed.
    in_flight: usize,
    /// The first sync error, until it is handed out.
    failure: Option<Error>,
    /// A write or sync failed; nothing more is accepted.
    poisoned: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, so a poisoned lock still guards valid data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn complete(&self, ack: PersistAck, result: Result<()>) {
        let mut state = self.state();
        state.in_flight -= 1;
        match result {
            Ok(()) if !state.poisoned => state.done.push(ack),
            Ok(()) => {}
            Err(e) => {
                if !state.poisoned {
                    state.failure = Some(e);
                }
                state.poisoned = true;
            }
        }
        drop(state);
        self.completed.notify_all();
    }
}

impl State {
    /// Hands out the durable acknowledgements, else the failure.
    fn take(&mut self) -> Result<Vec<PersistAck>> {
        if !self.done.is_empty() {
            return Ok(mem::take(&mut self.done));
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
    /// writer's storage at once; its acknowledgement comes out of [`Pipeline::completed`] once
    /// it is durable. An empty `persist` writes nothing.
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
        self.shared.state().in_flight += 1;
        let shared = Arc::clone(&self.shared);
        self.writer
            .on_durable(lsn, Box::new(move |result| shared.complete(ack, result)));
        Ok(())
    }

    /// The acknowledgements of writes that became durable since the last call, in write order;
    /// never blocks.
    ///
    /// # Errors
    /// Once every durable acknowledgement was handed out: the sync error that stopped the
    /// pipeline, then [`Error::Poisoned`].
    pub fn completed(&self) -> Result<Vec<PersistAck>> {
        self.shared.state().take()
    }

    /// As [`Pipeline::completed`], but waits until at least one acknowledgement or error is
    /// there, unless nothing is in flight.
    ///
    /// # Errors
    /// As [`Pipeline::completed`].
    pub fn wait_completed(&self) -> Result<Vec<PersistAck>> {
        let mut state = self.shared.state();
        while state.done.is_empty() && !state.poisoned && state.in_flight > 0 {
            state = self
                .shared
                .completed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.take()
    }

    /// Writes submitted and not yet durable.
    pub fn in_flight(&self) -> usize {
        self.shared.state().in_flight
    }

    /// The writer underneath.
    pub fn writer(&self) -> &Arc<W> {
        &self.writer
    }
}

//! Group commit: many callers, one fdatasync. The first caller to need a sync becomes the
//! leader and syncs every frame written by then; callers arriving meanwhile wait for it and are
//! done if it covered them, or elect the next leader. No timer: a lone caller syncs at once.
//!
//! Before it syncs, a leader lets two things happen that take microseconds, not a sync: the
//! callers the last sync released come back with their next append (writers in a loop do), and
//! the appends under way end. Syncing without them would leave their frames to the next sync:
//! with 4 writers in a loop, about 2.3 entries per fdatasync instead of nearly 4.
//!
//! The leader waits for the first by spinning on the append counters, yielding its CPU to any
//! thread that wants it, until as many appends have begun as the last sync released writers
//! (callers that had appended before they synced), or [`GATHER_SPIN`] has passed: a writer
//! that does not come back costs that cycle that much. It spins rather than parks because
//! parking puts a wake-up on the path to the next sync: on a VM, waking a thread on an idle
//! vCPU costs the waker an IPI exit and the woken a halt exit, tens of microseconds each, a
//! third of a sync. The appends under way it waits for in the spin too, then parked: those are
//! bounded by the writes themselves. A lone writer has nothing to wait for: the one writer the
//! last sync released is itself, and its append has begun. Nor has a background syncer.
//!
//! Also the poison latch: a failed sync is never retried (the kernel may have dropped the dirty
//! pages it failed to write), so every later write and sync fails until the log is reopened.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, IoOp, Result};
use crate::fs::{File, Fs};

/// Locks `m`, ignoring std's poisoning: every critical section here leaves consistent state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where the durable point of the log stands.
#[derive(Debug)]
struct Progress {
    /// Highest Lsn written to a file. Invariant: `synced <= written`.
    written: u64,
    /// The file the newest frames are in (the active segment) and its path.
    file: Arc<dyn File>,
    path: PathBuf,
    /// Highest Lsn known durable.
    synced: u64,
    /// A leader is syncing now, or gathering appends before it syncs.
    leader: bool,
    /// The callers waiting for a leader's sync.
    waiting: Vec<Waiter>,
    /// The count of appends begun by which the callers the last sync released are expected
    /// back: `begun` when it ended plus the writing callers it released (its leader among
    /// them).
    expected: u64,
}

/// A caller waiting for a leader's sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Waiter {
    /// The Lsn it waits to be durable.
    lsn: u64,
    /// It began an append since its last sync: a writer, expected back with its next append
    /// once released. A thread that only syncs (the background syncer) is not.
    writing: bool,
}

thread_local! {
    /// Whether this thread began an append since it last called [`SyncPoint::sync`]. Per
    /// thread, not per log: a thread writing one log and syncing another misleads the leader's
    /// expectation only, which its spin bounds.
    static WRITING: Cell<bool> = const { Cell::new(false) };
}

/// How long a leader spins waiting for the callers the last sync released to begin their next
/// append; a fraction of a sync (about 120 us on the VM the project measures on). The spin is
/// the price: with 4 writers on 2 vCPUs a leader spins about 30 us a cycle, while a writer it
/// woke on the other vCPU gets there, at most a sixth of one vCPU; a lone writer never spins.
const GATHER_SPIN: Duration = Duration::from_micros(50);

/// [`SyncPoint::goal`] when the leader waits for no append.
const NO_GOAL: u64 = u64::MAX;

/// The meeting point of writers, syncers and the poison latch.
#[derive(Debug)]
pub(crate) struct SyncPoint {
    progress: Mutex<Progress>,
    /// Signalled when `synced` moves or a leader steps down.
    changed: Condvar,
    /// Appends begun, and ended (written, refused or failed). Counted without the lock, so
    /// that an append never waits for it. Invariant: `ended <= begun`.
    begun: AtomicU64,
    ended: AtomicU64,
    /// The leader waits until this many appends have ended; [`NO_GOAL`] when it does not.
    goal: AtomicU64,
    /// Signalled when the appends a parked leader waits for have ended.
    gathered: Condvar,
    /// The longest a leader spins for released callers to come back ([`GATHER_SPIN`]).
    spin: Duration,
    poisoned: AtomicBool,
    /// Held through every fdatasync of the log's files ([`SyncPoint::sync_data`]).
    syncing: Mutex<()>,
    /// A failure of background upkeep, reported by the next write.
    deferred: Mutex<Option<Error>>,
}

impl SyncPoint {
    /// Everything up to `lsn` is in `file` and durable.
    pub(crate) fn new(lsn: u64, file: Arc<dyn File>, path: PathBuf) -> Self {
        Self {
            progress: Mutex::new(Progress {
                written: lsn,
                file,
                path,
                synced: lsn,
                leader: false,
                waiting: Vec::new(),
                expected: 0,
            }),
            changed: Condvar::new(),
            begun: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            goal: AtomicU64::new(NO_GOAL),
            gathered: Condvar::new(),
            spin: GATHER_SPIN,
            poisoned: AtomicBool::new(false),
            syncing: Mutex::new(()),
            deferred: Mutex::new(None),
        }
    }

    /// Fails with [`Error::Poisoned`] once a sync has failed.
    pub(crate) fn check(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    /// Keeps `error` of background upkeep for the next write to report.
    pub(crate) fn defer(&self, error: Error) {
        lock(&self.deferred).get_or_insert(error);
    }

    /// Fails with the poison, or once with a deferred upkeep error.
    pub(crate) fn check_write(&self) -> Result<()> {
        self.check()?;
        lock(&self.deferred).take().map_or(Ok(()), Err)
    }

    /// Latches the poison and wakes every waiter so it can fail.
    pub(crate) fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
        let _progress = lock(&self.progress);
        self.changed.notify_all();
        self.gathered.notify_all();
    }

    /// Announces an append: a leader about to sync waits until it ends (the guard drops), so
    /// that its frame shares the sync instead of waiting for the next one.
    pub(crate) fn begin_append(&self) -> Appending<'_> {
        WRITING.set(true);
        self.begun.fetch_add(1, Ordering::SeqCst);
        Appending(self)
    }

    /// Highest Lsn known durable.
    pub(crate) fn synced(&self) -> u64 {
        lock(&self.progress).synced
    }

    /// Highest Lsn written.
    pub(crate) fn written(&self) -> u64 {
        lock(&self.progress).written
    }

    /// Frames up to `lsn` are written; the newest are in `file`.
    pub(crate) fn wrote(&self, lsn: u64) {
        lock(&self.progress).written = lsn;
    }

    /// A rotation made everything up to `lsn` durable; newer frames go to `file`.
    pub(crate) fn rotated(&self, lsn: u64, file: Arc<dyn File>, path: PathBuf) {
        let mut progress = lock(&self.progress);
        progress.written = lsn;
        progress.synced = progress.synced.max(lsn);
        progress.file = file;
        progress.path = path;
        self.changed.notify_all();
    }

    /// Blocks until every frame up to `lsn` is durable, sharing one fdatasync with every
    /// concurrent caller. Returns only after an fdatasync that began after the frame of `lsn`
    /// was written has succeeded. A lone caller syncs at once; see the module docs for when a
    /// leader waits.
    ///
    /// # Errors
    /// [`Error::Io`] to the leader whose fdatasync failed (the log is poisoned from then on),
    /// [`Error::Poisoned`] to everyone else, and [`Error::InvalidCall`] for an Lsn never issued.
    pub(crate) fn sync(&self, lsn: u64) -> Result<()> {
        let me = Waiter {
            lsn,
            writing: WRITING.replace(false),
        };
        let mut progress = lock(&self.progress);
        loop {
            self.check()?;
            if progress.synced >= lsn {
                return Ok(());
            }
            if lsn > progress.written {
                return Err(Error::InvalidCall("sync: that Lsn was never issued"));
            }
            if !progress.leader {
                // NB: `lsn <= written <= target`: the leader's own sync covers it.
                return self.lead(progress, me.writing);
            }
            progress = self.follow(progress, me);
        }
    }

    /// Waits, as caller `me`, for the leader to sync or step down.
    fn follow<'a>(
        &'a self,
        mut progress: MutexGuard<'a, Progress>,
        me: Waiter,
    ) -> MutexGuard<'a, Progress> {
        progress.waiting.push(me);
        progress = self
            .changed
            .wait(progress)
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = progress.waiting.iter().position(|&w| w == me) {
            progress.waiting.swap_remove(at);
        }
        progress
    }

    /// The fdatasync of one of the log's files, never two at once, poisoning the log if it
    /// fails. Linux reports a writeback error of a file to one fdatasync only: with two in
    /// flight through one descriptor (a leader's and a rotation's seal), the other could return
    /// Ok for a page that was lost. One at a time, with the poison latched before the next one
    /// starts, none returns Ok after another failed.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if a sync failed before, [`Error::Io`] if this one fails.
    pub(crate) fn sync_data(&self, file: &dyn File, path: &Path) -> Result<()> {
        self.one_at_a_time(IoOp::SyncData, path, || file.sync_data())
    }

    /// [`Fs::sync_dir`] of the log's directory under the same rule as
    /// [`SyncPoint::sync_data`]: never beside another sync of the log, never after one failed,
    /// poisoning the log if it fails. A directory sync makes every pending change of the
    /// directory durable, whoever made it: run beside another thread's, one could return Ok
    /// for a name the other's failure lost.
    ///
    /// # Errors
    /// [`Error::Poisoned`] if a sync failed before, [`Error::Io`] if this one fails.
    pub(crate) fn sync_dir(&self, fs: &dyn Fs, dir: &Path) -> Result<()> {
        self.one_at_a_time(IoOp::SyncDir, dir, || fs.sync_dir(dir))
    }

    /// Runs `sync` (an `op` of `path`) holding `syncing`, unless the log is poisoned;
    /// poisons it if `sync` fails.
    fn one_at_a_time(
        &self,
        op: IoOp,
        path: &Path,
        sync: impl FnOnce() -> std::io::Result<()>,
    ) -> Result<()> {
        let _alone = lock(&self.syncing);
        self.check()?;
        sync().map_err(|source| {
            self.poison();
            Error::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// Syncs as the leader: first lets the callers the last sync released come back with their
    /// next append and the appends under way end, then syncs every frame written by then and
    /// wakes the waiting callers. `writing`: the leader began an append since its last sync.
    ///
    /// # Errors
    /// As [`SyncPoint::sync`].
    fn lead<'a>(&'a self, mut progress: MutexGuard<'a, Progress>, writing: bool) -> Result<()> {
        progress.leader = true;
        let expected = progress.expected;
        // NB: unlocked, so that the callers leaving and arriving do not wait for the leader.
        drop(progress);
        let spun = self.spin_for(expected);
        progress = lock(&self.progress);
        if let Some(goal) = spun {
            progress = self.park_for(progress, goal);
        }
        let target = progress.written;
        let file = Arc::clone(&progress.file);
        let path = progress.path.clone();
        drop(progress);
        let result = self.sync_data(file.as_ref(), &path);
        {
            let mut progress = lock(&self.progress);
            progress.leader = false;
            if result.is_ok() {
                progress.synced = progress.synced.max(target);
                let writers = (progress.waiting.iter())
                    .filter(|w| w.writing && w.lsn <= target)
                    .count() as u64;
                progress.expected =
                    self.begun.load(Ordering::SeqCst) + writers + u64::from(writing);
            }
        }
        // NB: after the unlock, so that the callers woken do not wait for the lock at once.
        self.changed.notify_all();
        result
    }

    /// Spins, yielding the CPU at each turn, until `expected` appends have begun and then the
    /// appends begun by that moment have ended, for at most `self.spin`. Returns the count of
    /// appends that must end before the sync if the spin ran out before they did.
    fn spin_for(&self, expected: u64) -> Option<u64> {
        let start = Instant::now();
        // NB: fixed once the expected appends have begun, so that a stream of appends after
        // them cannot hold the sync back.
        let mut fixed = None;
        loop {
            let begun = self.begun.load(Ordering::SeqCst);
            let goal = match fixed {
                Some(goal) => goal,
                None if begun >= expected => *fixed.insert(begun),
                None => begun,
            };
            let ended = self.ended.load(Ordering::SeqCst) >= goal;
            if ended && fixed.is_some() || self.check().is_err() {
                return None;
            }
            if start.elapsed() >= self.spin {
                // NB: only the appends begun by now, for the same reason. One may be held up
                // by a rotation (two syncs, perhaps a wait for the next segment); the
                // rotation's syncs make every frame written before it durable too.
                return (!ended).then_some(goal);
            }
            thread::yield_now();
        }
    }

    /// Waits on `gathered` until `goal` appends have ended or the log is poisoned.
    fn park_for<'a>(
        &'a self,
        mut progress: MutexGuard<'a, Progress>,
        goal: u64,
    ) -> MutexGuard<'a, Progress> {
        // NB: a handshake with `Appending::drop`, all SeqCst: either the leader sees the last
        // append end, or that append sees the goal and wakes it (taking the lock first, which
        // the leader holds until it waits, so the wake-up cannot come too early).
        self.goal.store(goal, Ordering::SeqCst);
        while self.ended.load(Ordering::SeqCst) < goal && self.check().is_ok() {
            progress = self
                .gathered
                .wait(progress)
                .unwrap_or_else(PoisonError::into_inner);
        }
        self.goal.store(NO_GOAL, Ordering::SeqCst);
        progress
    }
}

/// An append under way; see [`SyncPoint::begin_append`].
#[derive(Debug)]
pub(crate) struct Appending<'a>(&'a SyncPoint);

impl Drop for Appending<'_> {
    fn drop(&mut self) {
        let point = self.0;
        let ended = point.ended.fetch_add(1, Ordering::SeqCst) + 1;
        if ended >= point.goal.load(Ordering::SeqCst) {
            let _progress = lock(&point.progress);
            point.gathered.notify_one();
        }
    }
}

#[cfg(test)]
mod tests;

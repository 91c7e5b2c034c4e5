//! Group commit: many callers, one fdatasync. The first caller to need a sync becomes the
//! leader and syncs everything written so far; callers arriving meanwhile wait for it and are
//! done if it covered them, or elect the next leader. No timer: a lone caller syncs at once.
//!
//! Also the poison latch: a failed sync is never retried (the kernel may have dropped the dirty
//! pages it failed to write), so every later write and sync fails until the log is reopened.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, IoOp, Result};
use crate::fs::File;

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
    /// A leader is syncing now.
    leader: bool,
}

/// The meeting point of writers, syncers and the poison latch.
#[derive(Debug)]
pub(crate) struct SyncPoint {
    progress: Mutex<Progress>,
    changed: Condvar,
    poisoned: AtomicBool,
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
            }),
            changed: Condvar::new(),
            poisoned: AtomicBool::new(false),
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
    /// concurrent caller.
    ///
    /// # Errors
    /// [`Error::Io`] to the leader whose fdatasync failed (the log is poisoned from then on),
    /// [`Error::Poisoned`] to everyone else, and [`Error::InvalidCall`] for an Lsn never issued.
    pub(crate) fn sync(&self, lsn: u64) -> Result<()> {
        let mut progress = lock(&self.progress);
        loop {
            self.check()?;
            if progress.synced >= lsn {
                return Ok(());
            }
            if lsn > progress.written {
                return Err(Error::InvalidCall("sync: that Lsn was never issued"));
            }
            if progress.leader {
                progress = self
                    .changed
                    .wait(progress)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            progress.leader = true;
            let target = progress.written;
            let file = Arc::clone(&progress.file);
            let path = progress.path.clone();
            drop(progress);
            let result = file.sync_data();
            progress = lock(&self.progress);
            progress.leader = false;
            if let Err(source) = result {
                self.poisoned.store(true, Ordering::Release);
                self.changed.notify_all();
                return Err(Error::Io {
                    op: IoOp::SyncData,
                    path,
                    source,
                });
            }
            progress.synced = progress.synced.max(target);
            self.changed.notify_all();
        }
    }
}

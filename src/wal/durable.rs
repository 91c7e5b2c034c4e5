//! The background syncer behind [`Wal::on_durable`](crate::Wal::on_durable): callers leave a
//! callback and an Lsn; one thread syncs, through the same group commit as
//! [`Wal::sync`](crate::Wal::sync), and runs the callbacks in Lsn order once their frames are
//! durable.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::sync::{SyncPoint, lock};
use crate::error::{Error, Result};
use crate::wal::Lsn;

/// A callback waiting for durability.
pub(crate) type Callback = Box<dyn FnOnce(Result<()>) + Send>;

#[derive(Default)]
struct Queue {
    /// Callbacks not yet run, in the order they were left.
    waiting: Vec<(Lsn, Callback)>,
    /// The log is closing: run what is left, then stop.
    closing: bool,
}

/// The queue shared by the log and its syncer thread.
#[derive(Default)]
pub(crate) struct Durable {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = lock(&self.queue).waiting.len();
        f.debug_struct("Durable")
            .field("waiting", &waiting)
            .finish()
    }
}

impl Durable {
    /// Queues `done` to run once `lsn` is durable.
    pub(crate) fn push(&self, lsn: Lsn, done: Callback) {
        lock(&self.queue).waiting.push((lsn, done));
        self.wake.notify_one();
    }

    /// Starts the syncer thread.
    pub(crate) fn spawn(self: &Arc<Self>, sync: Arc<SyncPoint>) -> std::io::Result<JoinHandle<()>> {
        let this = Arc::clone(self);
        std::thread::Builder::new()
            .name("raftwal-syncer".into())
            .spawn(move || this.run(&sync))
    }

    /// Asks the thread to finish the queue and stop.
    pub(crate) fn close(&self) {
        lock(&self.queue).closing = true;
        self.wake.notify_one();
    }

    fn run(&self, sync: &SyncPoint) {
        loop {
            let target = {
                let mut queue = lock(&self.queue);
                while queue.waiting.is_empty() && !queue.closing {
                    queue = self
                        .wake
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                match queue.waiting.iter().map(|(lsn, _)| *lsn).max() {
                    Some(lsn) => lsn,
                    None => return,
                }
            };
            // The first callback of a failed sync gets its error; the others see the poison.
            let mut failure = sync.sync(target.0).err();
            let failed = failure.is_some();
            let mut ready: Vec<(Lsn, Callback)> = lock(&self.queue)
                .waiting
                .extract_if(.., |(lsn, _)| failed || *lsn <= target)
                .collect();
            ready.sort_by_key(|(lsn, _)| *lsn);
            for (_, done) in ready {
                done(if failed {
                    Err(failure.take().unwrap_or(Error::Poisoned))
                } else {
                    Ok(())
                });
            }
        }
    }
}

//! Purged segment files kept for reuse, so that a new segment need not be zero-filled: the
//! free pool.
//!
//! A Raft log compacted behind its writer deletes a segment about as often as it needs a new
//! one. Renaming the purged file to a free name and writing the next segment over its old
//! bytes saves writing every byte twice (zeros, then frames). The price is in recovery: the
//! space after a recycled segment's frames holds stale bytes, not zeros (see `scan`).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The free files, shared by the thread that retires purged segments and the one preparing
/// the next segment.
#[derive(Debug)]
pub(crate) struct Pool {
    /// Most files kept; 0 turns recycling off.
    cap: usize,
    /// Files under a free name, each durable under it, no larger than the segment size and
    /// mapped by no reader. Invariant: at most `cap`.
    files: Mutex<Vec<PathBuf>>,
}

impl Pool {
    /// An empty pool of at most `cap` files. (It starts empty at every open: see
    /// `recovery::list_segments`.)
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            files: Mutex::new(Vec::new()),
        }
    }

    fn files(&self) -> MutexGuard<'_, Vec<PathBuf>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A free file to build the next segment from, if there is one.
    pub(crate) fn take(&self) -> Option<PathBuf> {
        self.files().pop()
    }

    /// How many more files the pool takes, besides `pending` already on their way in.
    pub(crate) fn room(&self, pending: usize) -> usize {
        self.cap.saturating_sub(self.files().len() + pending)
    }

    /// Offers `files` for reuse, once their free names are durable; beyond the cap they are
    /// left out (and removed at the next open, as every free file is).
    pub(crate) fn put(&self, files: Vec<PathBuf>) {
        let mut pool = self.files();
        let room = self.cap.saturating_sub(pool.len());
        pool.extend(files.into_iter().take(room));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_never_holds_more_than_its_cap() {
        let names = |n: usize| (0..n).map(|i| PathBuf::from(format!("{i}.free"))).collect();
        let pool = Pool::new(2);
        assert_eq!(pool.room(1), 1);
        pool.put(names(3));
        assert_eq!(pool.room(0), 0);
        assert_eq!(pool.take(), Some(PathBuf::from("1.free")));
        assert_eq!(pool.room(0), 1);
        assert_eq!(pool.room(1), 0);
        pool.put(names(2));
        assert_eq!(pool.take(), Some(PathBuf::from("0.free")));
        assert_eq!(pool.take(), Some(PathBuf::from("0.free")));
        assert_eq!(pool.take(), None);
        let off = Pool::new(0);
        off.put(names(1));
        assert_eq!((off.room(0), off.take()), (0, None));
    }
}

//! [`Storage`](super::Storage) over the [`Wal`]. API CONTRACT STUB, filled in by the WAL work.

use std::sync::Arc;

use crate::wal::Wal;

/// The etcd `Storage` contract served from a [`Wal`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DiskStorage {
    wal: Arc<Wal>,
}

impl DiskStorage {
    /// Serves reads from `wal`.
    pub fn new(wal: Arc<Wal>) -> Self {
        Self { wal }
    }

    /// The WAL underneath, for writes.
    pub fn wal(&self) -> &Arc<Wal> {
        &self.wal
    }
}

//! raftwal: the log storage engine under a Raft implementation.
//!
//! Layers, bottom to top: [`fs`] (the disk seam) → `record` (frame codec) → `segment` (one
//! file) → [`wal`] (the log on disk) → [`storage`] (etcd's read contract) → `log` (etcd's
//! `unstable` + `raftLog` and the Ready lifecycle). See `docs/design.md`.

mod error;
pub mod fs;
pub mod inspect;
mod log;
mod record;
mod segment;
pub mod storage;
#[cfg(feature = "test-util")]
pub mod testing;
mod types;
pub mod wal;

#[cfg(any(feature = "raft-rs", feature = "openraft"))]
pub mod adapters;

pub use error::{DecodeError, Error, IoOp, Result};
pub use log::{LogConfig, LogWriter, Persist, PersistAck, Pipeline, RaftLog, Ready, Unstable};
pub use storage::{DiskStorage, MemStorage, Storage};
pub use types::{
    ENTRY_OVERHEAD, Entry, EntryId, HardState, RaftState, Snapshot, SnapshotMeta, entries_size,
};
pub use wal::{Batch, Lsn, Options, RecoveryReport, Wal};

//! raftwal: the log storage engine under a Raft implementation. It keeps the Raft log (entries,
//! hard state, snapshot metadata) durable on local disk, serves it back zero-copy, and gives the
//! consensus layer an etcd-style in-memory log ([`RaftLog`], [`Unstable`], [`Ready`]) so that
//! persistence can run asynchronously ([`Pipeline`]). It is not a Raft implementation.
//!
//! Layers, bottom to top: [`fs`] (the disk seam) → `record` (frame codec) → `segment` (one
//! file) → [`wal`] (the log on disk) → [`storage`] (etcd's read contract) → `log` (etcd's
//! `unstable` + `raftLog` and the Ready lifecycle). See `docs/design.md`; the promises and how
//! they are tested are in `docs/durability.md`.
//!
//! ```
//! use raftwal::{Batch, Entry, HardState, Options, Wal};
//!
//! # fn main() -> raftwal::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let (wal, _report) = Wal::open(dir.path().join("log"), Options::default())?;
//! // One atomic batch, durable when this returns.
//! wal.append_sync(&Batch {
//!     entries: vec![Entry::new(1, 1, "x = 1"), Entry::new(2, 1, "y = 2")],
//!     hard_state: Some(HardState { term: 1, vote: 1, commit: 2 }),
//!     ..Batch::default()
//! })?;
//! assert_eq!(wal.entries(1, 3, u64::MAX)?[1].data, "y = 2");
//! # Ok(())
//! # }
//! ```

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

//! The etcd-style log above storage: [`Unstable`] (the not-yet-durable tail), [`RaftLog`]
//! (storage + unstable + commit/apply indexes), the Ready lifecycle, and the asynchronous
//! persistence [`Pipeline`]. Names and semantics follow etcd raft (`spec/etcd-raft-log.md`).

mod pipeline;
mod raft_log;
mod ready;
mod unstable;

pub use pipeline::{LogWriter, Pipeline};
pub use raft_log::{LogConfig, RaftLog};
pub use ready::{Persist, PersistAck, Ready};
pub use unstable::Unstable;

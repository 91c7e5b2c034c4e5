//! Adapters to Raft libraries, each behind its feature.

#[cfg(feature = "openraft")]
pub mod openraft;
#[cfg(feature = "raft-rs")]
pub mod raft_rs;

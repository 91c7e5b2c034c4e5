//! Workload code shared as source by the `raftwal` binary and the criterion benches
//! (`benches/common` includes this directory by path), so that both measure exactly the same
//! thing: the raw-disk baseline and the log writers. It may use only `raftwal`, `bytes`,
//! `tempfile` and `std`.

pub mod raw;
pub mod writer;

use std::path::PathBuf;

use raftwal::{Options, Wal};
use tempfile::TempDir;

/// A log in a temp dir of its own; the dir is removed after the log is closed.
#[derive(Debug)]
pub struct TempLog {
    /// The open log. NB: declared before `dir`, so it is dropped (closed) first.
    pub wal: Wal,
    dir: TempDir,
}

impl TempLog {
    /// Creates a new log in a subdirectory of `dir`, which the log creates itself.
    ///
    /// # Errors
    /// Whatever [`Wal::open`] returns.
    pub fn create(dir: TempDir, options: Options) -> raftwal::Result<Self> {
        let (wal, _) = Wal::open(dir.path().join("log"), options)?;
        Ok(Self { wal, dir })
    }

    /// Closes the log and returns its path, with the temp dir that must outlive every later
    /// use of that path.
    pub fn close(self) -> (PathBuf, TempDir) {
        // `wal` is not moved out, so it is dropped with what is left of `self` when this returns.
        let Self { wal: _, dir } = self;
        (dir.path().join("log"), dir)
    }
}

/// `len` bytes that do not compress or repeat within a block: the payload every workload writes,
/// to the log and to the raw file alike.
pub fn payload(len: usize) -> Vec<u8> {
    // xorshift64: cheap, deterministic, and no dependency.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

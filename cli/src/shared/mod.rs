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

    /// Closes the log ([`Wal::close`]) and returns its path, with the temp dir that must
    /// outlive every later use of that path.
    ///
    /// # Errors
    /// Whatever [`Wal::close`] returns.
    pub fn close(self) -> raftwal::Result<(PathBuf, TempDir)> {
        let Self { wal, dir } = self;
        wal.close()?;
        Ok((dir.path().join("log"), dir))
    }
}

/// `max_size` of each [`Wal::entries`] call of [`read_all`].
const READ_WINDOW: u64 = 8 << 20;

/// Reads every entry of `wal` front to back and returns how many entries and payload bytes
/// there were.
///
/// # Errors
/// Whatever [`Wal::entries`] returns.
pub fn read_all(wal: &Wal) -> raftwal::Result<(u64, u64)> {
    let (mut entries, mut bytes) = (0, 0);
    let (mut lo, hi) = (wal.first_index(), wal.last_index() + 1);
    while lo < hi {
        let got = wal.entries(lo, hi, READ_WINDOW)?;
        entries += got.len() as u64;
        bytes += got.iter().map(|e| e.data.len() as u64).sum::<u64>();
        lo += got.len() as u64;
    }
    Ok((entries, bytes))
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

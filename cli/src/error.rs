//! Why a command failed, worded for the person at the terminal.

use std::io;
use std::path::PathBuf;

/// A failed command. The message names what was being done and to which file.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The log refused or failed an operation; its error already names the file and offset.
    #[error(transparent)]
    Wal(#[from] raftwal::Error),
    /// A file-system call of the command itself (temp dirs, raw baseline files) failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What the command was doing.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The log gave back fewer entries than were written and synced into it.
    #[error("wrote and synced {written} entries but read back {read}")]
    Lost {
        /// Entries written.
        written: u64,
        /// Entries read back.
        read: u64,
    },
    /// Options that cannot run together.
    #[error("invalid options: {0}")]
    Usage(&'static str),
}

impl CliError {
    /// Wraps an I/O error with what was being done to `path`.
    pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { what, path, source }
    }
}

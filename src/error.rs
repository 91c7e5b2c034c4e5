//! Errors: a pure [`DecodeError`] for bytes that do not parse, and the public [`Error`] that says
//! where and why an operation failed.

use std::io;
use std::path::PathBuf;

/// The result type of every fallible raftwal call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why some bytes are not a valid frame, header or name. Carries no location: the caller adds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the format needs.
    #[error("truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the format needs at this point.
        needed: u64,
        /// Bytes that are there.
        available: u64,
    },
    /// The stored checksum does not match the bytes.
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// Checksum read from disk.
        stored: u32,
        /// Checksum of the bytes read.
        computed: u32,
    },
    /// The magic number is not raftwal's.
    #[error("bad magic number {found:#x}")]
    BadMagic {
        /// The bytes found where the magic belongs.
        found: u64,
    },
    /// A format version this build does not read.
    #[error("unsupported format version {found}")]
    UnsupportedVersion {
        /// The version found.
        found: u16,
    },
    /// An unknown record type tag.
    #[error("unknown record type {found}")]
    UnknownRecordType {
        /// The tag found.
        found: u8,
    },
    /// A length field outside what the format allows.
    #[error("bad length {len} (allowed at most {max})")]
    BadLength {
        /// The length read.
        len: u64,
        /// The largest allowed.
        max: u64,
    },
    /// A field holds a value the format forbids.
    #[error("malformed {what}")]
    Malformed {
        /// Which field.
        what: &'static str,
    },
}

/// The file-system operation an [`Error::Io`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs, reason = "each variant names the call it stands for")]
pub enum IoOp {
    CreateDir,
    Open,
    Read,
    Write,
    Allocate,
    SetLen,
    SyncData,
    SyncDir,
    Rename,
    Remove,
    List,
    Lock,
    Map,
}

/// Everything that can go wrong in raftwal. Matched on by variant, never by message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed.
    #[error("{op:?} {path}: {source}")]
    Io {
        /// The operation.
        op: IoOp,
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// Acknowledged data is damaged: the log will not open until it is repaired by hand.
    #[error("corrupt log: {segment} at byte {offset}: {source}")]
    Corrupt {
        /// The damaged file.
        segment: PathBuf,
        /// Byte offset of the damaged frame or header in that file.
        offset: u64,
        /// What is wrong with the bytes.
        #[source]
        source: DecodeError,
    },
    /// A sync failed earlier; the log accepts no more writes until it is reopened.
    #[error("log is poisoned by an earlier failed sync; reopen it")]
    Poisoned,
    /// Another process (or another handle in this one) holds the log directory's lock.
    #[error("log directory {path} is locked by another owner")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The index is below the first retained index (it was compacted into a snapshot).
    #[error("index {index} is compacted (first index {first_index})")]
    Compacted {
        /// The index asked for.
        index: u64,
        /// The first index still in the log.
        first_index: u64,
    },
    /// The index is beyond the last index.
    #[error("index {index} is unavailable (last index {last_index})")]
    Unavailable {
        /// The index asked for.
        index: u64,
        /// The last index in the log.
        last_index: u64,
    },
    /// No snapshot can be produced right now; ask again later.
    #[error("snapshot temporarily unavailable")]
    SnapshotTemporarilyUnavailable,
    /// The snapshot is not newer than the one already held.
    #[error("snapshot at index {index} is out of date (have {current})")]
    SnapshotOutOfDate {
        /// The snapshot offered.
        index: u64,
        /// The snapshot already held.
        current: u64,
    },
    /// Entries do not continue the log: an index gap or a batch that is not contiguous.
    #[error("entry index {found} does not follow the log (expected at most {expected})")]
    NotContiguous {
        /// The highest index that would have continued the log.
        expected: u64,
        /// The index offered.
        found: u64,
    },
    /// A term goes backwards inside a batch or against the entry it follows.
    #[error("entry {index} has term {term}, below the preceding term {prev_term}")]
    TermRegression {
        /// The offending entry.
        index: u64,
        /// Its term.
        term: u64,
        /// The term before it.
        prev_term: u64,
    },
    /// An entry's payload exceeds the configured maximum.
    #[error("entry {index} is {size} bytes, over the maximum {max}")]
    EntryTooLarge {
        /// The offending entry.
        index: u64,
        /// Its payload size.
        size: u64,
        /// The configured maximum.
        max: u64,
    },
    /// The operation would remove or rewrite committed entries.
    #[error("index {index} is at or below the committed index {committed}")]
    BelowCommitted {
        /// The first index the operation would change.
        index: u64,
        /// The committed index.
        committed: u64,
    },
    /// A commit index beyond the last entry.
    #[error("commit index {commit} is beyond the last index {last_index}")]
    CommitBeyondLast {
        /// The commit index asked for.
        commit: u64,
        /// The last index in the log.
        last_index: u64,
    },
    /// The caller broke the protocol of a stateful API (the message names the rule).
    #[error("invalid call: {0}")]
    InvalidCall(&'static str),
    /// An option is outside its allowed range.
    #[error("invalid option {name}: {reason}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// The allowed range.
        reason: &'static str,
    },
}

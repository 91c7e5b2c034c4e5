//! Read-only inspection of a log directory: what `raftwal dump DIR` and `raftwal verify DIR`
//! print. Nothing here writes, takes the lock or maps a file, so it is safe to run beside a
//! process that has the log open (it may then see that process's newest frames half written).
//!
//! # Example
//! ```
//! use raftwal::{Batch, Entry, Options, Wal, inspect};
//!
//! let dir = tempfile::tempdir()?;
//! let (wal, _) = Wal::open(dir.path(), Options::default())?;
//! wal.append_sync(&Batch { entries: vec![Entry::new(1, 1, "a")], ..Batch::default() })?;
//!
//! let segments = inspect::dump(dir.path())?;
//! assert!(matches!(segments[0].records[1].what, inspect::What::Batch { count: 1, .. }));
//! assert_eq!(inspect::verify(dir.path(), &Options::default())?.last_index, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

pub use crate::record::Kind;
pub use crate::segment::Header;

use crate::error::{DecodeError, Result};
use crate::fs::{Fs, OpenMode, StdFs};
use crate::record::Record;
use crate::segment::{self, Frames, HEADER_LEN, torn_end};
use crate::types::{EntryId, HardState};
use crate::wal::{Options, RecoveryReport, recovery};

/// One segment file as it is on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentDump {
    /// The file.
    pub path: PathBuf,
    /// Its length in bytes (pre-allocated space included).
    pub len: u64,
    /// Its header, or why it does not decode (then nothing else is read).
    pub header: Result<Header, DecodeError>,
    /// Every valid frame from the header on, in file order.
    pub records: Vec<RecordDump>,
    /// How the frames end.
    pub end: End,
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordDump {
    /// Byte offset of the frame in its file.
    pub offset: u64,
    /// Bytes it occupies, padding included.
    pub len: u64,
    /// Its sequence number.
    pub lsn: u64,
    /// Every frame up to this Lsn was durable when it was written.
    pub synced_lsn: u64,
    /// What it says.
    pub what: What,
}

/// What a frame says, without its payloads.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum What {
    /// The log's state when the segment began.
    Checkpoint {
        /// The compaction point.
        compacted: EntryId,
        /// The last entry.
        last: EntryId,
        /// The hard state in force.
        hard_state: HardState,
        /// The latest snapshot's id (index 0: none).
        snapshot: EntryId,
    },
    /// An atomic write.
    Batch {
        /// First and last entry, if any.
        entries: Option<(EntryId, EntryId)>,
        /// Number of entries.
        count: usize,
        /// Sum of their payload lengths.
        payload_bytes: u64,
        /// The hard state written with them.
        hard_state: Option<HardState>,
        /// The id of a snapshot installed first.
        snapshot: Option<EntryId>,
    },
    /// Entries after `after` were removed.
    Truncate {
        /// The last index kept.
        after: u64,
    },
    /// The prefix up to `to` was compacted.
    Purge {
        /// The new compaction point.
        to: EntryId,
    },
    /// Snapshot metadata was recorded.
    Snapshot {
        /// The snapshot's id.
        id: EntryId,
        /// Length of its membership bytes.
        conf_state_bytes: usize,
    },
    /// The segment is full; its successor is named.
    Seal {
        /// The next segment's sequence number.
        next_seq: u64,
        /// The next segment's salt.
        next_salt: u64,
    },
}

/// How the frames of a segment end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// A seal ends it at `offset` (the end of the seal frame).
    Sealed {
        /// Where the seal frame ends.
        offset: u64,
    },
    /// Nothing of this segment from `offset` on: zeros (never written, or the last frame's
    /// end marker), followed in a recycled segment ([`Header::recycled`]) by stale bytes of
    /// the file's earlier life.
    Clean {
        /// Where the frames end.
        offset: u64,
    },
    /// The bytes at `offset` are not a valid frame. Whether that is a torn tail or damage
    /// depends on the segments after it: [`verify`] decides.
    Stopped {
        /// Where the frames end.
        offset: u64,
        /// Why the bytes there are not a frame (`None`: a zero header).
        error: Option<DecodeError>,
        /// Bytes from `offset` to the end of what this segment's writer left: the last non-zero
        /// byte of the file, or in a recycled segment the end of the last frame of its salt,
        /// and at least the end marker's slot where the bytes at `offset` are not zeros.
        trailing: u64,
    },
    /// The header does not decode.
    NoHeader,
}

/// Every segment of the log in `dir`, in log order, frame by frame. Reads only.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) if the directory or a file cannot be read.
pub fn dump(dir: impl AsRef<Path>) -> Result<Vec<SegmentDump>> {
    dump_with_fs(&StdFs, dir.as_ref())
}

/// [`dump`] on any [`Fs`].
///
/// # Errors
/// As [`dump`].
pub fn dump_with_fs(fs: &dyn Fs, dir: &Path) -> Result<Vec<SegmentDump>> {
    let (seqs, _temps) = recovery::list_segments(fs, dir)?;
    seqs.into_iter()
        .map(|seq| dump_segment(fs, &dir.join(segment::segment_name(seq))))
        .collect()
}

fn dump_segment(fs: &dyn Fs, path: &Path) -> Result<SegmentDump> {
    let file = segment::open(fs, path, OpenMode::ReadOnly)?;
    let buf = segment::load(file.as_ref(), path, false)?;
    let mut dump = SegmentDump {
        path: path.to_path_buf(),
        len: buf.len() as u64,
        header: Header::decode(&buf),
        records: Vec::new(),
        end: End::NoHeader,
    };
    let Ok(header) = dump.header else {
        return Ok(dump);
    };
    for item in Frames::new(&buf, header.salt, HEADER_LEN as u64, None) {
        match item {
            Ok((offset, frame)) => {
                let sealed = matches!(frame.record, Record::Seal { .. });
                dump.records.push(RecordDump {
                    offset,
                    len: frame.len,
                    lsn: frame.lsn,
                    synced_lsn: frame.synced_lsn,
                    what: what(&frame.record),
                });
                if sealed {
                    dump.end = End::Sealed {
                        offset: offset + frame.len,
                    };
                    break;
                }
            }
            Err(stop) => {
                let next_lsn = dump.records.last().map_or(0, |r| r.lsn + 1);
                let all = buf.len() as u64;
                let trailing = torn_end(&header, &buf, &stop, next_lsn, all) - stop.offset;
                dump.end = match (stop.error, trailing) {
                    (None, 0) => End::Clean {
                        offset: stop.offset,
                    },
                    (error, trailing) => End::Stopped {
                        offset: stop.offset,
                        error,
                        trailing,
                    },
                };
            }
        }
    }
    Ok(dump)
}

fn what(record: &Record<'_>) -> What {
    match record {
        Record::Checkpoint(c) => What::Checkpoint {
            compacted: c.compacted,
            last: c.last,
            hard_state: c.hard_state,
            snapshot: c.snapshot.id(),
        },
        Record::Batch(b) => What::Batch {
            entries: b
                .entries
                .first()
                .zip(b.entries.last())
                .map(|(f, l)| (f.id(), l.id())),
            count: b.entries.len(),
            payload_bytes: b.entries.iter().map(|e| e.data.len() as u64).sum(),
            hard_state: b.hard_state,
            snapshot: b.snapshot.as_ref().map(|s| s.id()),
        },
        Record::Truncate { after } => What::Truncate { after: *after },
        Record::Purge(id) => What::Purge { to: *id },
        Record::Snapshot(meta) => What::Snapshot {
            id: meta.id(),
            conf_state_bytes: meta.conf_state.len(),
        },
        Record::Seal {
            next_seq,
            next_salt,
        } => What::Seal {
            next_seq: *next_seq,
            next_salt: *next_salt,
        },
    }
}

/// Replays the log in `dir` as [`Wal::open`](crate::Wal::open) would, without writing
/// anything, and says what opening it would do. Format v1 needs nothing from `options` (it
/// reads everything from the files); it is taken so that a later format can need it.
///
/// # Errors
/// [`Error::Corrupt`](crate::Error::Corrupt) naming the file and offset of damaged
/// acknowledged data; [`Error::Io`](crate::Error::Io) if a file cannot be read.
pub fn verify(dir: impl AsRef<Path>, options: &Options) -> Result<RecoveryReport> {
    verify_with_fs(&StdFs, dir.as_ref(), options)
}

/// [`verify`] on any [`Fs`].
///
/// # Errors
/// As [`verify`].
pub fn verify_with_fs(fs: &dyn Fs, dir: &Path, options: &Options) -> Result<RecoveryReport> {
    let mut options = options.clone();
    options.use_mmap = false;
    let replayed = recovery::replay(fs, dir, &options)?;
    Ok(replayed.map(|r| r.report()).unwrap_or_default())
}

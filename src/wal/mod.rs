//! The log on disk: a directory of segments holding one sequence of frames, an in-memory index
//! of every retained entry, group commit, and recovery.
//!
//! Writes serialise on one writer; each becomes one frame written with one `pwrite` (a
//! `pwritev` from the caller's buffers when its payloads are large), visible to readers as soon
//! as it returns and durable once a [`Wal::sync`] covers its [`Lsn`]. Readers
//! take a read lock only long enough to find where entries are, so they never wait for a sync
//! or a disk read of another caller.

mod create;
mod durable;
pub(crate) mod recovery;
mod state;
mod sync;
mod writer;

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;

use bytes::Bytes;

use self::durable::Durable;
use self::recovery::SegmentFile;
use self::state::{Effect, Loc, LogState};
use self::sync::{SyncPoint, lock};
use self::writer::{Ctx, Rotation, Writer, Written};
use crate::error::{Error, IoOp, Result};
use crate::fs::{Fs, LockGuard, StdFs};
use crate::record::Record;
use crate::segment::{self, Pool, Readers, io_err};
use crate::types::{Entry, EntryId, HardState, SnapshotMeta};

/// Smallest accepted [`Options::segment_size`].
const MIN_SEGMENT_SIZE: u64 = 1 << 10;

/// Settings of a [`Wal`]. Every field has a default; [`Wal::open`] validates them.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Target size of a segment file. Default: 64 MiB; at least 1 KiB. A batch larger than a
    /// segment gets a segment of its own, as large as it needs.
    pub segment_size: u64,
    /// Largest accepted entry payload. Default: 16 MiB; at most `u32::MAX`.
    pub max_entry_size: u64,
    /// Serve sealed segments from read-only memory maps (zero-copy). Default: true. When
    /// false, every read of a sealed segment is a `pread` into a fresh buffer.
    pub use_mmap: bool,
    /// Purged segments kept as free files, to become new segments by being written over
    /// instead of zero-filled: in a log compacted behind its writer, each byte then reaches
    /// the disk once instead of twice. They take up to that many segments of disk space; open
    /// removes those a closed log left (their names may not be durable). A
    /// recycled segment holds stale bytes after its frames (behind the zeros each frame is
    /// written with), so damage to its newest frames, which no later frame vouches for, is
    /// always cut as a reported torn tail, where a zero-filled segment can tell `Corrupt`
    /// when every sector of the frame was written (docs/durability.md).
    /// Default: 2; 0 removes every purged segment.
    pub recycle_segments: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            segment_size: 64 << 20,
            max_entry_size: 16 << 20,
            use_mmap: true,
            recycle_segments: 2,
        }
    }
}

impl Options {
    fn validate(&self) -> Result<()> {
        if self.segment_size < MIN_SEGMENT_SIZE {
            return Err(Error::InvalidOption {
                name: "segment_size",
                reason: "at least 1 KiB",
            });
        }
        if self.max_entry_size == 0 || self.max_entry_size > u64::from(u32::MAX) {
            return Err(Error::InvalidOption {
                name: "max_entry_size",
                reason: "between 1 and u32::MAX bytes",
            });
        }
        Ok(())
    }
}

/// What [`Wal::open`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Bytes of an incomplete, never acknowledged final batch that were cut off.
    pub torn_bytes_dropped: u64,
    /// The segment the torn tail was in, if any.
    pub torn_segment: Option<PathBuf>,
    /// The last index kept.
    pub last_index: u64,
    /// Segments the log is made of after recovery (unused and stale files removed).
    pub segments: usize,
    /// Bytes of the newest frames, which no later frame proves durable, written again and
    /// synced (after a failed sync they may be in the page cache only). Usually the frames
    /// since the last sync; a segment header too when its checkpoint is among them.
    pub unproven_bytes_rewritten: u64,
}

/// One atomic write: after a crash either all of it is in the log or none of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// A snapshot to install first: the log is reset to end at `snapshot.index` (every entry is
    /// dropped, as etcd's `ApplySnapshot`), and its metadata is kept.
    pub snapshot: Option<SnapshotMeta>,
    /// Entries to append. The first may overwrite a suffix (follower append): entries at and
    /// after `entries[0].index` are replaced.
    pub entries: Vec<Entry>,
    /// A hard state to record.
    pub hard_state: Option<HardState>,
}

/// A durability ticket: the sequence number of a write. Writes are numbered in order; syncing
/// one makes it and every earlier write durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

/// An entry whose payload [`Wal::entries`] reads from its segment file.
struct PendingRead {
    /// Position in the result.
    at: usize,
    seg: u64,
    offset: u64,
    len: u64,
}

/// What readers see: the log's state and the files its entries are in.
#[derive(Debug)]
struct ReadSide {
    log: LogState,
    /// Every segment holding retained entries, by sequence number.
    files: BTreeMap<u64, SegmentFile>,
}

/// The durable segmented log. `Send + Sync`; writers serialise internally, readers never wait
/// for a sync.
///
/// # Example
/// ```
/// use raftwal::{Batch, Entry, Options, Wal};
///
/// let dir = tempfile::tempdir()?;
/// let (wal, report) = Wal::open(dir.path().join("log"), Options::default())?;
/// assert_eq!(report.last_index, 0);
/// let batch = Batch { entries: vec![Entry::new(1, 1, "put x=1")], ..Batch::default() };
/// wal.append_sync(&batch)?;
/// assert_eq!(wal.entries(1, 2, u64::MAX)?[0].data, "put x=1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Wal {
    ctx: Ctx,
    /// The single writer. Lock order: `writer`, then `read`.
    writer: Mutex<Writer>,
    read: RwLock<ReadSide>,
    durable: Arc<Durable>,
    syncer: Option<JoinHandle<()>>,
    _lock: Box<dyn LockGuard>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.ctx.dir)
            .field("first_index", &self.first_index())
            .field("last_index", &self.last_index())
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens the log in `dir` on the real disk, creating it if missing. See
    /// [`Wal::open_with_fs`].
    ///
    /// # Errors
    /// As [`Wal::open_with_fs`].
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<(Wal, RecoveryReport)> {
        Self::open_with_fs(Arc::new(StdFs), dir, options)
    }

    /// Opens the log in `dir` on `fs`: creates the directory and a first segment if there is
    /// no log yet, takes the lock file, replays every segment, cuts off a torn final write and
    /// syncs what it keeps. Starts two helper threads: the background syncer and the one
    /// preparing the next segment.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for bad options, [`Error::Locked`] if another handle holds the
    /// directory, [`Error::Corrupt`] if acknowledged data is damaged (the error names the file
    /// and offset), [`Error::Io`] if a file call fails.
    pub fn open_with_fs(
        fs: Arc<dyn Fs>,
        dir: impl AsRef<Path>,
        options: Options,
    ) -> Result<(Wal, RecoveryReport)> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let guard = match create::ensure_dir(fs.as_ref(), &dir, &options)? {
            Some(created) => created,
            None => create::lock(fs.as_ref(), &dir.join(create::LOCK_FILE))?,
        };
        let found = recovery::recover(fs.as_ref(), &dir, &options)?;
        let active = &found.active;
        let sync = SyncPoint::new(
            found.next_lsn - 1,
            Arc::clone(&active.file),
            active.path.clone(),
        );
        let pool = Pool::new(options.recycle_segments);
        let ctx = Ctx {
            fs,
            dir,
            options,
            sync: Arc::new(sync),
            pool: Arc::new(pool),
        };
        let durable = Arc::new(Durable::default());
        let syncer = durable
            .spawn(Arc::clone(&ctx.sync))
            .map_err(io_err(IoOp::Open, &ctx.dir))?;
        let writer = Writer::new(found.active, found.next_lsn, found.segments);
        let wal = Wal {
            ctx,
            writer: Mutex::new(writer),
            read: RwLock::new(ReadSide {
                log: found.log,
                files: found.files,
            }),
            durable,
            syncer: Some(syncer),
            _lock: guard,
        };
        Ok((wal, found.report))
    }

    /// Validates and writes `batch` as one frame (one `pwrite`, or a `pwritev` of its payloads
    /// where they lie when they average 4 KiB or more); readable at once, durable
    /// after [`Wal::sync`] of the returned Lsn. An empty batch writes nothing and returns the
    /// latest Lsn.
    ///
    /// Rules (nothing is written when one is broken): entries are consecutive and their terms
    /// never decrease; the first follows the log (`<= last_index + 1`), not below the
    /// compaction point, with a term at least that of the entry before it; it may overwrite a
    /// suffix, but not committed entries; a hard state's commit is within the resulting log
    /// and its term does not go back; an installed snapshot is newer than the one held.
    ///
    /// # Errors
    /// [`Error::NotContiguous`], [`Error::TermRegression`], [`Error::EntryTooLarge`],
    /// [`Error::BelowCommitted`], [`Error::Compacted`], [`Error::CommitBeyondLast`],
    /// [`Error::SnapshotOutOfDate`], [`Error::InvalidCall`] for the rules above;
    /// [`Error::Poisoned`] after a failed sync; [`Error::Io`] if the write fails, or (once,
    /// writing nothing) if background upkeep failed since the last write: preparing the next
    /// segment (ENOSPC shows here before the active segment is full) or retiring purged ones.
    pub fn append(&self, batch: &Batch) -> Result<Lsn> {
        let max = self.ctx.options.max_entry_size;
        self.commit(
            &Record::Batch(Cow::Borrowed(batch)),
            |log| log.check_batch(batch, max),
            |log, written| {
                let mut offset = written.offset + written.encoded.payloads_at;
                let locs = batch.entries.iter().map(|e| {
                    let len = e.data.len() as u64;
                    offset += len;
                    Loc::Stored {
                        seg: written.seq,
                        offset: offset - len,
                        len: u32::try_from(len).unwrap_or(u32::MAX),
                    }
                });
                log.apply_batch(batch, locs).is_ok()
            },
        )
    }

    /// Blocks until every write up to `lsn` is durable. Concurrent callers share one fdatasync.
    ///
    /// # Errors
    /// [`Error::Io`] if the fdatasync failed (the log is poisoned from then on: the failed
    /// sync is never retried), [`Error::Poisoned`] after an earlier failure,
    /// [`Error::InvalidCall`] for an Lsn this log never issued.
    pub fn sync(&self, lsn: Lsn) -> Result<()> {
        self.ctx.sync.sync(lsn.0)
    }

    /// Runs `done` on the WAL's background syncer once every write up to `lsn` is durable (or
    /// with the sync's error). Never blocks; a lone waiter is synced at once, not on a timer;
    /// callbacks fire in Lsn order. Callbacks still waiting when the log is dropped run before
    /// the drop returns. An Lsn this log never issued gets [`Error::InvalidCall`].
    pub fn on_durable(&self, lsn: Lsn, done: Box<dyn FnOnce(Result<()>) + Send>) {
        if lsn.0 > self.ctx.sync.written() {
            // Lsn 0 is always durable: the callback runs on the syncer without a sync.
            let invalid = Error::InvalidCall("on_durable: that Lsn was never issued");
            self.durable
                .push(Lsn(0), Box::new(move |_| done(Err(invalid))));
            return;
        }
        self.durable.push(lsn, done);
    }

    /// `append` then `sync`.
    ///
    /// # Errors
    /// As [`Wal::append`] and [`Wal::sync`].
    pub fn append_sync(&self, batch: &Batch) -> Result<()> {
        let lsn = self.append(batch)?;
        self.sync(lsn)
    }

    /// Removes every entry after `index` (nothing if `index >= last_index`).
    ///
    /// # Errors
    /// [`Error::BelowCommitted`] if that would remove committed entries, [`Error::Compacted`]
    /// if `index` is below the compaction point, and as [`Wal::append`] for I/O.
    pub fn truncate_after(&self, index: u64) -> Result<Lsn> {
        self.commit(
            &Record::Truncate { after: index },
            |log| log.check_truncate(index),
            |log, _| {
                log.truncate_after(index);
                true
            },
        )
    }

    /// Compacts the prefix up to and including `id.index`, keeping `id.term` as the term of the
    /// compaction point. `id.index` may lie beyond the last index (the log becomes empty and
    /// continues at `id.index + 1`). A point at or below the current one changes nothing.
    /// Segments wholly below the new point are retired by the background syncer once the
    /// purge is durable: kept as free files to become new segments (see
    /// [`Options::recycle_segments`]) or deleted.
    ///
    /// # Errors
    /// [`Error::InvalidCall`] if `id.index` is in the log with a different term, and as
    /// [`Wal::append`] for I/O.
    pub fn purge_to(&self, id: EntryId) -> Result<Lsn> {
        self.commit(
            &Record::Purge(id),
            |log| log.check_purge(id),
            |log, _| {
                log.apply_purge(id);
                true
            },
        )
    }

    /// Records metadata of a snapshot taken locally (`meta.index <= last_index`); the log is
    /// unchanged.
    ///
    /// # Errors
    /// [`Error::SnapshotOutOfDate`] if it is not newer than the held one,
    /// [`Error::Unavailable`] if `meta.index > last_index`, and as [`Wal::append`] for I/O.
    pub fn save_snapshot_meta(&self, meta: SnapshotMeta) -> Result<Lsn> {
        self.commit(
            &Record::Snapshot(Cow::Borrowed(&meta)),
            |log| log.check_snapshot_meta(&meta),
            |log, _| {
                log.apply_snapshot_meta(&meta);
                true
            },
        )
    }

    /// Closes the log after making every write durable and recording, in one more small
    /// frame, that it is. Open cannot know whether a sync it did not see succeeded, so it
    /// writes the newest frames no later frame proves durable again and syncs them (up to a
    /// segment's worth after a bulk load); after a close only that small frame is left to
    /// prove. Dropping the log instead is always safe, and leaves that work to the next open.
    ///
    /// # Errors
    /// As [`Wal::sync`] and [`Wal::append`]; the log is closed either way.
    ///
    /// # Example
    /// ```
    /// use raftwal::{Batch, Entry, Options, Wal};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let (wal, _) = Wal::open(dir.path().join("log"), Options::default())?;
    /// wal.append(&Batch { entries: vec![Entry::new(1, 1, "x")], ..Batch::default() })?;
    /// wal.close()?;
    /// let (wal, report) = Wal::open(dir.path().join("log"), Options::default())?;
    /// assert_eq!((wal.last_index(), report.torn_bytes_dropped), (1, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(self) -> Result<()> {
        self.sync(Lsn(self.ctx.sync.written()))?;
        // An empty batch changes nothing; its frame's proof covers every frame before it.
        let proof = self.commit(
            &Record::Batch(Cow::Owned(Batch::default())),
            |_| Ok(Effect::Change),
            |_, _| true,
        )?;
        self.sync(proof)
    }

    /// Waits until the next segment's preparation under way, if any, has finished: a test can
    /// then fail the device under the log without the preparation failing first.
    #[cfg(feature = "test-util")]
    pub(crate) fn settle_preparation(&self) -> Result<()> {
        lock(&self.writer).settle_preparation(&self.ctx)
    }

    /// The first index readable through [`Wal::entries`] (`last_index + 1` when empty).
    pub fn first_index(&self) -> u64 {
        self.read_side().log.first_index()
    }

    /// The index of the last entry (the compaction point when there is none).
    pub fn last_index(&self) -> u64 {
        self.read_side().log.last_index()
    }

    /// The term of entry `index`, for `index` in `[first_index - 1, last_index]`.
    ///
    /// # Errors
    /// [`Error::Compacted`] below that range, [`Error::Unavailable`] above it.
    pub fn term(&self, index: u64) -> Result<u64> {
        self.read_side().log.term(index)
    }

    /// Entries `[lo, hi)`, at most `max_size` bytes by [`Entry::size`] but at least one when
    /// the range is not empty (etcd's rules). Payloads are shared, not copied: slices of the
    /// caller's buffers or of mapped sealed segments; without maps, one `pread` per run of
    /// entries in the same segment.
    ///
    /// # Errors
    /// [`Error::Compacted`] if `lo < first_index`, [`Error::Unavailable`] if
    /// `hi > last_index + 1`, [`Error::InvalidCall`] if `lo > hi`, [`Error::Io`] if a read
    /// fails.
    pub fn entries(&self, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut reads = Vec::new();
        let mut files = BTreeMap::new();
        {
            let read = self.read_side();
            let range = read.log.range(lo, hi, max_size)?;
            // NB: entries come in segment order: the segment is looked up once per run.
            let mut segment: Option<(u64, Option<&SegmentFile>)> = None;
            for (index, slot, held) in range {
                let data = match (held, slot.loc) {
                    (Some(data), _) => data.clone(),
                    (None, Loc::Stored { seg, offset, len }) => {
                        let file = match segment {
                            Some((s, file)) if s == seg => file,
                            _ => segment.insert((seg, read.files.get(&seg))).1,
                        };
                        let bytes = usize::try_from(offset)
                            .ok()
                            .and_then(|at| Some(at..at.checked_add(len as usize)?));
                        let mapped = file.and_then(|f| Some((f.map.as_ref()?, bytes?)));
                        match mapped {
                            Some((map, bytes)) if bytes.end <= map.len() => map.slice(bytes),
                            _ => {
                                reads.push(PendingRead {
                                    at: out.len(),
                                    seg,
                                    offset,
                                    len: len.into(),
                                });
                                if let Some(file) = file {
                                    files.entry(seg).or_insert_with(|| file.unmapped());
                                }
                                Bytes::new()
                            }
                        }
                    }
                    (None, Loc::Missing) => {
                        let last_index = read.log.last_index();
                        return Err(Error::Unavailable { index, last_index });
                    }
                };
                out.push(Entry {
                    index,
                    term: slot.term,
                    data,
                });
            }
        }
        // Outside the lock: one read per run of entries in the same segment.
        for run in reads.chunk_by(|a, b| a.seg == b.seg) {
            let (Some(first), Some(last)) = (run.first(), run.last()) else {
                continue;
            };
            let file = files
                .get(&first.seg)
                .ok_or(Error::InvalidCall("entry in no segment"))?;
            let span_len = last.offset + last.len - first.offset;
            let span = segment::read_at(file.file.as_ref(), &file.path, first.offset, span_len)?;
            for read in run {
                let from = (read.offset - first.offset) as usize;
                if let Some(entry) = out.get_mut(read.at) {
                    entry.data = span.slice(from..from + read.len as usize);
                }
            }
        }
        Ok(out)
    }

    /// The last recorded hard state (empty on a new log).
    pub fn hard_state(&self) -> HardState {
        self.read_side().log.hard_state()
    }

    /// The latest snapshot metadata (index 0: none).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.read_side().log.snapshot().clone()
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.ctx.dir
    }

    fn read_side(&self) -> RwLockReadGuard<'_, ReadSide> {
        self.read
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_side(&self) -> RwLockWriteGuard<'_, ReadSide> {
        self.read
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Checks `record` against the log, writes it (rotating first if the active segment is
    /// full) and applies it to the read side. `apply` returns false only if the log cannot
    /// take a write `check` accepted, which poisons the log.
    fn commit(
        &self,
        record: &Record<'_>,
        check: impl FnOnce(&LogState) -> Result<Effect>,
        apply: impl FnOnce(&mut LogState, &Written) -> bool,
    ) -> Result<Lsn> {
        let _appending = self.ctx.sync.begin_append();
        let mut writer = lock(&self.writer);
        self.ctx.sync.check_write()?;
        writer.check_preparation(&self.ctx)?;
        let read = self.read_side();
        if check(&read.log)? == Effect::None {
            return Ok(Lsn(writer.next_lsn - 1));
        }
        let len = writer.encode(&self.ctx, record)?;
        let mut released = VecDeque::new();
        if writer.must_rotate(len) {
            let rotation = writer.rotate(&self.ctx, &read.log, len)?;
            drop(read);
            released = self.follow_rotation(rotation);
            writer.encode(&self.ctx, record)?;
        } else {
            drop(read);
        }
        let written = writer.write(&self.ctx, record)?;
        let mut read = self.write_side();
        let compacted_before = read.log.compacted();
        if !apply(&mut read.log, &written) {
            self.ctx.sync.poison();
            return Err(Error::InvalidCall("a checked write did not apply"));
        }
        read.log.check_invariants();
        let compacted = read.log.compacted();
        drop(read);
        if compacted != compacted_before {
            self.release_segments(&mut writer, compacted, Lsn(written.lsn));
        }
        drop(writer);
        drop(released);
        Ok(Lsn(written.lsn))
    }

    /// Points the read side at the sealed segment's final bytes and the new active one, and
    /// returns the payloads it held of the sealed segment, to be dropped outside the locks.
    fn follow_rotation(&self, rotation: Rotation) -> VecDeque<Bytes> {
        let map = if self.ctx.options.use_mmap {
            let file = rotation.sealed_file.as_ref();
            segment::read_prefix(file, &rotation.sealed_path, rotation.sealed_len, true).ok()
        } else {
            None
        };
        let mut read = self.write_side();
        if let Some(sealed) = read.files.get_mut(&rotation.sealed_seq) {
            sealed.map = map.map(|map| sealed.readers.track(map));
        }
        read.files.insert(
            rotation.new_seq,
            SegmentFile {
                path: self.ctx.dir.join(segment::segment_name(rotation.new_seq)),
                file: rotation.new_file,
                readers: Readers::default(),
                map: None,
            },
        );
        // Every payload held is in the sealed segment, mapped or read from its file now.
        read.log.release_payloads()
    }

    /// Forgets the segments a compaction to `compacted` made unnecessary and retires them once
    /// the write at `lsn` is durable. Replay can start at any segment whose checkpoint's last
    /// index is covered by the compaction: what it knew of older entries is all compacted.
    fn release_segments(&self, writer: &mut Writer, compacted: EntryId, lsn: Lsn) {
        let keep_from = writer
            .segments
            .iter()
            .rposition(|s| s.first_index.saturating_sub(1) <= compacted.index)
            .unwrap_or(0);
        if keep_from == 0 {
            return;
        }
        let mut released: Vec<_> = {
            let mut read = self.write_side();
            writer
                .segments
                .drain(..keep_from)
                .map(|s| (s.seq, read.files.remove(&s.seq), s.path))
                .collect()
        };
        let fs = Arc::clone(&self.ctx.fs);
        let sync = Arc::clone(&self.ctx.sync);
        let pool = Arc::clone(&self.ctx.pool);
        let dir = self.ctx.dir.clone();
        let size = self.ctx.options.segment_size;
        self.on_durable(
            lsn,
            Box::new(move |durable| {
                if durable.is_err() {
                    return;
                }
                // NB: oldest first, stopping at a failure, so the segments left are
                // contiguous. One left behind is harmless (replay reads it, then the purge
                // after it) and goes at the next purge after a reopen; the next write reports
                // the failure.
                let mut freed = Vec::new();
                for (seq, file, path) in &mut released {
                    // NB: its own map first, which would count as a reader.
                    if let Some(file) = file {
                        file.map = None;
                    }
                    // A file someone may still read, or grown for an oversized frame, is
                    // removed: unlinking leaves its bytes to readers, writing over it would not.
                    let reusable = file.as_ref().is_some_and(|f| {
                        !f.readers.others() && f.file.len().is_ok_and(|len| len <= size)
                    });
                    let retired = if reusable && pool.room(freed.len()) > 0 {
                        let free = dir.join(segment::free_name(*seq));
                        let renamed = fs.rename(path, &free).map_err(io_err(IoOp::Rename, path));
                        renamed.map(|()| freed.push(free))
                    } else {
                        fs.remove_file(path).map_err(io_err(IoOp::Remove, path))
                    };
                    if let Err(e) = retired {
                        sync.defer(e);
                        break;
                    }
                }
                if sync.sync_dir(fs.as_ref(), &dir).is_err() {
                    return;
                }
                // Only now: a preparer renaming a free file into place must not make its
                // name durable before the rename that took it out of the log.
                pool.put(freed);
            }),
        );
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.durable.close();
        if let Some(syncer) = self.syncer.take() {
            let _ = syncer.join();
        }
        lock(&self.writer).finish_preparing();
    }
}

//! One segment file: its name, header, creation ahead of need, and the frames inside it.
//!
//! A segment's life: `prepare` creates it under its final name, zero-filled to the target size
//! and synced (so later writes into it change no metadata), or makes it from a purged segment
//! of the free pool; the writer's rotation writes its header and checkpoint and syncs them;
//! frames are appended; a `Seal` frame naming the successor ends it; once purged, it is
//! removed or goes back to the pool. A header region that is all zeros marks a prepared
//! segment that was never used.

mod header;
mod name;
mod pool;
mod scan;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

pub(crate) use header::HEADER_LEN;
pub use header::Header;
pub(crate) use name::{FileName, free_name, parse as parse_name, segment_name, temp_name};
pub(crate) use pool::Pool;
pub(crate) use scan::{Decoded, Frames, Stop, find_proof, leftovers_end, torn_end, torn_plausible};

use crate::error::{Error, IoOp, Result};
use crate::fs::{File, Fs, OpenMode};

/// Attaches the operation and path to an I/O error.
pub(crate) fn io_err(op: IoOp, path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A fresh random salt for a new segment.
pub(crate) fn new_salt() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    RandomState::new().hash_one(nanos)
}

/// A segment prepared ahead of need: named, durable, its header region zero.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn File>,
    /// Built from a recycled file: past the header region it may hold stale bytes. Otherwise
    /// every byte is zero.
    pub(crate) recycled: bool,
}

/// Prepares segment `seq` in `dir`, `size` bytes, and makes it and its name durable: from a
/// file of the free `pool` if it has one, else a new file zero-filled. Runs off the hot path,
/// ahead of need.
///
/// A new file is built under a temporary name and gets its segment name only once its zeros
/// are synced; a free file gets it only once its header region is zero and synced. The
/// directory is synced through `sync_dir`, which a running log shares with its other
/// directory syncs (`SyncPoint::sync_dir`).
///
/// Cost: from the pool, a write of the header region (and of any tail the seal trimmed), one
/// fdatasync, one rename, one directory fsync; else one create and `size` bytes of zeros
/// written instead of the header region.
///
/// # Errors
/// [`Error::Io`] from the file-system calls. A half-made file is left under its temporary or
/// free name for recovery, which removes it; a name whose directory sync failed is removed
/// again, so that no reopen finds a segment whose name may never reach the disk.
pub(crate) fn prepare(
    fs: &dyn Fs,
    sync_dir: SyncDir<'_>,
    dir: &Path,
    seq: u64,
    size: u64,
    pool: &Pool,
) -> Result<Prepared> {
    if let Some(free) = pool.take() {
        return recycle(fs, sync_dir, dir, &free, seq, size);
    }
    let (path, file) = create_atomic(fs, sync_dir, dir, seq, size, &[])?;
    Ok(Prepared {
        path,
        file,
        recycled: false,
    })
}

/// Makes the free file `free` segment `seq`: zeroes its header region (and any tail cut off
/// by a seal, so that it is `size` bytes again), syncs, renames it into place and syncs the
/// directory. The frames of its earlier life stay: they carry another salt and never decode
/// in the new segment.
///
/// # Errors
/// As [`prepare`].
fn recycle(
    fs: &dyn Fs,
    sync_dir: SyncDir<'_>,
    dir: &Path,
    free: &Path,
    seq: u64,
    size: u64,
) -> Result<Prepared> {
    let file = open(fs, free, OpenMode::ReadWrite)?;
    let len = file.len().map_err(io_err(IoOp::Read, free))?;
    write_zeros(file.as_ref(), free, len..size)?;
    write_zeros(file.as_ref(), free, 0..HEADER_LEN as u64)?;
    file.sync_data().map_err(io_err(IoOp::SyncData, free))?;
    let path = dir.join(segment_name(seq));
    rename_durably(fs, sync_dir, dir, free, &path)?;
    Ok(Prepared {
        path,
        file,
        recycled: true,
    })
}

/// Creates segment `seq` atomically with `first_bytes` (a header and a checkpoint frame, or
/// nothing for a segment prepared ahead) at its start: built under a temporary name, synced,
/// renamed into place, directory synced.
///
/// # Errors
/// [`Error::Io`] from the file-system calls. If the directory sync fails, the new name is
/// removed again (best effort): after a failed sync the kernel may keep the name in memory
/// only and never write it, so a reopen must not find the segment and build on it, but
/// create it anew and sync its name.
pub(crate) fn create_atomic(
    fs: &dyn Fs,
    sync_dir: SyncDir<'_>,
    dir: &Path,
    seq: u64,
    size: u64,
    first_bytes: &[u8],
) -> Result<(PathBuf, Arc<dyn File>)> {
    let temp = dir.join(temp_name(seq));
    let path = dir.join(segment_name(seq));
    let file = create_fresh(fs, &temp)?;
    file.allocate_zeroed(size.max(first_bytes.len() as u64))
        .map_err(io_err(IoOp::Allocate, &temp))?;
    if !first_bytes.is_empty() {
        file.write_all_at(first_bytes, 0)
            .map_err(io_err(IoOp::Write, &temp))?;
    }
    file.sync_data().map_err(io_err(IoOp::SyncData, &temp))?;
    rename_durably(fs, sync_dir, dir, &temp, &path)?;
    Ok((path, file))
}

/// How a directory is synced: [`Fs::sync_dir`] with the error named, or, in a running log,
/// `SyncPoint::sync_dir`, one sync of the log at a time.
pub(crate) type SyncDir<'a> = &'a dyn Fn(&Path) -> Result<()>;

/// [`Fs::sync_dir`] of `fs`, the error naming the directory.
///
/// # Errors
/// [`Error::Io`] if the sync fails.
pub(crate) fn sync_dir(fs: &dyn Fs, dir: &Path) -> Result<()> {
    fs.sync_dir(dir).map_err(io_err(IoOp::SyncDir, dir))
}

/// Renames `from` to `to` in `dir` and syncs the directory with `sync_dir`.
///
/// # Errors
/// [`Error::Io`] if either fails, or the error of `sync_dir`. After a failed directory sync
/// `to` is removed again (best effort): the kernel may keep the name in memory only and never
/// write it.
fn rename_durably(
    fs: &dyn Fs,
    sync_dir: SyncDir<'_>,
    dir: &Path,
    from: &Path,
    to: &Path,
) -> Result<()> {
    fs.rename(from, to).map_err(io_err(IoOp::Rename, from))?;
    if let Err(e) = sync_dir(dir) {
        // NB: if the removal fails too, the error still reaches the caller; nothing better is
        // left to try.
        let _ = fs.remove_file(to);
        return Err(e);
    }
    Ok(())
}

/// Writes zeros over `range` of `file` (nothing if it is empty), a chunk at a time.
///
/// # Errors
/// [`Error::Io`] naming `path` if a write fails.
pub(crate) fn write_zeros(file: &dyn File, path: &Path, range: Range<u64>) -> Result<()> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; range.end.saturating_sub(range.start).min(CHUNK) as usize];
    let mut at = range.start;
    while at < range.end {
        let n = (range.end - at).min(CHUNK) as usize;
        file.write_all_at(zeros.get(..n).unwrap_or_default(), at)
            .map_err(io_err(IoOp::Write, path))?;
        at += n as u64;
    }
    Ok(())
}

/// Counts who may still read one segment file's old bytes: every map of it (and slice of a
/// map), and every clone of its read-side handle (a read in flight outside the lock). The file
/// is written over (recycled) only when none is left; unlinking it instead is always safe.
#[derive(Clone, Debug, Default)]
pub(crate) struct Readers(Arc<()>);

/// A map that counts as a reader of its segment while any slice of it lives.
struct Tracked {
    map: Bytes,
    _reader: Readers,
}

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Readers {
    /// `map`, counted as a reader until it and every slice of it are dropped.
    pub(crate) fn track(&self, map: Bytes) -> Bytes {
        Bytes::from_owner(Tracked {
            map,
            _reader: self.clone(),
        })
    }

    /// Does anyone besides this handle still read the file?
    pub(crate) fn others(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

/// Opens the log file `path` in `mode`.
///
/// # Errors
/// [`Error::Io`] naming `path` if it cannot be opened.
pub(crate) fn open(fs: &dyn Fs, path: &Path, mode: OpenMode) -> Result<Arc<dyn File>> {
    fs.open(path, mode).map_err(io_err(IoOp::Open, path))
}

/// Creates `path`, replacing what a failed or crashed earlier attempt left there.
///
/// # Errors
/// [`Error::Io`] if it cannot be created.
fn create_fresh(fs: &dyn Fs, path: &Path) -> Result<Arc<dyn File>> {
    let file = match fs.open(path, OpenMode::CreateNew) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs.remove_file(path).map_err(io_err(IoOp::Remove, path))?;
            fs.open(path, OpenMode::CreateNew)
        }
        opened => opened,
    };
    file.map_err(io_err(IoOp::Open, path))
}

/// The whole file as one buffer: a read-only map, or a plain read when `use_mmap` is off.
///
/// # Errors
/// [`Error::Io`] if the file cannot be measured, mapped or read.
pub(crate) fn load(file: &dyn File, path: &Path, use_mmap: bool) -> Result<Bytes> {
    let len = file.len().map_err(io_err(IoOp::Read, path))?;
    read_prefix(file, path, len, use_mmap)
}

/// The first `len` bytes of the file, mapped or read.
///
/// # Errors
/// [`Error::Io`] if they cannot be mapped or read.
pub(crate) fn read_prefix(file: &dyn File, path: &Path, len: u64, use_mmap: bool) -> Result<Bytes> {
    if use_mmap {
        return file.map_readonly(len).map_err(io_err(IoOp::Map, path));
    }
    read_at(file, path, 0, len)
}

/// `len` bytes at `offset`, read into a fresh buffer.
///
/// # Errors
/// [`Error::Io`] if they cannot be read (a file shorter than asked included).
pub(crate) fn read_at(file: &dyn File, path: &Path, offset: u64, len: u64) -> Result<Bytes> {
    let len = usize::try_from(len).map_err(|_| Error::Io {
        op: IoOp::Read,
        path: path.to_path_buf(),
        source: io::ErrorKind::InvalidInput.into(),
    })?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)
        .map_err(io_err(IoOp::Read, path))?;
    Ok(Bytes::from(buf))
}

//! One segment file: its name, header, creation ahead of need, and the frames inside it.
//!
//! A segment's life: `prepare` creates it under its final name, zero-filled to the target size
//! and synced (so later writes into it change no metadata); `activate` writes its header and
//! checkpoint and syncs them; frames are appended; a `Seal` frame naming the successor ends it.
//! A header that is all zeros marks a prepared segment that was never used.

mod header;
mod name;
mod scan;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

pub(crate) use header::HEADER_LEN;
pub use header::Header;
pub(crate) use name::{FileName, parse as parse_name, segment_name, temp_name};
pub(crate) use scan::{Decoded, Frames, Stop, find_proof, last_nonzero, torn_plausible};

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

/// Creates segment `seq` in `dir`, zero-filled to `size` bytes, and makes it and its name
/// durable. Runs off the hot path, ahead of need.
///
/// The file is built under a temporary name and gets its segment name only once its zeros are
/// synced. So a segment file whose bytes are all zeros is a finished preparation, and recovery
/// may keep it for the next rotation instead of zero-filling another.
///
/// Cost: one create, `size` bytes of zeros written, one fdatasync, one rename, one directory
/// fsync.
///
/// # Errors
/// As [`create_atomic`]: a half-made file is left under its temporary name for recovery, which
/// removes it, and a name whose directory sync failed is removed again, so that no reopen
/// keeps a segment whose name may never reach the disk.
pub(crate) fn prepare(
    fs: &dyn Fs,
    dir: &Path,
    seq: u64,
    size: u64,
) -> Result<(PathBuf, Arc<dyn File>)> {
    create_atomic(fs, dir, seq, size, &[])
}

/// Is `buf`, the whole of a segment file, a preparation that finished and was never
/// used: `size` bytes (the segment size the log runs with), all zeros?
///
/// [`prepare`] names a file only after its zeros are synced, and its first use writes a
/// header, so such a file is proven fully zeroed and durable. A file that ever had its header
/// written, even torn, or was extended for an oversized frame, fails the test.
///
/// Cost: one pass over `size` bytes, a block at a time.
pub(crate) fn is_unused_preparation(buf: &[u8], size: u64) -> bool {
    buf.len() as u64 == size && crate::record::is_zero(buf)
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
    fs.rename(&temp, &path)
        .map_err(io_err(IoOp::Rename, &temp))?;
    if let Err(source) = fs.sync_dir(dir) {
        // NB: if the removal fails too, the error below still reaches the caller; nothing
        // better is left to try.
        let _ = fs.remove_file(&path);
        return Err(io_err(IoOp::SyncDir, dir)(source));
    }
    Ok((path, file))
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

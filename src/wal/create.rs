//! Creating a log: the directory is built whole under a temporary name beside its final one
//! (lock file and first segment, synced), renamed into place and its parent synced, so a
//! crash leaves a complete log or none.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoOp, Result};
use crate::fs::{Fs, LockGuard};
use crate::record::{self, Checkpoint, Payloads, Record};
use crate::segment::{self, Header, io_err};
use crate::wal::Options;

/// Name of the lock file inside the log directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

/// Takes the lock file at `path`.
///
/// # Errors
/// [`Error::Locked`] if another handle holds it, [`Error::Io`] if it cannot be taken.
pub(crate) fn lock(fs: &dyn Fs, path: &Path) -> Result<Box<dyn LockGuard>> {
    fs.lock(path).map_err(|source| match source.kind() {
        io::ErrorKind::WouldBlock => Error::Locked {
            path: path.to_path_buf(),
        },
        _ => Error::Io {
            op: IoOp::Lock,
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Makes `dir` exist. A missing one is created with a log in it: built in `.NAME.tmp` beside
/// it, renamed into place, the parent synced. Missing ancestors are created first, each name
/// synced. Returns the lock on the new log's lock file, held since before it was built (taking
/// it again after the rename could fail while a child process forked meanwhile still holds
/// the descriptor); `None` if `dir` existed.
///
/// # Errors
/// [`Error::InvalidCall`] if `dir` has no file name (`/`, `..`), [`Error::Locked`] if another
/// handle is creating the same log, [`Error::Io`] if a file call fails. After a failed parent
/// sync the directory is renamed back (best effort), so that a reopen builds a new one and
/// syncs its name rather than building on a name the disk may never get.
pub(crate) fn ensure_dir(
    fs: &dyn Fs,
    dir: &Path,
    options: &Options,
) -> Result<Option<Box<dyn LockGuard>>> {
    if exists(fs, dir)? {
        return Ok(None);
    }
    let unnamed = Error::InvalidCall("the log directory needs a name");
    let (Some(name), Some(parent)) = (dir.file_name(), parent_of(dir)) else {
        return Err(unnamed);
    };
    create_dirs(fs, &parent)?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(".tmp");
    let temp = dir.with_file_name(temp_name);
    remove_leftover(fs, &temp)?;
    fs.create_dir_all(&temp)
        .map_err(io_err(IoOp::CreateDir, &temp))?;
    let guard = lock(fs, &temp.join(LOCK_FILE))?;
    first_segment(fs, &temp, options)?;
    if let Err(source) = fs.rename(&temp, dir) {
        if !exists(fs, dir)? {
            return Err(io_err(IoOp::Rename, &temp)(source));
        }
        // Another process created the log meanwhile: use it, and leave no temp dir behind
        // (best effort: the next creation removes one anyway).
        drop(guard);
        let _ = remove_leftover(fs, &temp);
        return Ok(None);
    }
    if let Err(e) = segment::sync_dir(fs, &parent) {
        // NB: if this fails too, the error below still reaches the caller.
        let _ = fs.rename(dir, &temp);
        return Err(e);
    }
    Ok(Some(guard))
}

/// Creates the first segment of a new log in `dir`: header and an empty checkpoint, renamed
/// into place only once durable.
///
/// # Errors
/// [`Error::Io`] if a file call fails.
pub(crate) fn first_segment(fs: &dyn Fs, dir: &Path, options: &Options) -> Result<()> {
    let header = Header {
        seq: 1,
        salt: segment::new_salt(),
        first_index: 1,
        recycled: false,
    };
    let mut bytes = header.encode().to_vec();
    let checkpoint = Record::Checkpoint(Checkpoint::default());
    record::encode(&mut bytes, header.salt, 1, 0, &checkpoint, Payloads::Copied)
        .map_err(|_| Error::InvalidCall("an empty checkpoint always fits"))?;
    let sync_dir = |d: &Path| segment::sync_dir(fs, d);
    segment::create_atomic(fs, &sync_dir, dir, header.seq, options.segment_size, &bytes)?;
    Ok(())
}

/// Removes the temporary directory `temp` a crashed or failed creation left, with what is in
/// it. A fresh one is built instead of reusing it: its name may be one a failed sync of the
/// parent forgot, and renaming it would not make it durable.
///
/// # Errors
/// [`Error::Locked`] if another handle is creating the log in it, [`Error::Io`] if a file call
/// fails.
fn remove_leftover(fs: &dyn Fs, temp: &Path) -> Result<()> {
    if !exists(fs, temp)? {
        return Ok(());
    }
    let guard = lock(fs, &temp.join(LOCK_FILE))?;
    for name in fs.list_dir(temp).map_err(io_err(IoOp::List, temp))? {
        let path = temp.join(name);
        fs.remove_file(&path).map_err(io_err(IoOp::Remove, &path))?;
    }
    drop(guard);
    fs.remove_dir(temp).map_err(io_err(IoOp::Remove, temp))
}

/// Creates `dir` and its missing ancestors, syncing the parent of each one created.
fn create_dirs(fs: &dyn Fs, dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = dir.to_path_buf();
    while !exists(fs, &at)? {
        let parent = parent_of(&at).filter(|parent| *parent != at);
        missing.push(at);
        match parent {
            Some(parent) => at = parent,
            None => break,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs.create_dir_all(dir)
        .map_err(io_err(IoOp::CreateDir, dir))?;
    for parent in missing
        .iter()
        .rev()
        .filter_map(|created| parent_of(created))
    {
        segment::sync_dir(fs, &parent)?;
    }
    Ok(())
}

/// The directory `path` is named in (`.` for a bare name); `None` for a root.
fn parent_of(path: &Path) -> Option<PathBuf> {
    let parent = path.parent()?;
    Some(if parent.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        parent.to_path_buf()
    })
}

/// True if directory `dir` exists.
fn exists(fs: &dyn Fs, dir: &Path) -> Result<bool> {
    match fs.list_dir(dir) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(IoOp::List, dir)(e)),
    }
}

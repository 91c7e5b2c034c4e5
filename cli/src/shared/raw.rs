//! The disk's own limit, measured through the same [`Fs`] seam the log uses. Every number
//! `raftwal bench` prints and every criterion `wal/...` id stands next to one of these.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use raftwal::fs::{File, Fs, OpenMode, StdFs};

/// A pre-zeroed file written front to back in place, wrapping to the start at its end. Like the
/// log's pre-zeroed active segment, every write lands in blocks that are already allocated and
/// written, so `fdatasync` flushes data and no metadata.
#[derive(Debug)]
pub struct RawFile {
    path: PathBuf,
    file: Arc<dyn File>,
    /// Length of the file in bytes, fixed at creation.
    len: u64,
    /// Offset of the next write. Invariant: `pos <= len`.
    pos: u64,
}

impl RawFile {
    /// Creates `path` (which must not exist) as `len` bytes of written zeros, synced together with
    /// its directory entry.
    ///
    /// Cost: `len` bytes of writes, one `fdatasync`, one directory `fsync`.
    ///
    /// # Errors
    /// Any I/O error from the file system; `AlreadyExists` if `path` exists.
    pub fn create(path: &Path, len: u64) -> io::Result<Self> {
        let file = StdFs.open(path, OpenMode::CreateNew)?;
        file.allocate_zeroed(len)?;
        file.sync_data()?;
        if let Some(dir) = path.parent() {
            StdFs.sync_dir(dir)?;
        }
        Ok(Self {
            path: path.to_owned(),
            file,
            len,
            pos: 0,
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `buf` with one positional write at the current offset, first wrapping to offset 0
    /// if `buf` would run past the end. Does not sync.
    ///
    /// # Errors
    /// `InvalidInput` if `buf` is longer than the file; any I/O error from the write.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<()> {
        let n = buf.len() as u64;
        if n > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write larger than the raw file",
            ));
        }
        if self.pos + n > self.len {
            self.pos = 0;
        }
        self.file.write_all_at(buf, self.pos)?;
        self.pos += n;
        Ok(())
    }

    /// [`RawFile::write`] then `fdatasync`: the raw cost of one durable batch.
    ///
    /// # Errors
    /// As [`RawFile::write`], and any error from the sync.
    pub fn write_sync(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write(buf)?;
        self.file.sync_data()
    }
}

/// Reads the first `len` bytes of `path` front to back, `buf.len()` bytes per read call, and
/// returns the number of bytes read (`len`): the raw limit of reading a log back.
///
/// # Errors
/// Any I/O error; `UnexpectedEof` if the file is shorter than `len`; `InvalidInput` for an empty
/// `buf`.
pub fn read_sequential(path: &Path, len: u64, buf: &mut [u8]) -> io::Result<u64> {
    if buf.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty read buffer",
        ));
    }
    let file = StdFs.open(path, OpenMode::ReadOnly)?;
    let mut offset = 0;
    while offset < len {
        // NB: n <= buf.len(), so the slice is in bounds.
        let n = (len - offset).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], offset)?;
        offset += n as u64;
    }
    Ok(offset)
}

//! [`Fs`] over the real disk: the only file allowed to call `std::fs`, and, for memory maps and
//! `pwritev`, the only `unsafe` in the crate.
#![allow(
    clippy::disallowed_methods,
    reason = "this is the one place std::fs is allowed"
)]

use std::fs::{self, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::{File, Fs, LockGuard, OpenMode};

/// The real file system (POSIX; `fdatasync` for data, `fsync` on a directory for names).
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile(fs::File);

#[derive(Debug)]
struct StdLock(#[expect(dead_code, reason = "held only to keep the lock until drop")] fs::File);

impl LockGuard for StdLock {}

/// Most slices one `pwritev` takes (Linux's `UIO_MAXIOV`); a longer gather takes several calls.
const IOV_MAX: usize = 1024;

/// Zero-filling writes are issued in chunks of this size.
const ZERO_CHUNK: usize = 1 << 20;

impl Fs for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>> {
        let mut options = OpenOptions::new();
        options.read(true).mode(0o644);
        match mode {
            OpenMode::CreateNew => options.write(true).create_new(true),
            OpenMode::ReadWrite => options.write(true),
            OpenMode::ReadOnly => &mut options,
        };
        Ok(Arc::new(StdFile(options.open(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        fs::File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(StdLock(file))),
            Err(fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl File for StdFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    #[allow(
        unsafe_code,
        reason = "std has no positional gathered write; invariant below"
    )]
    fn write_all_gathered_at(&self, parts: &[&[u8]], offset: u64) -> io::Result<()> {
        // NB: one part takes a plain `pwrite`: with a one-slice `pwritev`, 256 x 1 KiB batches
        // took 1-3% longer (3 A/B runs of a log-only loop).
        if let [part] = parts {
            return self.write_all_at(part, offset);
        }
        let mut slices: Vec<IoSlice<'_>> = parts.iter().map(|part| IoSlice::new(part)).collect();
        let mut left = slices.as_mut_slice();
        let mut offset = offset;
        // Drops leading empty parts, so that a zero-byte write below means no progress.
        IoSlice::advance_slices(&mut left, 0);
        while !left.is_empty() {
            let count = left.len().min(IOV_MAX);
            let at = libc::off_t::try_from(offset)
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            // SAFETY: std guarantees `IoSlice` the layout of `iovec` on Unix; the pointer and
            // count name `count` slices that live, borrowed, for the whole call; the
            // descriptor is open for as long as `self`.
            let written = unsafe {
                libc::pwritev(
                    self.0.as_raw_fd(),
                    left.as_ptr().cast(),
                    count as libc::c_int,
                    at,
                )
            };
            match usize::try_from(written) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    IoSlice::advance_slices(&mut left, n);
                    offset += n as u64;
                }
                Err(_) => {
                    let error = io::Error::last_os_error();
                    if error.kind() != io::ErrorKind::Interrupted {
                        return Err(error);
                    }
                }
            }
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate_zeroed(&self, len: u64) -> io::Result<()> {
        // NB: fallocate alone leaves "unwritten" extents on ext4/XFS; the first write into one
        // changes metadata and makes fdatasync journal. Writing real zeros avoids that.
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut offset = 0;
        while offset < len {
            let n = (len - offset).min(ZERO_CHUNK as u64);
            self.0.write_all_at(&zeros[..n as usize], offset)?;
            offset += n;
        }
        Ok(())
    }

    #[allow(
        unsafe_code,
        reason = "memory maps are inherently unsafe; invariant below"
    )]
    fn map_readonly(&self, len: u64) -> io::Result<Bytes> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the map is read-only, and callers map only bytes raftwal does not change
        // while the map lives (sealed segments; the active segment's frames below its write
        // position, which only grows; replay drops a file's map before it zeroes a torn tail)
        // and removes files only by unlinking (an unlinked file stays mapped intact). The
        // lock file keeps other raftwal processes out of the directory; a foreign process
        // truncating the file would violate this, as with every mmap-based reader.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(&self.0)? };
        Ok(Bytes::from_owner(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gathered write puts exactly the concatenation of its parts at its offset, across
    /// empty parts and across more parts than one `pwritev` takes.
    #[test]
    fn a_gathered_write_is_the_write_of_its_parts_joined() {
        let dir = tempfile::tempdir().unwrap();
        let file = StdFs
            .open(&dir.path().join("f"), OpenMode::CreateNew)
            .unwrap();
        let owned: Vec<Vec<u8>> = (0..2 * IOV_MAX + 100)
            .map(|k| vec![k as u8; k % 7])
            .collect();
        let parts: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
        let joined = parts.concat();
        file.write_all_gathered_at(&parts, 100).unwrap();
        assert_eq!(file.len().unwrap(), 100 + joined.len() as u64);
        let mut back = vec![0; joined.len()];
        file.read_exact_at(&mut back, 100).unwrap();
        assert_eq!(back, joined);
    }
}

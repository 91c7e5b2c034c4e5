//! The single seam for every file-system call. [`StdFs`] runs on the real disk; `SimFs`
//! (feature `test-util`) keeps everything in memory and can crash or fail on demand.
//!
//! Errors here are plain [`io::Error`]s; the layers above add the operation and path.

#[cfg(feature = "test-util")]
pub mod sim;
mod std_fs;

use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

#[cfg(feature = "test-util")]
pub use sim::SimFs;
pub use std_fs::StdFs;

/// How [`Fs::open`] treats an existing or missing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read and write; the file must not exist yet (`O_CREAT | O_EXCL`).
    CreateNew,
    /// Read and write; the file must exist.
    ReadWrite,
    /// Read only; the file must exist.
    ReadOnly,
}

/// A file-system: the only way raftwal touches the disk.
///
/// Implementations must be usable from several threads at once. Nothing is durable until the
/// matching sync returns: file data by [`File::sync_data`], a file's existence and name by
/// [`Fs::sync_dir`] of its directory.
pub trait Fs: Debug + Send + Sync + 'static {
    /// Creates `dir` and its missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Opens or creates a file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes the empty directory `dir`.
    fn remove_dir(&self, dir: &Path) -> io::Result<()>;
    /// The names (not paths) of the entries of `dir`, in no particular order.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Makes the creations, renames and removals of entries in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (created if missing) for as long as the returned guard
    /// lives. Fails with [`io::ErrorKind::WouldBlock`] if another owner holds it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>>;
}

/// An open file. All I/O is positional, so one handle serves concurrent readers and a writer.
#[expect(
    clippy::len_without_is_empty,
    reason = "a file's length is an I/O call; emptiness is never asked"
)]
pub trait File: Debug + Send + Sync {
    /// Reads exactly `buf.len()` bytes at `offset`; [`io::ErrorKind::UnexpectedEof`] if the file
    /// is shorter.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at `offset`, extending the file if needed.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Writes `parts`, one after another, at `offset`: the same bytes as [`File::write_all_at`]
    /// of their concatenation, without making it. The default makes it.
    fn write_all_gathered_at(&self, parts: &[&[u8]], offset: u64) -> io::Result<()> {
        self.write_all_at(&parts.concat(), offset)
    }
    /// Makes the file's data (and the metadata needed to read it back) durable: `fdatasync`.
    fn sync_data(&self) -> io::Result<()>;
    /// The current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Sets the length: truncates, or extends with zeros that need not be allocated.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file `len` bytes long with every block allocated and written as zeros, so that
    /// later writes inside `[0, len)` change no metadata and `sync_data` flushes data only.
    /// Does not sync.
    fn allocate_zeroed(&self, len: u64) -> io::Result<()>;
    /// The first `len` bytes of the file as one immutable buffer, shared by every slice taken
    /// of it. On the real disk this is a read-only memory map; the caller promises those bytes
    /// are never written again while any slice lives (sealed segments only).
    fn map_readonly(&self, len: u64) -> io::Result<Bytes>;
}

/// Holds an [`Fs::lock`] until dropped.
pub trait LockGuard: Debug + Send + Sync {}

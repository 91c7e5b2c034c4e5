//! [`SimFs`]: an in-memory file system that keeps the page cache apart from the durable image,
//! so tests can cut the power at any operation and fail any call (research/reliability.md §3).
//!
//! The model, per file: `durable` bytes (what survives a power cut), `cache` bytes (what reads
//! see) and the list of changes made since the last successful sync. Per directory: durable and
//! visible name tables and the entry changes since the last directory sync. A successful
//! [`File::sync_data`] makes the file's cache durable; only [`Fs::sync_dir`] makes names
//! durable; nothing else orders two files. A failed sync makes an arbitrary part of the
//! changes durable, forgets the rest, and leaves the next sync to return `Ok` (Linux).
//! A directory's own name is an entry of its parent like a file's: created or renamed, it
//! survives a power cut only once the parent is synced. Directories outside the model (the
//! parents of the first one created) are durable.
//!
//! Everything is deterministic: one seed fixes every choice, and one mutex serialises every call
//! (a global operation number names each crash point).
//!
//! ```
//! use std::path::Path;
//! use raftwal::fs::{Fs, OpenMode, sim::{ImageSpec, SimFs}};
//!
//! let fs = SimFs::new(7);
//! fs.create_dir_all(Path::new("/log")).unwrap();
//! fs.sync_dir(Path::new("/")).unwrap();
//! let file = fs.open(Path::new("/log/a"), OpenMode::CreateNew).unwrap();
//! file.write_all_at(b"synced", 0).unwrap();
//! file.sync_data().unwrap();
//! fs.sync_dir(Path::new("/log")).unwrap();
//! file.write_all_at(b" and not", 6).unwrap();
//!
//! let after = fs.crash_image(&ImageSpec::NOTHING, 1);
//! assert_eq!(after.file_bytes(Path::new("/log/a")).unwrap(), b"synced");
//! ```

mod fault;
mod image;
mod rng;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

pub use fault::{Fault, FaultError, OpKind};
pub use image::{DirOrder, Fill, ImageSpec, Survival};
pub use rng::SimRng;

use super::{File, Fs, LockGuard, OpenMode};
use image::{DirOp, Pending, apply_dir_op, dir_after_crash, file_after_crash, resize_zeroed};

/// Largest file SimFs holds; a write beyond fails with `EFBIG` instead of exhausting memory.
pub const MAX_FILE_LEN: u64 = 1 << 30;

const EFBIG: i32 = 27;

/// An in-memory, crashable, fault-injecting [`Fs`]. Clones share one file system.
#[derive(Clone)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

/// Decides, before an operation runs, whether to record a crash point there. Gets the
/// operation's kind and its global number.
pub type CapturePolicy = Box<dyn FnMut(OpKind, u64) -> bool + Send>;

struct State {
    disk: Disk,
    /// Operations started so far (failed ones included); the next one gets this number.
    seq: u64,
    /// Operations started so far, per [`OpKind::slot`].
    counts: [u64; OpKind::ALL.len()],
    /// Armed faults, with the per-kind count at which each fires.
    faults: Vec<(u64, Fault)>,
    /// Files whose lock is held by a live guard: a lock belongs to the file, not its name
    /// (flock), so it follows a rename.
    locks: BTreeSet<u64>,
    capture: Option<CapturePolicy>,
    captures: Vec<CrashPoint>,
    /// Drives failed syncs; seeded at creation.
    rng: SimRng,
}

/// Everything a crash image is made from: inodes and directories.
#[derive(Clone, Debug, Default)]
struct Disk {
    inodes: BTreeMap<u64, Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    /// Removed directories, by number: a power cut may undo the removal.
    detached: BTreeMap<u64, Dir>,
    /// The next inode number; never reused.
    next_ino: u64,
}

#[derive(Clone, Debug, Default)]
struct Inode {
    /// What survives a power cut. Shared with crash points until either side changes.
    durable: Arc<Vec<u8>>,
    /// What reads see. Invariant: `durable` with every change in `pending` applied in order,
    /// except after a failed sync, when the cache still shows the bytes that sync lost.
    cache: Arc<Vec<u8>>,
    /// Changes since the last successful (or failed) sync.
    pending: Vec<Pending>,
}

#[derive(Clone, Debug, Default)]
struct Dir {
    /// The directory's number, its entry in the parent's name tables; drawn from the same
    /// counter as file inodes, so the two never collide.
    ino: u64,
    /// Names that survive a power cut.
    durable: BTreeMap<String, u64>,
    /// Names that lookups see. Invariant: `durable` with every change in `pending` applied,
    /// except after a failed directory sync (as for [`Inode::cache`]).
    visible: BTreeMap<String, u64>,
    /// Entry changes since the last directory sync.
    pending: Vec<DirOp>,
}

/// The state of a [`SimFs`] at one moment, from which crash images are built.
#[derive(Clone, Debug)]
pub struct CrashPoint {
    /// The global number of the operation that was about to run.
    pub seq: u64,
    /// Its kind; `None` for a point taken between operations ([`SimFs::crash_point`]).
    pub op: Option<OpKind>,
    disk: Disk,
}

impl CrashPoint {
    /// A fresh file system holding one legal post-crash state of this moment, fixed by `spec`
    /// and `seed`.
    pub fn image(&self, spec: &ImageSpec, seed: u64) -> SimFs {
        SimFs::from_disk(self.disk.crash_image(spec, seed), seed)
    }
}

impl Disk {
    fn crash_image(&self, spec: &ImageSpec, seed: u64) -> Disk {
        let mut rng = SimRng::new(seed);
        let every_dir = self.dirs.values().chain(self.detached.values());
        let after: BTreeMap<u64, BTreeMap<String, u64>> = every_dir
            .map(|dir| {
                let entries = dir_after_crash(&dir.durable, &dir.pending, spec, &mut rng);
                (dir.ino, entries)
            })
            .collect();
        // The image's directories are those reachable by surviving names from the roots.
        let mut reach: Vec<(PathBuf, u64)> = self
            .dirs
            .iter()
            .filter(|(path, _)| !self.is_modelled_child(path))
            .map(|(path, dir)| (path.clone(), dir.ino))
            .collect();
        let mut dirs = BTreeMap::new();
        let mut live = BTreeSet::new();
        while let Some((path, ino)) = reach.pop() {
            let entries = after.get(&ino).cloned().unwrap_or_default();
            for (name, &child) in &entries {
                if after.contains_key(&child) {
                    reach.push((path.join(name), child));
                }
            }
            live.extend(entries.values().copied());
            let dir = Dir {
                ino,
                durable: entries.clone(),
                visible: entries,
                pending: Vec::new(),
            };
            dirs.insert(path, dir);
        }
        let caches: Vec<&[u8]> = self.inodes.values().map(|i| &i.cache[..]).collect();
        let mut inodes = BTreeMap::new();
        for (&ino, inode) in self.inodes.iter().filter(|(ino, _)| live.contains(ino)) {
            let stale = caches
                .get(rng.below(caches.len() as u64) as usize)
                .copied()
                .unwrap_or_default();
            let bytes = file_after_crash(&inode.durable, &inode.pending, spec, stale, &mut rng);
            let bytes = Arc::new(bytes);
            let inode = Inode {
                durable: Arc::clone(&bytes),
                cache: bytes,
                pending: Vec::new(),
            };
            inodes.insert(ino, inode);
        }
        Disk {
            inodes,
            dirs,
            detached: BTreeMap::new(),
            next_ino: self.next_ino,
        }
    }
}

impl SimFs {
    /// An empty file system whose failed syncs are driven by `seed`.
    pub fn new(seed: u64) -> Self {
        Self::from_disk(Disk::default(), seed)
    }

    fn from_disk(disk: Disk, seed: u64) -> Self {
        let state = State {
            disk,
            seq: 0,
            counts: [0; OpKind::ALL.len()],
            faults: Vec::new(),
            locks: BTreeSet::new(),
            capture: None,
            captures: Vec::new(),
            rng: SimRng::new(seed ^ 0x5eed_f00d),
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// A fresh file system holding one legal state after a power cut now, fixed by `spec` and
    /// `seed`. This file system is unchanged.
    pub fn crash_image(&self, spec: &ImageSpec, seed: u64) -> SimFs {
        self.crash_point().image(spec, seed)
    }

    /// This moment as a [`CrashPoint`], numbered by the next operation.
    pub fn crash_point(&self) -> CrashPoint {
        let state = self.lock_state();
        CrashPoint {
            seq: state.seq,
            op: None,
            disk: state.disk.clone(),
        }
    }

    /// From now on, before every operation for which `policy` says yes, records a
    /// [`CrashPoint`] (collected by [`SimFs::take_crash_points`]). Replaces an earlier policy.
    pub fn capture(&self, policy: CapturePolicy) {
        self.lock_state().capture = Some(policy);
    }

    /// Stops recording crash points.
    pub fn stop_capture(&self) {
        self.lock_state().capture = None;
    }

    /// The crash points recorded so far, oldest first; the list starts again empty.
    pub fn take_crash_points(&self) -> Vec<CrashPoint> {
        std::mem::take(&mut self.lock_state().captures)
    }

    /// Arms `fault`.
    pub fn inject(&self, fault: Fault) {
        let mut state = self.lock_state();
        let at = state.counts[fault.op.slot()] + fault.nth;
        state.faults.push((at, fault));
    }

    /// Disarms every fault (the disk was replaced or space freed).
    pub fn clear_faults(&self) {
        self.lock_state().faults.clear();
    }

    /// Operations started so far; the number the next one gets.
    pub fn op_count(&self) -> u64 {
        self.lock_state().seq
    }

    /// Operations of kind `op` started so far.
    pub fn count(&self, op: OpKind) -> u64 {
        self.lock_state().counts[op.slot()]
    }

    /// The bytes reads of `path` see now (not counted as an operation).
    ///
    /// # Errors
    /// `NotFound` if no such file is visible.
    pub fn file_bytes(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.lock_state();
        let ino = state.disk.lookup(path)?;
        Ok(state.disk.inode(ino)?.cache.to_vec())
    }

    /// Media damage: `f` edits the durable bytes of `path`, and the cache follows, as if the
    /// device returned different bytes than were written. Pending changes are kept on top.
    ///
    /// # Errors
    /// `NotFound` if no such file is visible.
    pub fn damage(&self, path: &Path, f: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let mut state = self.lock_state();
        let ino = state.disk.lookup(path)?;
        let inode = state.disk.inode_mut(ino)?;
        f(Arc::make_mut(&mut inode.durable));
        let mut cache = inode.durable.to_vec();
        for change in &inode.pending {
            apply_change(&mut cache, change);
        }
        inode.cache = Arc::new(cache);
        Ok(())
    }

    /// Counts an operation, records a crash point if the policy asks, and returns the error of
    /// the fault that fires on it, if any.
    fn begin(state: &mut State, op: OpKind) -> Option<FaultError> {
        let seq = state.seq;
        state.seq += 1;
        if let Some(policy) = state.capture.as_mut()
            && policy(op, seq)
        {
            let point = CrashPoint {
                seq,
                op: Some(op),
                disk: state.disk.clone(),
            };
            state.captures.push(point);
        }
        let n = state.counts[op.slot()];
        state.counts[op.slot()] += 1;
        let fired = state
            .faults
            .iter()
            .find(|(at, f)| f.op == op && (n == *at || (f.sticky && n > *at)))
            .map(|(_, f)| f.error);
        state
            .faults
            .retain(|(at, f)| f.op != op || f.sticky || *at > n);
        fired
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not hide the file system from the checks that follow.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn not_found() -> io::Error {
    io::ErrorKind::NotFound.into()
}

fn split(path: &Path) -> io::Result<(&Path, String)> {
    let parent = path.parent().ok_or_else(not_found)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(not_found)?;
    Ok((parent, name.to_owned()))
}

fn apply_change(bytes: &mut Vec<u8>, change: &Pending) {
    match change {
        Pending::SetLen(len) => resize_zeroed(bytes, *len as usize),
        Pending::Write { offset, data } => {
            let offset = *offset as usize;
            let end = offset + data.len();
            if bytes.len() < end {
                resize_zeroed(bytes, end);
            }
            bytes[offset..end].copy_from_slice(data);
        }
    }
}

impl Disk {
    /// True if `path`'s parent is a directory of the model, so `path`'s name lives there.
    fn is_modelled_child(&self, path: &Path) -> bool {
        path.parent()
            .is_some_and(|parent| self.dirs.contains_key(parent))
    }

    fn dir(&self, path: &Path) -> io::Result<&Dir> {
        self.dirs.get(path).ok_or_else(not_found)
    }

    fn dir_mut(&mut self, path: &Path) -> io::Result<&mut Dir> {
        self.dirs.get_mut(path).ok_or_else(not_found)
    }

    /// Moves directory `from` (which holds no directory) to `to`, replacing an empty one
    /// there; the caller renames the entry in the parent.
    fn move_dir(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let holds_dir = |path: &Path| self.dirs.keys().any(|d| d.parent() == Some(path));
        if holds_dir(from) || holds_dir(to) {
            return Err(io::ErrorKind::Unsupported.into());
        }
        if self.dirs.get(to).is_some_and(|d| !d.visible.is_empty()) {
            return Err(io::ErrorKind::DirectoryNotEmpty.into());
        }
        if self.lookup(to).is_ok() && !self.dirs.contains_key(to) {
            return Err(io::ErrorKind::NotADirectory.into());
        }
        let moved = self.dirs.remove(from).ok_or_else(not_found)?;
        // NB: the empty directory replaced is kept, as a removed one is: a power cut may undo
        // the rename, and the parent's entry then names it again.
        if let Some(replaced) = self.dirs.insert(to.to_path_buf(), moved) {
            self.detached.insert(replaced.ino, replaced);
        }
        Ok(())
    }

    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (parent, name) = split(path)?;
        self.dir(parent)?
            .visible
            .get(&name)
            .copied()
            .ok_or_else(not_found)
    }

    fn inode(&self, ino: u64) -> io::Result<&Inode> {
        self.inodes.get(&ino).ok_or_else(not_found)
    }

    fn inode_mut(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes.get_mut(&ino).ok_or_else(not_found)
    }
}

impl Dir {
    fn change(&mut self, op: DirOp) {
        apply_dir_op(&mut self.visible, &op);
        self.pending.push(op);
    }
}

impl Inode {
    fn change(&mut self, change: Pending) {
        apply_change(Arc::make_mut(&mut self.cache), &change);
        self.pending.push(change);
    }
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock_state();
        f.debug_struct("SimFs")
            .field("ops", &state.seq)
            .field("files", &state.disk.inodes.len())
            .finish_non_exhaustive()
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock_state();
        if let Some(e) = Self::begin(&mut state, OpKind::CreateDir) {
            return Err(e.to_io());
        }
        let mut missing: Vec<&Path> = dir
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .take_while(|a| !state.disk.dirs.contains_key(*a))
            .collect();
        let disk = &mut state.disk;
        while let Some(path) = missing.pop() {
            let ino = disk.next_ino;
            disk.next_ino += 1;
            if disk.is_modelled_child(path) {
                let (parent, name) = split(path)?;
                disk.dir_mut(parent)?.change(DirOp::Link { name, ino });
            }
            let dir = Dir {
                ino,
                ..Dir::default()
            };
            disk.dirs.insert(path.to_path_buf(), dir);
        }
        Ok(())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>> {
        let mut state = self.lock_state();
        let kind = match mode {
            OpenMode::CreateNew => OpKind::Create,
            OpenMode::ReadWrite | OpenMode::ReadOnly => OpKind::Open,
        };
        if let Some(e) = Self::begin(&mut state, kind) {
            return Err(e.to_io());
        }
        let ino = match mode {
            OpenMode::CreateNew => {
                let (parent, name) = split(path)?;
                let disk = &mut state.disk;
                let ino = disk.next_ino;
                let dir = disk.dir_mut(parent)?;
                if dir.visible.contains_key(&name) {
                    return Err(io::ErrorKind::AlreadyExists.into());
                }
                dir.change(DirOp::Link { name, ino });
                disk.inodes.insert(ino, Inode::default());
                disk.next_ino += 1;
                ino
            }
            OpenMode::ReadWrite | OpenMode::ReadOnly => state.disk.lookup(path)?,
        };
        Ok(Arc::new(SimFile {
            state: Arc::clone(&self.state),
            ino,
            writable: mode != OpenMode::ReadOnly,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock_state();
        if let Some(e) = Self::begin(&mut state, OpKind::Rename) {
            return Err(e.to_io());
        }
        let (from_path, to_path) = (from, to);
        let (from_dir, from) = split(from_path)?;
        let (to_dir, to) = split(to_path)?;
        if from_dir != to_dir {
            // NB: a rename across directories cannot be atomic in this model (two pending
            // lists); raftwal renames within one directory only.
            return Err(io::ErrorKind::Unsupported.into());
        }
        let disk = &mut state.disk;
        if disk.dirs.contains_key(from_path) {
            disk.move_dir(from_path, to_path)?;
        }
        let dir = disk.dir_mut(from_dir)?;
        if !dir.visible.contains_key(&from) {
            return Err(not_found());
        }
        dir.change(DirOp::Rename { from, to });
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock_state();
        if let Some(e) = Self::begin(&mut state, OpKind::Remove) {
            return Err(e.to_io());
        }
        if state.disk.dirs.contains_key(path) {
            return Err(io::ErrorKind::IsADirectory.into());
        }
        let (parent, name) = split(path)?;
        let dir = state.disk.dir_mut(parent)?;
        if !dir.visible.contains_key(&name) {
            return Err(not_found());
        }
        dir.change(DirOp::Unlink { name });
        Ok(())
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock_state();
        if let Some(e) = Self::begin(&mut state, OpKind::Remove) {
            return Err(e.to_io());
        }
        let disk = &mut state.disk;
        if !disk.dir(dir)?.visible.is_empty() {
            return Err(io::ErrorKind::DirectoryNotEmpty.into());
        }
        if disk.is_modelled_child(dir) {
            let (parent, name) = split(dir)?;
            disk.dir_mut(parent)?.change(DirOp::Unlink { name });
        }
        let removed = disk.dirs.remove(dir).ok_or_else(not_found)?;
        disk.detached.insert(removed.ino, removed);
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut state = self.lock_state();
        if let Some(e) = Self::begin(&mut state, OpKind::List) {
            return Err(e.to_io());
        }
        Ok(state.disk.dir(dir)?.visible.keys().cloned().collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock_state();
        let fault = Self::begin(&mut state, OpKind::SyncDir);
        let State { disk, rng, .. } = &mut *state;
        let dir = disk.dir_mut(dir)?;
        let pending = std::mem::take(&mut dir.pending);
        // fsyncgate: a failed sync makes some changes durable and forgets the rest, so the
        // next sync has nothing left to report.
        let spec = fault.map_or(ImageSpec::EVERYTHING, |_| FAILED_SYNC);
        dir.durable = dir_after_crash(&dir.durable, &pending, &spec, rng);
        fault.map_or(Ok(()), |e| Err(e.to_io()))
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        let mut state = self.lock_state();
        if let Some(e) = Self::begin(&mut state, OpKind::Lock) {
            return Err(e.to_io());
        }
        let (parent, name) = split(path)?;
        let disk = &mut state.disk;
        let next_ino = disk.next_ino;
        let dir = disk.dir_mut(parent)?;
        let ino = match dir.visible.get(&name) {
            Some(&ino) => ino,
            None => {
                // Like StdFs, the lock file is created (and, unsynced, may vanish in a crash).
                let ino = next_ino;
                dir.change(DirOp::Link { name, ino });
                disk.inodes.insert(ino, Inode::default());
                disk.next_ino += 1;
                ino
            }
        };
        if !state.locks.insert(ino) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(SimLock {
            state: Arc::clone(&self.state),
            ino,
        }))
    }
}

/// What a failed sync makes durable: any subset of the changes.
const FAILED_SYNC: ImageSpec = ImageSpec {
    survival: Survival::Subset,
    dir_order: DirOrder::AnySubset,
    ..ImageSpec::NOTHING
};

/// An open [`SimFs`] file: an inode number, valid even after the name is removed.
struct SimFile {
    state: Arc<Mutex<State>>,
    ino: u64,
    /// False for [`OpenMode::ReadOnly`] handles, whose writes fail.
    writable: bool,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile").field("ino", &self.ino).finish()
    }
}

impl SimFile {
    /// Counts `op`, fails it if a fault fires, then runs `f` on this file's inode.
    fn with<T>(
        &self,
        op: OpKind,
        f: impl FnOnce(&mut Inode, Option<FaultError>, &mut SimRng) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut state = lock(&self.state);
        let fault = SimFs::begin(&mut state, op);
        if matches!(op, OpKind::Write | OpKind::SetLen | OpKind::Allocate) && !self.writable {
            return Err(io::ErrorKind::PermissionDenied.into());
        }
        let State { disk, rng, .. } = &mut *state;
        let inode = disk.inode_mut(self.ino)?;
        f(inode, fault, rng)
    }
}

/// A short write (ENOSPC) ends at a multiple of this many bytes of the file: a sector.
const SHORT_WRITE_UNIT: u64 = 512;

fn check_len(end: u64) -> io::Result<()> {
    if end > MAX_FILE_LEN {
        return Err(io::Error::from_raw_os_error(EFBIG));
    }
    Ok(())
}

impl File for SimFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with(OpKind::Read, |inode, fault, _| {
            if let Some(e) = fault {
                return Err(e.to_io());
            }
            let bytes = usize::try_from(offset)
                .ok()
                .and_then(|start| inode.cache.get(start..)?.get(..buf.len()))
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            buf.copy_from_slice(bytes);
            Ok(())
        })
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.with(OpKind::Write, |inode, fault, _| {
            check_len(offset.saturating_add(buf.len() as u64))?;
            let written = match fault {
                None => buf,
                // A full file system takes part of the buffer before it refuses the rest, whole
                // pages at a time: Linux copies a write page by page and stops at the first
                // page it cannot allocate. Here whole sectors, which tears no finer: at most
                // half the buffer, ending at a 512-byte boundary of the file (maybe nothing).
                Some(FaultError::NoSpace) => {
                    let half_end = offset.saturating_add(buf.len() as u64 / 2);
                    let cut =
                        (half_end / SHORT_WRITE_UNIT * SHORT_WRITE_UNIT).saturating_sub(offset);
                    buf.get(..usize::try_from(cut).unwrap_or(0))
                        .unwrap_or_default()
                }
                Some(FaultError::Eio) => &[],
            };
            if !written.is_empty() {
                let data = Bytes::copy_from_slice(written);
                inode.change(Pending::Write { offset, data });
            }
            fault.map_or(Ok(()), |e| Err(e.to_io()))
        })
    }

    fn sync_data(&self) -> io::Result<()> {
        self.with(OpKind::SyncData, |inode, fault, rng| {
            let pending = std::mem::take(&mut inode.pending);
            // NB: built from `durable`, not copied from `cache`: after a failed sync the cache
            // still shows bytes that were lost. The pages count as clean either way.
            let spec = fault.map_or(ImageSpec::EVERYTHING, |_| FAILED_SYNC);
            inode.durable = Arc::new(file_after_crash(&inode.durable, &pending, &spec, &[], rng));
            fault.map_or(Ok(()), |e| Err(e.to_io()))
        })
    }

    fn len(&self) -> io::Result<u64> {
        self.with(OpKind::Len, |inode, fault, _| match fault {
            Some(e) => Err(e.to_io()),
            None => Ok(inode.cache.len() as u64),
        })
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.with(OpKind::SetLen, |inode, fault, _| {
            if let Some(e) = fault {
                return Err(e.to_io());
            }
            check_len(len)?;
            inode.change(Pending::SetLen(len));
            Ok(())
        })
    }

    fn allocate_zeroed(&self, len: u64) -> io::Result<()> {
        self.with(OpKind::Allocate, |inode, fault, _| {
            if let Some(e) = fault {
                return Err(e.to_io());
            }
            check_len(len)?;
            // Mirrors StdFs, which writes zeros over the whole range `[0, len)`.
            let mut zeros = Vec::new();
            resize_zeroed(&mut zeros, len as usize);
            let data = Bytes::from(zeros);
            inode.change(Pending::Write { offset: 0, data });
            Ok(())
        })
    }

    fn map_readonly(&self, len: u64) -> io::Result<Bytes> {
        self.with(OpKind::Map, |inode, fault, _| {
            if let Some(e) = fault {
                return Err(e.to_io());
            }
            let bytes = usize::try_from(len)
                .ok()
                .and_then(|len| inode.cache.get(..len))
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            Ok(Bytes::copy_from_slice(bytes))
        })
    }
}

/// Holds a [`SimFs`] lock until dropped.
struct SimLock {
    state: Arc<Mutex<State>>,
    ino: u64,
}

impl fmt::Debug for SimLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimLock").field("ino", &self.ino).finish()
    }
}

impl LockGuard for SimLock {}

impl Drop for SimLock {
    fn drop(&mut self) {
        lock(&self.state).locks.remove(&self.ino);
    }
}

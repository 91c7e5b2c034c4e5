//! Which operations SimFs counts, and the errors it can inject into them.

use std::io;

/// The kinds of file-system operation SimFs counts and can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// [`Fs::create_dir_all`](crate::fs::Fs::create_dir_all).
    CreateDir,
    /// [`Fs::open`](crate::fs::Fs::open) with [`OpenMode::CreateNew`](crate::fs::OpenMode).
    Create,
    /// [`Fs::open`](crate::fs::Fs::open) of an existing file.
    Open,
    /// [`File::read_exact_at`](crate::fs::File::read_exact_at).
    Read,
    /// [`File::write_all_at`](crate::fs::File::write_all_at).
    Write,
    /// [`File::sync_data`](crate::fs::File::sync_data).
    SyncData,
    /// [`Fs::sync_dir`](crate::fs::Fs::sync_dir).
    SyncDir,
    /// [`File::set_len`](crate::fs::File::set_len).
    SetLen,
    /// [`File::allocate_zeroed`](crate::fs::File::allocate_zeroed).
    Allocate,
    /// [`File::len`](crate::fs::File::len).
    Len,
    /// [`File::map_readonly`](crate::fs::File::map_readonly).
    Map,
    /// [`Fs::rename`](crate::fs::Fs::rename).
    Rename,
    /// [`Fs::remove_file`](crate::fs::Fs::remove_file).
    Remove,
    /// [`Fs::list_dir`](crate::fs::Fs::list_dir).
    List,
    /// [`Fs::lock`](crate::fs::Fs::lock).
    Lock,
}

impl OpKind {
    /// Every kind, in declaration order.
    pub const ALL: [OpKind; 15] = [
        OpKind::CreateDir,
        OpKind::Create,
        OpKind::Open,
        OpKind::Read,
        OpKind::Write,
        OpKind::SyncData,
        OpKind::SyncDir,
        OpKind::SetLen,
        OpKind::Allocate,
        OpKind::Len,
        OpKind::Map,
        OpKind::Rename,
        OpKind::Remove,
        OpKind::List,
        OpKind::Lock,
    ];

    /// True for the operations that change the page cache or the durable image: the points at
    /// which a crash can leave a different disk.
    pub fn mutates(self) -> bool {
        matches!(
            self,
            OpKind::CreateDir
                | OpKind::Create
                | OpKind::Write
                | OpKind::SyncData
                | OpKind::SyncDir
                | OpKind::SetLen
                | OpKind::Allocate
                | OpKind::Rename
                | OpKind::Remove
                | OpKind::Lock
        )
    }

    /// True for the two barriers: [`OpKind::SyncData`] and [`OpKind::SyncDir`].
    pub fn is_sync(self) -> bool {
        matches!(self, OpKind::SyncData | OpKind::SyncDir)
    }

    pub(super) fn slot(self) -> usize {
        self as usize
    }
}

/// The error an injected fault returns, as the kernel reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// `EIO`: the device failed.
    Eio,
    /// `ENOSPC`: the file system is full. A failing write first writes half its buffer (a short
    /// write, as on a real full file system).
    NoSpace,
}

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

impl FaultError {
    /// The `io::Error` the failing call returns (raw OS error, so `kind()` is `Other`-free).
    pub fn to_io(self) -> io::Error {
        io::Error::from_raw_os_error(match self {
            FaultError::Eio => EIO,
            FaultError::NoSpace => ENOSPC,
        })
    }
}

/// One injected failure: the `nth` operation of kind `op` (counted from when it is injected,
/// 0 = the next one) fails with `error`; if `sticky`, so does every later one of that kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The kind of operation to fail.
    pub op: OpKind,
    /// How many operations of that kind succeed first.
    pub nth: u64,
    /// What the failing call returns.
    pub error: FaultError,
    /// Keep failing every later operation of the kind (a disk that stays full or broken).
    pub sticky: bool,
}

impl Fault {
    /// Fails only the `nth` (0-based) next operation of kind `op`.
    pub fn nth(op: OpKind, nth: u64, error: FaultError) -> Self {
        Self {
            op,
            nth,
            error,
            sticky: false,
        }
    }

    /// The same fault, but every later operation of the kind fails as well.
    #[must_use = "returns the changed fault"]
    pub fn sticky(self) -> Self {
        Self {
            sticky: true,
            ..self
        }
    }
}

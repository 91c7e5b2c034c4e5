//! The values a Raft log is made of: entries, their ids, hard state and snapshot metadata.

use bytes::Bytes;

/// The id of a log position: `(index, term)`. Ordered by term first, as Raft compares logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EntryId {
    /// The term of the leader that created the entry.
    pub term: u64,
    /// The entry's position in the log; the first real entry has index 1.
    pub index: u64,
}

impl EntryId {
    /// Creates an id from its term and index.
    pub const fn new(term: u64, index: u64) -> Self {
        Self { term, index }
    }
}

/// One log entry. Immutable once created: clones share `data`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Position in the log (1-based; 0 is the empty log's dummy position).
    pub index: u64,
    /// Term of the leader that created it.
    pub term: u64,
    /// The opaque payload; raftwal never looks inside.
    pub data: Bytes,
}

/// Fixed bytes counted for every entry on top of its payload by [`Entry::size`]: index and term.
pub const ENTRY_OVERHEAD: u64 = 16;

impl Entry {
    /// Creates an entry.
    pub fn new(index: u64, term: u64, data: impl Into<Bytes>) -> Self {
        Self {
            index,
            term,
            data: data.into(),
        }
    }

    /// The entry's id, `(term, index)`.
    pub fn id(&self) -> EntryId {
        EntryId::new(self.term, self.index)
    }

    /// The size every byte limit counts (`max_size`, apply flow control): payload plus
    /// [`ENTRY_OVERHEAD`]. etcd counts the protobuf size; any size that grows with the payload
    /// gives the same limits.
    pub fn size(&self) -> u64 {
        ENTRY_OVERHEAD + self.data.len() as u64
    }
}

/// The sum of [`Entry::size`] over `entries`.
pub fn entries_size(entries: &[Entry]) -> u64 {
    entries.iter().map(Entry::size).sum()
}

/// Raft's persistent per-node state. Empty (all zero) means "nothing recorded yet".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: u64,
    /// The node voted for in `term` (0 = none).
    pub vote: u64,
    /// The highest index known to be committed.
    pub commit: u64,
}

impl HardState {
    /// True when no field has been set (etcd's `IsEmptyHardState`).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What the log keeps of a snapshot: the position it covers and the cluster membership at that
/// point (opaque bytes, encoded by the Raft library). The snapshot's data belongs to the state
/// machine, not to the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SnapshotMeta {
    /// Last index the snapshot covers; 0 means "no snapshot".
    pub index: u64,
    /// Term of the entry at `index`.
    pub term: u64,
    /// The membership configuration at `index`, encoded by the Raft library.
    pub conf_state: Bytes,
}

impl SnapshotMeta {
    /// The id of the last entry the snapshot covers.
    pub fn id(&self) -> EntryId {
        EntryId::new(self.term, self.index)
    }
}

/// A snapshot as the consensus layer moves it around: metadata plus the state machine's data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Snapshot {
    /// Position and membership.
    pub meta: SnapshotMeta,
    /// The state machine image (opaque). Storage that keeps only metadata returns it empty.
    pub data: Bytes,
}

impl Snapshot {
    /// True for the "no snapshot" value (etcd's `IsEmptySnap`: index 0).
    pub fn is_empty(&self) -> bool {
        self.meta.index == 0
    }
}

/// What a node needs at start-up (etcd's `InitialState`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftState {
    /// The last persisted hard state (empty on a new log).
    pub hard_state: HardState,
    /// The membership of the latest snapshot (empty bytes if none).
    pub conf_state: Bytes,
}

//! The read contract a Raft library needs from its log (etcd's `Storage`), and its two
//! implementations: `DiskStorage` over the WAL and `MemStorage` in memory.

mod disk;
mod mem;

pub use disk::DiskStorage;
pub use mem::MemStorage;

use crate::error::{Error, Result};
use crate::types::{Entry, RaftState, Snapshot};

/// What a Raft library reads from its durable log (etcd `Storage`, spec section 4.1).
///
/// Indexes: entries `[first_index, last_index]` are readable; `term` also answers for
/// `first_index - 1`, the compaction point. A log with no entries has
/// `first_index == last_index + 1`.
pub trait Storage {
    /// The persisted hard state and the membership of the latest snapshot.
    fn initial_state(&self) -> Result<RaftState>;
    /// Entries `[lo, hi)`, at most `max_size` bytes by [`Entry::size`] but always at least one
    /// when the range is not empty.
    ///
    /// # Errors
    /// [`Compacted`](crate::Error::Compacted) if `lo < first_index`,
    /// [`Unavailable`](crate::Error::Unavailable) if `hi > last_index + 1`.
    fn entries(&self, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>>;
    /// The term of entry `index`, for `index` in `[first_index - 1, last_index]`.
    ///
    /// # Errors
    /// [`Compacted`](crate::Error::Compacted) below that range,
    /// [`Unavailable`](crate::Error::Unavailable) above it.
    fn term(&self, index: u64) -> Result<u64>;
    /// The first index readable through [`Storage::entries`].
    fn first_index(&self) -> Result<u64>;
    /// The index of the last entry (the compaction point when there are no entries).
    fn last_index(&self) -> Result<u64>;
    /// The most recent snapshot.
    ///
    /// # Errors
    /// [`SnapshotTemporarilyUnavailable`](crate::Error::SnapshotTemporarilyUnavailable) when
    /// none can be given now.
    fn snapshot(&self) -> Result<Snapshot>;
}

/// Keeps the longest prefix of `entries` whose total [`Entry::size`] is at most `max_size`, but
/// never fewer than one entry (etcd `limitSize`).
pub fn limit_size(entries: &mut Vec<Entry>, max_size: u64) {
    entries.truncate(limited_len(entries, max_size));
}

/// How many entries [`limit_size`] would keep, so that callers can clone only those.
pub(crate) fn limited_len(entries: &[Entry], max_size: u64) -> usize {
    let mut total = 0u64;
    entries
        .iter()
        .position(|e| {
            total = total.saturating_add(e.size());
            total > max_size
        })
        .unwrap_or(entries.len())
        .max(1)
        .min(entries.len())
}

/// Checks that `entries` can follow an entry of term `prev_term`: consecutive indexes and terms
/// that never go down.
///
/// # Errors
/// [`Error::NotContiguous`] on an index gap or repeat, [`Error::TermRegression`] when a term
/// is below the one before it.
pub(crate) fn check_batch(prev_term: u64, entries: &[Entry]) -> Result<()> {
    let mut prev_term = prev_term;
    let mut prev_index: Option<u64> = None;
    for e in entries {
        if let Some(p) = prev_index
            && p.checked_add(1) != Some(e.index)
        {
            return Err(Error::NotContiguous {
                expected: p.saturating_add(1),
                found: e.index,
            });
        }
        if e.term < prev_term {
            return Err(Error::TermRegression {
                index: e.index,
                term: e.term,
                prev_term,
            });
        }
        prev_term = e.term;
        prev_index = Some(e.index);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_size_keeps_at_least_one_and_stops_at_the_limit() {
        let ents: Vec<Entry> = (1..=4).map(|i| Entry::new(i, 1, vec![0u8; 4])).collect();
        let s = ents[0].size();
        // (max_size, kept)
        for (max, kept) in [
            (0, 1),
            (s - 1, 1),
            (s, 1),
            (2 * s, 2),
            (3 * s + 1, 3),
            (u64::MAX, 4),
        ] {
            let mut v = ents.clone();
            limit_size(&mut v, max);
            assert_eq!(v.len(), kept, "max_size {max}");
        }
        let mut empty = Vec::new();
        limit_size(&mut empty, 0);
        assert!(empty.is_empty());
    }
}

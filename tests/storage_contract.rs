//! The `Storage` contract (spec 4, table 5.3) as one suite, run against every implementation
//! through a small write trait.

mod log_common;

use bytes::Bytes;
use log_common::{Ids, e, ents, ids, snap};
use std::sync::Arc;

use raftwal::{
    Batch, DiskStorage, Entry, EntryId, Error, HardState, MemStorage, Options, RaftState, Result,
    Snapshot, Storage, Wal,
};

const NO_LIMIT: u64 = u64::MAX;

/// The writes the contract needs, over each implementation's own write API.
trait Writable: Storage {
    fn append(&self, entries: &[Entry]) -> Result<()>;
    fn apply_snapshot(&self, snapshot: Snapshot) -> Result<()>;
    fn compact(&self, index: u64) -> Result<()>;
    fn set_hard_state(&self, hard_state: HardState) -> Result<()>;
}

impl Writable for MemStorage {
    fn append(&self, entries: &[Entry]) -> Result<()> {
        MemStorage::append(self, entries)
    }
    fn apply_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        MemStorage::apply_snapshot(self, snapshot)
    }
    fn compact(&self, index: u64) -> Result<()> {
        MemStorage::compact(self, index)
    }
    fn set_hard_state(&self, hard_state: HardState) -> Result<()> {
        MemStorage::set_hard_state(self, hard_state);
        Ok(())
    }
}

/// `B = MS{3@3; 4@4 5@5}` plus `more` after it.
fn base<S: Writable>(fresh: &dyn Fn() -> S, more: Ids) -> S {
    let s = fresh();
    s.apply_snapshot(snap(3, 3)).unwrap();
    s.append(&ents(&[(4, 4), (5, 5)])).unwrap();
    s.append(&ents(more)).unwrap();
    s
}

/// Every readable entry with the compaction point first, like etcd's `ents` array.
fn dump<S: Storage>(s: &S) -> Vec<(u64, u64)> {
    let (first, last) = (s.first_index().unwrap(), s.last_index().unwrap());
    let mut out = vec![(first - 1, s.term(first - 1).unwrap())];
    if first <= last {
        out.extend(ids(&s.entries(first, last + 1, NO_LIMIT).unwrap()));
    }
    out
}

fn term<S: Writable>(fresh: &dyn Fn() -> S) {
    let s = base(fresh, &[]);
    // Spec: 5.3 S01
    assert!(matches!(
        s.term(2),
        Err(Error::Compacted {
            index: 2,
            first_index: 4
        })
    ));
    // Spec: 5.3 S02-S04
    assert_eq!(
        [s.term(3).unwrap(), s.term(4).unwrap(), s.term(5).unwrap()],
        [3, 4, 5]
    );
    assert!(matches!(
        s.term(6),
        Err(Error::Unavailable {
            index: 6,
            last_index: 5
        })
    ));
}

fn entries<S: Writable>(fresh: &dyn Fn() -> S) {
    let s = base(fresh, &[(6, 6)]);
    let size = e(4, 4).size();
    // Spec: 5.3 S06-S07
    for lo in [2, 3] {
        assert!(
            matches!(s.entries(lo, 6, NO_LIMIT), Err(Error::Compacted { .. })),
            "{lo}"
        );
    }
    // (id, lo, hi, max_size, result)
    let rows: [(&str, u64, u64, u64, Ids); 7] = [
        ("S08", 4, 5, NO_LIMIT, &[(4, 4)]),
        ("S09", 4, 6, NO_LIMIT, &[(4, 4), (5, 5)]),
        ("S11", 4, 7, 0, &[(4, 4)]),
        ("S12", 4, 7, 2 * size, &[(4, 4), (5, 5)]),
        ("S13", 4, 7, 2 * size + size / 2, &[(4, 4), (5, 5)]),
        ("S14", 4, 7, 3 * size - 1, &[(4, 4), (5, 5)]),
        ("S14+", 4, 7, 3 * size, &[(4, 4), (5, 5), (6, 6)]),
    ];
    for (id, lo, hi, max, want) in rows {
        // Spec: 5.3 S08-S14
        assert_eq!(ids(&s.entries(lo, hi, max).unwrap()), want, "{id}");
    }
    // Spec: 5.3 S36 (etcd panics)
    assert!(matches!(
        s.entries(4, 8, NO_LIMIT),
        Err(Error::Unavailable { .. })
    ));
}

fn last_and_first_index<S: Writable>(fresh: &dyn Fn() -> S) {
    // Spec: 5.3 S16
    let s = base(fresh, &[]);
    assert_eq!(s.last_index().unwrap(), 5);
    s.append(&[e(6, 5)]).unwrap();
    assert_eq!(s.last_index().unwrap(), 6);
    // Spec: 5.3 S17
    let s = base(fresh, &[]);
    assert_eq!(s.first_index().unwrap(), 4);
    s.compact(4).unwrap();
    assert_eq!(s.first_index().unwrap(), 5);
}

fn compact<S: Writable>(fresh: &dyn Fn() -> S) {
    // Spec: 5.3 S18
    let s = base(fresh, &[]);
    assert!(matches!(s.compact(2), Err(Error::Compacted { .. })));
    assert_eq!(dump(&s), [(3, 3), (4, 4), (5, 5)]);
    // Spec: 5.3 S21
    let s = base(fresh, &[]);
    s.compact(5).unwrap();
    assert_eq!(dump(&s), [(5, 5)]);
}

fn append<S: Writable>(fresh: &dyn Fn() -> S) {
    // (id, append, result including the compaction point)
    let rows: [(&str, Ids, Ids); 3] = [
        ("S26", &[(4, 6), (5, 6)], &[(3, 3), (4, 6), (5, 6)]),
        ("S27", &[(6, 5)], &[(3, 3), (4, 4), (5, 5), (6, 5)]),
        ("S29", &[(4, 5)], &[(3, 3), (4, 5)]),
    ];
    for (id, append, want) in rows {
        // Spec: 5.3 S26-S29, without the already-compacted prefixes (see `mem_only`)
        let s = base(fresh, &[]);
        s.append(&ents(append)).unwrap();
        assert_eq!(dump(&s), want, "{id}");
    }
}

fn bad_appends<S: Writable>(fresh: &dyn Fn() -> S) {
    let s = base(fresh, &[]);
    // Spec: 5.3 S35 (etcd panics)
    let gap = s.append(&[e(7, 5)]);
    assert!(
        matches!(
            gap,
            Err(Error::NotContiguous {
                expected: 6,
                found: 7
            })
        ),
        "{gap:?}"
    );
    let back = s.append(&[e(6, 4)]);
    assert!(
        matches!(back, Err(Error::TermRegression { index: 6, .. })),
        "{back:?}"
    );
    let holey = s.append(&ents(&[(6, 5), (8, 5)]));
    assert!(
        matches!(holey, Err(Error::NotContiguous { .. })),
        "{holey:?}"
    );
    assert_eq!(dump(&s), [(3, 3), (4, 4), (5, 5)]);
}

fn apply_snapshot<S: Writable>(fresh: &dyn Fn() -> S) {
    // Spec: 5.3 S31
    let s = fresh();
    s.apply_snapshot(snap(4, 4)).unwrap();
    assert_eq!(dump(&s), [(4, 4)]);
    // Spec: 5.3 S32
    let older = s.apply_snapshot(snap(3, 3));
    assert!(matches!(
        older,
        Err(Error::SnapshotOutOfDate {
            index: 3,
            current: 4
        })
    ));
    assert_eq!(dump(&s), [(4, 4)]);
    // Spec: 5.3 S39
    let s = base(fresh, &[]);
    s.apply_snapshot(snap(10, 7)).unwrap();
    assert_eq!(dump(&s), [(10, 7)]);
    assert_eq!(
        (s.first_index().unwrap(), s.last_index().unwrap()),
        (11, 10)
    );
    assert!(matches!(
        s.apply_snapshot(snap(10, 7)),
        Err(Error::SnapshotOutOfDate { .. })
    ));
    assert_eq!(s.snapshot().unwrap().meta.index, 10);
}

fn fresh_storage<S: Writable>(fresh: &dyn Fn() -> S) {
    // Spec: 5.3 S34
    let s = fresh();
    assert_eq!((s.first_index().unwrap(), s.last_index().unwrap()), (1, 0));
    assert_eq!(s.term(0).unwrap(), 0);
    assert!(matches!(
        s.entries(1, 2, NO_LIMIT),
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(
        s.entries(0, 0, NO_LIMIT),
        Err(Error::Compacted { .. })
    ));
    let state = s.initial_state().unwrap();
    assert!(state.hard_state.is_empty() && state.conf_state.is_empty());
    // The hard state round-trips.
    let hs = HardState {
        term: 2,
        vote: 1,
        commit: 0,
    };
    s.set_hard_state(hs).unwrap();
    assert_eq!(s.initial_state().unwrap().hard_state, hs);
}

macro_rules! contract_suite {
    ($name:ident, $fresh:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn term() {
                super::term(&$fresh);
            }
            #[test]
            fn entries() {
                super::entries(&$fresh);
            }
            #[test]
            fn last_and_first_index() {
                super::last_and_first_index(&$fresh);
            }
            #[test]
            fn compact() {
                super::compact(&$fresh);
            }
            #[test]
            fn append() {
                super::append(&$fresh);
            }
            #[test]
            fn bad_appends() {
                super::bad_appends(&$fresh);
            }
            #[test]
            fn apply_snapshot() {
                super::apply_snapshot(&$fresh);
            }
            #[test]
            fn fresh_storage() {
                super::fresh_storage(&$fresh);
            }
        }
    };
}

contract_suite!(mem, MemStorage::new);

/// What only `MemStorage` promises: snapshot creation and compaction bounds (etcd panics).
mod mem_only {
    use super::*;

    #[test]
    fn create_snapshot() {
        let fresh = MemStorage::new;
        for (id, index, term) in [("S22", 4, 4), ("S23", 5, 5)] {
            // Spec: 5.3 S22-S23
            let s = base(&fresh, &[]);
            let cs = Bytes::from_static(b"voters 1,2,3");
            let got = s
                .create_snapshot(index, Some(cs.clone()), Bytes::from_static(b"data"))
                .unwrap();
            assert_eq!((got.meta.index, got.meta.term), (index, term), "{id}");
            assert_eq!(
                (&got.meta.conf_state, &got.data[..]),
                (&cs, &b"data"[..]),
                "{id}"
            );
            assert_eq!(s.snapshot().unwrap(), got, "{id}");
        }
        // Spec: 5.3 S37 (etcd panics on the first)
        let s = base(&fresh, &[]);
        let beyond = s.create_snapshot(6, None, Bytes::new());
        assert!(matches!(beyond, Err(Error::Unavailable { index: 6, .. })));
        s.create_snapshot(4, None, Bytes::new()).unwrap();
        let again = s.create_snapshot(4, None, Bytes::new());
        assert!(matches!(
            again,
            Err(Error::SnapshotOutOfDate {
                index: 4,
                current: 4
            })
        ));
    }

    #[test]
    fn compaction_at_or_below_the_compaction_point() {
        // Spec: 5.3 S19 (the WAL's purge is idempotent instead)
        let s = base(&MemStorage::new, &[]);
        assert!(matches!(
            s.compact(3),
            Err(Error::Compacted { index: 3, .. })
        ));
        assert_eq!(dump(&s), [(3, 3), (4, 4), (5, 5)]);
    }

    #[test]
    fn append_drops_what_is_already_compacted() {
        // (id, append, result including the compaction point); the WAL rejects such batches
        let rows: [(&str, Ids, Ids); 4] = [
            ("S24", &[(1, 1), (2, 2)], &[(3, 3), (4, 4), (5, 5)]),
            ("S26", &[(3, 3), (4, 6), (5, 6)], &[(3, 3), (4, 6), (5, 6)]),
            (
                "S27",
                &[(3, 3), (4, 4), (5, 5), (6, 5)],
                &[(3, 3), (4, 4), (5, 5), (6, 5)],
            ),
            ("S28", &[(2, 3), (3, 3), (4, 5)], &[(3, 3), (4, 5)]),
        ];
        for (id, append, want) in rows {
            // Spec: 5.3 S24-S28
            let s = base(&MemStorage::new, &[]);
            s.append(&ents(append)).unwrap();
            assert_eq!(dump(&s), want, "{id}");
        }
    }

    #[test]
    fn an_empty_range_of_an_empty_log_is_unavailable() {
        // Spec: 5.3 S34, etcd's quirk (the WAL returns no entries instead)
        let s = MemStorage::new();
        assert!(matches!(
            s.entries(1, 1, NO_LIMIT),
            Err(Error::Unavailable { .. })
        ));
    }

    #[test]
    fn compact_beyond_the_last_index() {
        // Spec: 5.3 S38 (etcd panics)
        let s = base(&MemStorage::new, &[]);
        assert!(matches!(
            s.compact(6),
            Err(Error::Unavailable { index: 6, .. })
        ));
        assert_eq!(dump(&s), [(3, 3), (4, 4), (5, 5)]);
    }

    #[test]
    fn bootstrap_snapshot_at_index_zero() {
        // Spec: 5.3 S33
        let s = MemStorage::new();
        s.apply_snapshot(snap(0, 0)).unwrap();
        assert_eq!(dump(&s), [(0, 0)]);
    }
}

/// A `DiskStorage` on its own temp dir, written through the WAL's synced appends.
struct Disk {
    storage: DiskStorage,
    _dir: tempfile::TempDir,
}

impl Disk {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut options = Options::default();
        options.segment_size = 64 << 10; // small segments: each test zero-fills a few
        let (wal, _) = Wal::open(dir.path(), options).unwrap();
        Self {
            storage: DiskStorage::new(Arc::new(wal)),
            _dir: dir,
        }
    }

    fn write(&self, batch: Batch) -> Result<()> {
        self.storage.wal().append_sync(&batch)
    }
}

impl Storage for Disk {
    fn initial_state(&self) -> Result<RaftState> {
        self.storage.initial_state()
    }
    fn entries(&self, lo: u64, hi: u64, max_size: u64) -> Result<Vec<Entry>> {
        self.storage.entries(lo, hi, max_size)
    }
    fn term(&self, index: u64) -> Result<u64> {
        self.storage.term(index)
    }
    fn first_index(&self) -> Result<u64> {
        self.storage.first_index()
    }
    fn last_index(&self) -> Result<u64> {
        self.storage.last_index()
    }
    fn snapshot(&self) -> Result<Snapshot> {
        self.storage.snapshot()
    }
}

impl Writable for Disk {
    fn append(&self, entries: &[Entry]) -> Result<()> {
        self.write(Batch {
            entries: entries.to_vec(),
            ..Batch::default()
        })
    }
    fn apply_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        self.write(Batch {
            snapshot: Some(snapshot.meta),
            ..Batch::default()
        })
    }
    fn compact(&self, index: u64) -> Result<()> {
        let term = self.storage.term(index)?;
        self.storage
            .wal()
            .purge_to(EntryId::new(term, index))
            .map(drop)
    }
    fn set_hard_state(&self, hard_state: HardState) -> Result<()> {
        self.write(Batch {
            hard_state: Some(hard_state),
            ..Batch::default()
        })
    }
}

contract_suite!(disk, Disk::new);

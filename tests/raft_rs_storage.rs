//! The raft-rs adapter against raft-rs's own `MemStorage` unit tests (raft 0.7.0,
//! `src/storage.rs`, module `test`), ported case by case, plus what only a disk log has:
//! exact round trips, reopening, error mapping and damaged contents.
//!
//! One deliberate difference: raft-rs's tests put entry 3 first with no compaction point, so
//! `term(2)` is `Compacted` there; here a log that starts at 3 got there by a snapshot at
//! (2, 2), and `term(2)` answers, as the `raft::Storage::term` contract asks
//! (`[first_index - 1, last_index]`).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, Storage, StorageError};
use raftwal::adapters::raft_rs::{NoSnapshots, RaftRsStorage, SnapshotSource};
use raftwal::{Batch, Options, Wal};
use tempfile::TempDir;

fn open(dir: &TempDir, snapshots: Arc<dyn SnapshotSource>) -> RaftRsStorage {
    let mut options = Options::default();
    options.segment_size = 64 << 10; // small: each test opens several logs
    let (wal, _report) = Wal::open(dir.path(), options).expect("open wal");
    RaftRsStorage::new(Arc::new(wal), snapshots)
}

fn new_entry(index: u64, term: u64) -> Entry {
    Entry {
        index,
        term,
        // Payloads of different lengths, so that each size limit below cuts at one place only.
        data: Bytes::from(vec![b'x'; (index * 7) as usize]),
        ..Entry::default()
    }
}

fn voters() -> ConfState {
    ConfState::from((vec![1, 2, 3], vec![]))
}

fn new_snapshot(index: u64, term: u64) -> Snapshot {
    let mut s = Snapshot::default();
    s.mut_metadata().index = index;
    s.mut_metadata().term = term;
    s.mut_metadata().set_conf_state(voters());
    s
}

/// A log holding `[3, 3] [4, 4] [5, 5]` after a snapshot at (2, 2): raft-rs's test fixture.
fn fixture(dir: &TempDir) -> RaftRsStorage {
    fixture_with(dir, Arc::new(NoSnapshots))
}

fn fixture_with(dir: &TempDir, snapshots: Arc<dyn SnapshotSource>) -> RaftRsStorage {
    let storage = open(dir, snapshots);
    storage
        .apply_snapshot(&new_snapshot(2, 2))
        .expect("snapshot");
    storage
        .append(&[new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)])
        .expect("append");
    storage
}

fn all_entries(storage: &RaftRsStorage) -> Vec<Entry> {
    let (first, last) = (
        storage.first_index().unwrap(),
        storage.last_index().unwrap(),
    );
    let ctx = GetEntriesContext::empty(false);
    storage
        .entries(first, last + 1, None, ctx)
        .expect("entries")
}

fn store_err(e: StorageError) -> raft::Error {
    raft::Error::Store(e)
}

fn size(e: &Entry) -> u64 {
    u64::from(e.compute_size())
}

// Port of test_storage_term.
#[test]
fn term_answers_from_the_compaction_point_to_the_last_index() {
    let dir = TempDir::new().unwrap();
    let storage = fixture(&dir);
    let cases = [
        (1, Err(store_err(StorageError::Compacted))),
        (2, Ok(2)), // the compaction point keeps its term
        (3, Ok(3)),
        (4, Ok(4)),
        (5, Ok(5)),
        (6, Err(store_err(StorageError::Unavailable))),
    ];
    for (index, want) in cases {
        assert_eq!(storage.term(index), want, "term({index})");
    }
}

// Port of test_storage_entries, plus the out-of-range high end.
#[test]
fn entries_honour_range_and_max_size_but_return_at_least_one() {
    let dir = TempDir::new().unwrap();
    let storage = fixture(&dir);
    storage.append(&[new_entry(6, 6)]).unwrap();
    let ents = [
        new_entry(3, 3),
        new_entry(4, 4),
        new_entry(5, 5),
        new_entry(6, 6),
    ];
    let (s4, s5, s6) = (size(&ents[1]), size(&ents[2]), size(&ents[3]));
    // (lo, hi, max_size, expected)
    type Case = (u64, u64, Option<u64>, raft::Result<Vec<Entry>>);
    let cases: Vec<Case> = vec![
        (2, 6, None, Err(store_err(StorageError::Compacted))),
        (3, 4, None, Ok(ents[..1].to_vec())),
        (4, 5, None, Ok(ents[1..2].to_vec())),
        (4, 6, None, Ok(ents[1..3].to_vec())),
        (4, 7, None, Ok(ents[1..].to_vec())),
        (4, 7, Some(u64::MAX), Ok(ents[1..].to_vec())),
        // Even with max_size 0 the first entry comes back.
        (4, 7, Some(0), Ok(ents[1..2].to_vec())),
        (4, 7, Some(s4 + s5), Ok(ents[1..3].to_vec())),
        (4, 7, Some(s4 + s5 + s6 / 2), Ok(ents[1..3].to_vec())),
        (4, 7, Some(s4 + s5 + s6 - 1), Ok(ents[1..3].to_vec())),
        (4, 7, Some(s4 + s5 + s6), Ok(ents[1..].to_vec())),
        // Beyond last_index + 1: raft-rs never asks; a typed error, not a panic.
        (4, 8, None, Err(store_err(StorageError::Unavailable))),
    ];
    for (lo, hi, max_size, want) in cases {
        let got = storage.entries(lo, hi, max_size, GetEntriesContext::empty(false));
        assert_eq!(got, want, "entries({lo}, {hi}, {max_size:?})");
    }
}

// Port of test_storage_last_index.
#[test]
fn last_index_follows_appends() {
    let dir = TempDir::new().unwrap();
    let storage = fixture(&dir);
    assert_eq!(storage.last_index(), Ok(5));
    storage.append(&[new_entry(6, 5)]).unwrap();
    assert_eq!(storage.last_index(), Ok(6));
}

// Port of test_storage_first_index.
#[test]
fn first_index_follows_compaction() {
    let dir = TempDir::new().unwrap();
    let storage = fixture(&dir);
    assert_eq!(storage.first_index(), Ok(3));
    storage.create_snapshot(3, &voters()).unwrap();
    storage.compact(4).unwrap();
    assert_eq!(storage.first_index(), Ok(4));
}

// Port of test_storage_compact: (compact_index, first index, its term, entries left).
#[test]
fn compact_drops_the_prefix_and_keeps_the_compaction_term() {
    for (compact, want_first, want_term, want_len) in
        [(2, 3, 3, 3), (3, 3, 3, 3), (4, 4, 4, 2), (5, 5, 5, 1)]
    {
        let dir = TempDir::new().unwrap();
        let storage = fixture(&dir);
        storage.create_snapshot(5, &voters()).unwrap();
        storage.compact(compact).unwrap();
        let first = storage.first_index().unwrap();
        assert_eq!(first, want_first, "compact({compact})");
        let ents = all_entries(&storage);
        assert_eq!(ents[0].term, want_term, "compact({compact})");
        assert_eq!(ents.len(), want_len, "compact({compact})");
        // raft-rs's contract, stricter than its MemStorage: the term before the first stays.
        assert_eq!(storage.term(first - 1), Ok(first - 1), "compact({compact})");
        assert_eq!(
            storage.term(first - 2),
            Err(store_err(StorageError::Compacted))
        );
    }
}

#[test]
fn compact_beyond_the_latest_snapshot_is_refused_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let storage = fixture(&dir);
    storage.create_snapshot(3, &voters()).unwrap();
    let err = storage.compact(5).unwrap_err();
    assert!(
        matches!(err, raft::Error::Store(StorageError::Other(_))),
        "{err:?}"
    );
    assert_eq!(storage.first_index(), Ok(3));
    assert_eq!(all_entries(&storage).len(), 3);
}

/// A state machine's snapshot images, by index, recording who asked.
#[derive(Default)]
struct Images {
    by_index: Mutex<Vec<(u64, Bytes)>>,
    asked_by: Mutex<Vec<u64>>,
}

impl SnapshotSource for Images {
    fn snapshot_data(&self, meta: &SnapshotMetadata, to: u64) -> raft::Result<Bytes> {
        self.asked_by.lock().unwrap().push(to);
        let images = self.by_index.lock().unwrap();
        match images.iter().find(|(index, _)| *index == meta.index) {
            Some((_, data)) => Ok(data.clone()),
            None => Err(store_err(StorageError::SnapshotTemporarilyUnavailable)),
        }
    }
}

// Port of test_storage_create_snapshot: (snapshot index, request index, expected index).
// MemStorage builds a snapshot from its commit index and raises it to `request_index`; the
// adapter offers the recorded snapshot only, and asks for time when it is too old.
#[test]
fn snapshot_serves_the_latest_recorded_snapshot_with_the_sources_image() {
    let unavailable = || Err(store_err(StorageError::SnapshotTemporarilyUnavailable));
    for (index, request, want) in [(4, 0, Ok(4)), (5, 5, Ok(5)), (5, 6, unavailable())] {
        let dir = TempDir::new().unwrap();
        let images = Arc::new(Images::default());
        let storage = fixture_with(&dir, images.clone());
        let image = Bytes::from(format!("image at {index}"));
        images.by_index.lock().unwrap().push((index, image.clone()));
        storage.create_snapshot(index, &voters()).unwrap();

        let got = storage.snapshot(request, 7);
        match want {
            Ok(want_index) => {
                let mut expected = new_snapshot(want_index, want_index);
                expected.data = image;
                assert_eq!(got, Ok(expected), "snapshot at {index}, request {request}");
                assert_eq!(*images.asked_by.lock().unwrap(), [7]);
            }
            Err(e) => assert_eq!(got, Err(e), "snapshot at {index}, request {request}"),
        }
    }
}

#[test]
fn snapshot_is_temporarily_unavailable_without_one_or_without_an_image() {
    let dir = TempDir::new().unwrap();
    let images = Arc::new(Images::default());
    let storage = fixture_with(&dir, images.clone());
    // The fixture's installed snapshot at 2 has no image in this state machine.
    let unavailable = Err(store_err(StorageError::SnapshotTemporarilyUnavailable));
    assert_eq!(storage.snapshot(0, 1), unavailable);
    assert_eq!(*images.asked_by.lock().unwrap(), [1]);

    let fresh_dir = TempDir::new().unwrap();
    let fresh = open(&fresh_dir, images.clone());
    assert_eq!(fresh.snapshot(0, 2), unavailable);
    assert_eq!(
        *images.asked_by.lock().unwrap(),
        [1],
        "no snapshot: the source is not asked"
    );
}

#[test]
fn create_snapshot_refuses_to_go_backwards() {
    let dir = TempDir::new().unwrap();
    let storage = fixture(&dir);
    storage.create_snapshot(4, &voters()).unwrap();
    assert_eq!(
        storage.create_snapshot(3, &voters()).unwrap_err(),
        store_err(StorageError::SnapshotOutOfDate)
    );
    assert_eq!(
        storage.create_snapshot(6, &voters()).unwrap_err(),
        store_err(StorageError::Unavailable)
    );
}

// Port of test_storage_append: (appended, resulting log or None for refused).
#[test]
fn append_replaces_the_suffix_and_refuses_compacted_indexes() {
    let e = new_entry;
    let cases = [
        (
            vec![e(3, 3), e(4, 4), e(5, 5)],
            Some(vec![e(3, 3), e(4, 4), e(5, 5)]),
        ),
        (
            vec![e(3, 3), e(4, 6), e(5, 6)],
            Some(vec![e(3, 3), e(4, 6), e(5, 6)]),
        ),
        (
            vec![e(3, 3), e(4, 4), e(5, 5), e(6, 5)],
            Some(vec![e(3, 3), e(4, 4), e(5, 5), e(6, 5)]),
        ),
        // Overwriting compacted entries: MemStorage panics, the adapter says Compacted.
        (vec![e(2, 3), e(3, 3), e(4, 5)], None),
        // Truncate the existing entries and append.
        (vec![e(4, 5)], Some(vec![e(3, 3), e(4, 5)])),
        // Direct append.
        (
            vec![e(6, 6)],
            Some(vec![e(3, 3), e(4, 4), e(5, 5), e(6, 6)]),
        ),
    ];
    for (i, (appended, want)) in cases.into_iter().enumerate() {
        let dir = TempDir::new().unwrap();
        let storage = fixture(&dir);
        let result = storage.append(&appended);
        match want {
            Some(want) => {
                result.unwrap_or_else(|err| panic!("#{i}: {err:?}"));
                assert_eq!(all_entries(&storage), want, "#{i}");
            }
            None => {
                assert_eq!(
                    result.unwrap_err(),
                    store_err(StorageError::Compacted),
                    "#{i}"
                );
                assert_eq!(all_entries(&storage), [e(3, 3), e(4, 4), e(5, 5)], "#{i}");
            }
        }
    }
}

#[test]
fn append_with_a_gap_is_refused() {
    let dir = TempDir::new().unwrap();
    let storage = fixture(&dir);
    let err = storage.append(&[new_entry(7, 5)]).unwrap_err();
    assert!(
        matches!(err, raft::Error::Store(StorageError::Other(_))),
        "{err:?}"
    );
    assert_eq!(storage.last_index(), Ok(5));
}

// Port of test_storage_apply_snapshot.
#[test]
fn apply_snapshot_resets_the_log_and_refuses_an_older_one() {
    let dir = TempDir::new().unwrap();
    let storage = open(&dir, Arc::new(NoSnapshots));
    storage.apply_snapshot(&new_snapshot(4, 4)).unwrap();
    assert_eq!(
        (storage.first_index(), storage.last_index()),
        (Ok(5), Ok(4))
    );
    assert_eq!(storage.term(4), Ok(4));
    assert_eq!(storage.initial_state().unwrap().conf_state, voters());

    assert_eq!(
        storage.apply_snapshot(&new_snapshot(3, 3)).unwrap_err(),
        store_err(StorageError::SnapshotOutOfDate)
    );
    assert_eq!((storage.first_index(), storage.term(4)), (Ok(5), Ok(4)));
}

#[test]
fn entries_round_trip_every_field_across_a_reopen() {
    let dir = TempDir::new().unwrap();
    let mut conf_change = new_entry(1, 1);
    conf_change.set_entry_type(EntryType::EntryConfChangeV2);
    conf_change.context = Bytes::from_static(b"ctx");
    conf_change.sync_log = true;
    let written = vec![conf_change, new_entry(2, 1), new_entry(3, 2)];
    let hs = HardState {
        term: 2,
        vote: 3,
        commit: 2,
        ..HardState::default()
    };
    {
        let storage = open(&dir, Arc::new(NoSnapshots));
        storage.initialize_with_conf_state(voters()).unwrap();
        storage.append(&written).unwrap();
        let lsn = storage.set_hard_state(&hs).unwrap();
        storage.wal().sync(lsn).unwrap();
        assert_eq!(all_entries(&storage), written);
    }
    let storage = open(&dir, Arc::new(NoSnapshots));
    assert_eq!(all_entries(&storage), written);
    let state = storage.initial_state().unwrap();
    assert!(state.initialized());
    assert_eq!((state.hard_state, state.conf_state), (hs, voters()));
}

#[test]
fn initialize_once_only() {
    let dir = TempDir::new().unwrap();
    let storage = open(&dir, Arc::new(NoSnapshots));
    assert!(!storage.initial_state().unwrap().initialized());
    storage
        .initialize_with_conf_state((vec![1], vec![2]))
        .unwrap();
    assert_eq!(
        storage.initial_state().unwrap().conf_state,
        ConfState::from((vec![1], vec![2]))
    );
    let err = storage.initialize_with_conf_state(voters()).unwrap_err();
    assert!(
        matches!(err, raft::Error::Store(StorageError::Other(_))),
        "{err:?}"
    );
    assert_eq!(
        storage.initial_state().unwrap().conf_state,
        ConfState::from((vec![1], vec![2]))
    );
}

#[test]
fn raftwal_errors_map_to_the_storage_errors_raft_rs_handles() {
    use raftwal::Error;
    let cases = [
        (
            Error::Compacted {
                index: 1,
                first_index: 2,
            },
            Some(StorageError::Compacted),
        ),
        (
            Error::Unavailable {
                index: 9,
                last_index: 2,
            },
            Some(StorageError::Unavailable),
        ),
        (
            Error::SnapshotOutOfDate {
                index: 1,
                current: 2,
            },
            Some(StorageError::SnapshotOutOfDate),
        ),
        (
            Error::SnapshotTemporarilyUnavailable,
            Some(StorageError::SnapshotTemporarilyUnavailable),
        ),
        (Error::Poisoned, None),
    ];
    for (error, want) in cases {
        let shown = error.to_string();
        match (raft::Error::from(error), want) {
            (raft::Error::Store(got), Some(want)) => assert_eq!(got, want, "{shown}"),
            (raft::Error::Store(StorageError::Other(inner)), None) => {
                let inner = inner.downcast::<Error>().expect("raftwal error inside");
                assert!(matches!(*inner, Error::Poisoned), "{inner:?}");
            }
            (got, _) => panic!("{shown} became {got:?}"),
        }
    }
}

#[test]
fn damaged_or_foreign_entries_are_errors_not_panics() {
    let dir = TempDir::new().unwrap();
    let storage = open(&dir, Arc::new(NoSnapshots));
    let valid_elsewhere = new_entry(5, 1).write_to_bytes().unwrap();
    let batch = Batch {
        entries: vec![
            raftwal::Entry::new(1, 1, Bytes::from_static(b"\xff\xff\xff")),
            raftwal::Entry::new(2, 1, valid_elsewhere),
        ],
        ..Batch::default()
    };
    storage.wal().append(&batch).unwrap();
    let ctx = || GetEntriesContext::empty(false);
    let not_protobuf = storage.entries(1, 2, None, ctx()).unwrap_err();
    assert!(
        matches!(not_protobuf, raft::Error::CodecError(_)),
        "{not_protobuf:?}"
    );
    let misplaced = storage.entries(2, 3, None, ctx()).unwrap_err();
    assert!(
        matches!(misplaced, raft::Error::Store(StorageError::Other(_))),
        "{misplaced:?}"
    );
}

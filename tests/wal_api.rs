//! The WAL's public contract (issue 2): every bullet, on the real disk in temp dirs.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use raftwal::fs::{Fs, StdFs};
use raftwal::{Batch, Entry, EntryId, Error, HardState, Lsn, Options, SnapshotMeta, Wal};

fn options(segment_size: u64) -> Options {
    let mut o = Options::default();
    o.segment_size = segment_size;
    o.max_entry_size = 1 << 20;
    o
}

fn open(dir: &Path, o: &Options) -> Wal {
    Wal::open(dir, o.clone()).expect("open").0
}

fn ents(lo: u64, hi: u64, term: u64, size: usize) -> Vec<Entry> {
    (lo..hi)
        .map(|i| Entry::new(i, term, vec![(i % 251) as u8; size]))
        .collect()
}

/// Files in the log directory.
fn files(dir: &Path) -> usize {
    StdFs.list_dir(dir).unwrap().len()
}

fn batch(entries: Vec<Entry>) -> Batch {
    Batch {
        entries,
        ..Batch::default()
    }
}

/// Everything a reader can observe.
#[derive(Debug, PartialEq, Eq)]
struct View {
    first: u64,
    last: u64,
    compact_term: u64,
    entries: Vec<Entry>,
    hard_state: HardState,
    snapshot: SnapshotMeta,
}

fn view(wal: &Wal) -> View {
    let (first, last) = (wal.first_index(), wal.last_index());
    View {
        first,
        last,
        compact_term: wal.term(first - 1).unwrap(),
        entries: wal.entries(first, last + 1, u64::MAX).unwrap(),
        hard_state: wal.hard_state(),
        snapshot: wal.snapshot_meta(),
    }
}

#[test]
fn a_new_log_is_created_empty_and_reopens_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/b/log");
    let (wal, report) = Wal::open(&dir, Options::default()).unwrap();
    assert_eq!(
        (
            report.last_index,
            report.segments,
            report.torn_bytes_dropped
        ),
        (0, 1, 0)
    );
    assert_eq!(
        (wal.first_index(), wal.last_index(), wal.term(0).unwrap()),
        (1, 0, 0)
    );
    assert_eq!(wal.dir(), dir);
    assert!(wal.entries(1, 1, 0).unwrap().is_empty());
    drop(wal);
    let (wal, report) = Wal::open(&dir, Options::default()).unwrap();
    assert_eq!((report.last_index, report.segments), (0, 1));
    assert_eq!(
        view(&wal),
        View {
            first: 1,
            last: 0,
            compact_term: 0,
            entries: vec![],
            hard_state: HardState::default(),
            snapshot: SnapshotMeta::default()
        }
    );
}

#[test]
fn appended_entries_are_readable_before_sync_and_survive_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(64 << 10);
    let wal = open(tmp.path(), &o);
    let hs = HardState {
        term: 2,
        vote: 3,
        commit: 2,
    };
    let b = Batch {
        entries: ents(1, 4, 2, 100),
        hard_state: Some(hs),
        snapshot: None,
    };
    let lsn = wal.append(&b).unwrap();
    assert_eq!(
        wal.entries(1, 4, u64::MAX).unwrap(),
        b.entries,
        "readable before sync"
    );
    wal.sync(lsn).unwrap();
    let before = view(&wal);
    assert_eq!(before.hard_state, hs);
    drop(wal);
    let (wal, report) = Wal::open(tmp.path(), o).unwrap();
    assert_eq!(report.last_index, 3);
    assert_eq!(view(&wal), before);
}

/// Batches of large payloads are written from the caller's buffers (one gathered write), small
/// ones copied into the frame: both kinds, and a mix of sizes in one batch, read back the same
/// after a reopen, through segment rotations, and `verify` finds every frame whole.
#[test]
fn large_and_small_payloads_read_back_the_same_however_they_were_written() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(256 << 10);
    let wal = open(tmp.path(), &o);
    let mut next = 1;
    for round in 0..12 {
        let mut entries = match round % 3 {
            0 => ents(next, next + 4, 1, 100),      // small: copied
            1 => ents(next, next + 3, 1, 20 << 10), // large: gathered
            _ => ents(next, next + 8, 1, 10),       // a mix, large on average
        };
        if round % 3 == 2 {
            entries[3] = Entry::new(next + 3, 1, vec![0xC3; 64 << 10]);
        }
        next += entries.len() as u64;
        wal.append_sync(&batch(entries)).unwrap();
    }
    let before = view(&wal);
    drop(wal);
    let checked = raftwal::inspect::verify(tmp.path(), &o).unwrap();
    assert_eq!(
        (checked.last_index, checked.torn_bytes_dropped),
        (next - 1, 0)
    );
    let (wal, report) = Wal::open(tmp.path(), o).unwrap();
    assert_eq!(
        (report.last_index, report.torn_bytes_dropped),
        (next - 1, 0)
    );
    assert_eq!(view(&wal), before);
}

#[test]
fn lsns_increase_and_an_empty_batch_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = open(tmp.path(), &options(64 << 10));
    let a = wal.append(&batch(ents(1, 2, 1, 8))).unwrap();
    let b = wal.append(&batch(ents(2, 3, 1, 8))).unwrap();
    assert!(b > a);
    assert_eq!(wal.append(&Batch::default()).unwrap(), b);
    wal.sync(b).unwrap();
    wal.sync(a).unwrap();
    assert!(matches!(
        wal.sync(Lsn(b.0 + 10)),
        Err(Error::InvalidCall(_))
    ));
}

#[test]
fn bad_input_is_rejected_with_its_error_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(64 << 10);
    let wal = open(tmp.path(), &o);
    // Log: 1@1 2@1 3@2 4@2 5@2, commit 3, snapshot 2@1.
    let hs = HardState {
        term: 2,
        vote: 1,
        commit: 3,
    };
    let mut b = batch(ents(1, 3, 1, 10));
    b.entries.extend(ents(3, 6, 2, 10));
    b.hard_state = Some(hs);
    let last_good = wal.append(&b).unwrap();
    wal.save_snapshot_meta(SnapshotMeta {
        index: 2,
        term: 1,
        conf_state: Bytes::new(),
    })
    .unwrap();
    let last_good = Lsn(last_good.0 + 1);
    let before = view(&wal);

    let gap = batch(vec![Entry::new(7, 2, "x")]);
    let zero = batch(vec![Entry::new(0, 2, "x")]);
    let inner_gap = batch(vec![Entry::new(6, 2, "x"), Entry::new(8, 2, "y")]);
    let inner_regress = batch(vec![Entry::new(6, 3, "x"), Entry::new(7, 2, "y")]);
    let regress = batch(vec![Entry::new(6, 1, "x")]);
    let too_large = batch(vec![Entry::new(6, 2, vec![0u8; (1 << 20) + 1])]);
    let committed = batch(vec![Entry::new(3, 3, "x")]);
    let beyond = Batch {
        hard_state: Some(HardState { commit: 9, ..hs }),
        ..Batch::default()
    };
    let old_term = Batch {
        hard_state: Some(HardState { term: 1, ..hs }),
        ..Batch::default()
    };
    let old_snap = Batch {
        snapshot: Some(SnapshotMeta {
            index: 2,
            term: 1,
            conf_state: Bytes::new(),
        }),
        ..Batch::default()
    };
    type Check = fn(&Error) -> bool;
    let cases: Vec<(&str, Result<Lsn, Error>, Check)> = vec![
        ("index zero", wal.append(&zero), |e| {
            matches!(
                e,
                Error::Compacted {
                    index: 0,
                    first_index: 1
                }
            )
        }),
        ("gap", wal.append(&gap), |e| {
            matches!(
                e,
                Error::NotContiguous {
                    expected: 6,
                    found: 7
                }
            )
        }),
        ("gap inside", wal.append(&inner_gap), |e| {
            matches!(
                e,
                Error::NotContiguous {
                    expected: 7,
                    found: 8
                }
            )
        }),
        ("term down inside", wal.append(&inner_regress), |e| {
            matches!(
                e,
                Error::TermRegression {
                    index: 7,
                    term: 2,
                    prev_term: 3
                }
            )
        }),
        ("term down", wal.append(&regress), |e| {
            matches!(
                e,
                Error::TermRegression {
                    index: 6,
                    term: 1,
                    prev_term: 2
                }
            )
        }),
        (
            "too large",
            wal.append(&too_large),
            |e| matches!(e, Error::EntryTooLarge { index: 6, size, max } if *size == *max + 1),
        ),
        ("committed", wal.append(&committed), |e| {
            matches!(
                e,
                Error::BelowCommitted {
                    index: 3,
                    committed: 3
                }
            )
        }),
        ("commit beyond", wal.append(&beyond), |e| {
            matches!(
                e,
                Error::CommitBeyondLast {
                    commit: 9,
                    last_index: 5
                }
            )
        }),
        ("hard state term down", wal.append(&old_term), |e| {
            matches!(e, Error::InvalidCall(_))
        }),
        ("old snapshot", wal.append(&old_snap), |e| {
            matches!(
                e,
                Error::SnapshotOutOfDate {
                    index: 2,
                    current: 2
                }
            )
        }),
        ("truncate committed", wal.truncate_after(2), |e| {
            matches!(
                e,
                Error::BelowCommitted {
                    index: 3,
                    committed: 3
                }
            )
        }),
        ("purge wrong term", wal.purge_to(EntryId::new(2, 2)), |e| {
            matches!(e, Error::InvalidCall(_))
        }),
        (
            "snapshot past last",
            wal.save_snapshot_meta(SnapshotMeta {
                index: 6,
                term: 2,
                conf_state: Bytes::new(),
            }),
            |e| {
                matches!(
                    e,
                    Error::Unavailable {
                        index: 6,
                        last_index: 5
                    }
                )
            },
        ),
        (
            "snapshot not newer",
            wal.save_snapshot_meta(SnapshotMeta {
                index: 1,
                term: 1,
                conf_state: Bytes::new(),
            }),
            |e| {
                matches!(
                    e,
                    Error::SnapshotOutOfDate {
                        index: 1,
                        current: 2
                    }
                )
            },
        ),
    ];
    for (name, result, want) in cases {
        let err = result.expect_err(name);
        assert!(want(&err), "{name}: got {err:?}");
        assert_eq!(view(&wal), before, "{name} changed the log");
    }
    let next = wal.append(&batch(ents(6, 7, 2, 1))).unwrap();
    assert_eq!(next, Lsn(last_good.0 + 1), "a rejected write used no Lsn");
    drop(wal);
    let wal = open(tmp.path(), &o);
    assert_eq!(wal.last_index(), 6);
}

/// Also when the first opener created the log, whose lock it took before the directory got
/// its name.
#[test]
fn a_second_opener_is_locked_out_until_the_first_closes() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in [tmp.path().to_path_buf(), tmp.path().join("new/log")] {
        let wal = open(&dir, &Options::default());
        assert!(matches!(
            Wal::open(&dir, Options::default()),
            Err(Error::Locked { .. })
        ));
        drop(wal);
        Wal::open(&dir, Options::default()).unwrap();
    }
}

#[test]
fn invalid_options_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (size, max) in [(100, 1 << 10), (4 << 10, 0), (4 << 10, 1 << 33)] {
        let mut o = Options::default();
        o.segment_size = size;
        o.max_entry_size = max;
        let got = Wal::open(tmp.path(), o);
        assert!(
            matches!(got, Err(Error::InvalidOption { .. })),
            "{size} {max}"
        );
    }
}

#[test]
fn an_overlapping_append_replaces_the_conflicting_suffix() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(4 << 10);
    let wal = open(tmp.path(), &o);
    wal.append(&batch(ents(1, 40, 1, 100))).unwrap();
    let lsn = wal.append(&batch(ents(10, 12, 2, 7))).unwrap();
    wal.sync(lsn).unwrap();
    let mut want = ents(1, 10, 1, 100);
    want.extend(ents(10, 12, 2, 7));
    assert_eq!(wal.entries(1, 12, u64::MAX).unwrap(), want);
    assert!(matches!(
        wal.term(12),
        Err(Error::Unavailable {
            index: 12,
            last_index: 11
        })
    ));
    drop(wal);
    assert_eq!(open(tmp.path(), &o).entries(1, 12, u64::MAX).unwrap(), want);
}

#[test]
fn tiny_segments_rotate_without_losing_or_reordering_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(4 << 10);
    let wal = open(tmp.path(), &o);
    let mut all = Vec::new();
    for i in 1..=100u64 {
        // Sizes vary, some larger than a segment.
        let size = [1usize, 300, 900, 5000][i as usize % 4];
        let e = Entry::new(i, 1 + i / 40, vec![i as u8; size]);
        all.push(e.clone());
        let b = Batch {
            entries: vec![e],
            hard_state: Some(HardState {
                term: 1 + i / 40,
                vote: 0,
                commit: i - 1,
            }),
            snapshot: None,
        };
        wal.append(&b).unwrap();
    }
    let segments = files(tmp.path());
    assert!(segments > 20, "only {segments} files");
    assert_eq!(
        wal.entries(1, 101, u64::MAX).unwrap(),
        all,
        "sealed and active reads"
    );
    let hs = wal.hard_state();
    drop(wal);
    for use_mmap in [true, false] {
        let mut o = o.clone();
        o.use_mmap = use_mmap;
        let (wal, report) = Wal::open(tmp.path(), o).unwrap();
        assert_eq!(report.last_index, 100);
        assert_eq!(
            wal.entries(1, 101, u64::MAX).unwrap(),
            all,
            "mmap {use_mmap}"
        );
        assert_eq!(wal.hard_state(), hs);
        // max_size limits, but never below one entry.
        let some = wal.entries(5, 101, 2000).unwrap();
        assert_eq!(some, all[4..some.len() + 4]);
        assert!(!some.is_empty() && some.len() < 10);
    }
}

#[test]
fn reads_from_maps_and_from_plain_reads_agree_while_writing() {
    let tmp = tempfile::tempdir().unwrap();
    for use_mmap in [true, false] {
        let dir = tmp.path().join(format!("mmap-{use_mmap}"));
        let mut o = options(4 << 10);
        o.use_mmap = use_mmap;
        let wal = open(&dir, &o);
        for i in 1..=60 {
            wal.append(&batch(ents(i, i + 1, 1, 200))).unwrap();
            assert_eq!(
                wal.entries(1, i + 1, u64::MAX).unwrap(),
                ents(1, i + 1, 1, 200)
            );
        }
    }
}

#[test]
fn truncate_purge_snapshot_and_hard_state_persist_across_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(4 << 10);
    let wal = open(tmp.path(), &o);
    wal.append(&batch(ents(1, 101, 1, 200))).unwrap();
    wal.truncate_after(80).unwrap();
    wal.save_snapshot_meta(SnapshotMeta {
        index: 50,
        term: 1,
        conf_state: Bytes::from("cs"),
    })
    .unwrap();
    let lsn = wal.purge_to(EntryId::new(1, 50)).unwrap();
    wal.append(&Batch {
        hard_state: Some(HardState {
            term: 1,
            vote: 2,
            commit: 60,
        }),
        ..Batch::default()
    })
    .unwrap();
    wal.sync(lsn).unwrap();
    assert_eq!(
        (wal.first_index(), wal.last_index(), wal.term(50).unwrap()),
        (51, 80, 1)
    );
    assert!(matches!(
        wal.term(49),
        Err(Error::Compacted {
            index: 49,
            first_index: 51
        })
    ));
    assert!(matches!(
        wal.entries(50, 52, u64::MAX),
        Err(Error::Compacted { .. })
    ));
    assert!(matches!(
        wal.entries(51, 82, u64::MAX),
        Err(Error::Unavailable { .. })
    ));
    let before = view(&wal);
    drop(wal);
    let wal = open(tmp.path(), &o);
    assert_eq!(view(&wal), before);
}

#[test]
fn purge_past_the_end_empties_the_log_which_continues_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(4 << 10);
    let wal = open(tmp.path(), &o);
    wal.append(&batch(ents(1, 11, 1, 10))).unwrap();
    wal.purge_to(EntryId::new(3, 20)).unwrap();
    assert_eq!(
        (wal.first_index(), wal.last_index(), wal.term(20).unwrap()),
        (21, 20, 3)
    );
    assert!(matches!(
        wal.append(&batch(ents(20, 21, 3, 1))),
        Err(Error::Compacted { .. })
    ));
    wal.append(&batch(ents(21, 23, 3, 10))).unwrap();
    let before = view(&wal);
    drop(wal);
    assert_eq!(view(&open(tmp.path(), &o)), before);
}

#[test]
fn purged_segments_are_deleted_once_the_purge_is_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(4 << 10);
    let wal = open(tmp.path(), &o);
    for i in 1..=100 {
        wal.append(&batch(ents(i, i + 1, 1, 500))).unwrap();
    }
    let segments = || files(tmp.path());
    let before = segments();
    let lsn = wal.purge_to(EntryId::new(1, 90)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    wal.on_durable(lsn, Box::new(move |r| tx.send(r.is_ok()).unwrap()));
    assert!(rx.recv().unwrap());
    // The deletion runs on the syncer after the callback of the same sync; a later sync's
    // callback comes after it.
    let (tx, rx) = std::sync::mpsc::channel();
    let lsn = wal.append(&batch(ents(101, 102, 1, 1))).unwrap();
    wal.on_durable(lsn, Box::new(move |r| tx.send(r.is_ok()).unwrap()));
    assert!(rx.recv().unwrap());
    assert!(
        segments() * 3 <= before,
        "{} of {before} files left",
        segments()
    );
    let view_before = view(&wal);
    drop(wal);
    assert_eq!(view(&open(tmp.path(), &o)), view_before);
}

#[test]
fn an_installed_snapshot_resets_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(4 << 10);
    let wal = open(tmp.path(), &o);
    wal.append(&batch(ents(1, 30, 1, 300))).unwrap();
    let snap = SnapshotMeta {
        index: 10,
        term: 4,
        conf_state: Bytes::from("voters 1 2 3"),
    };
    let b = Batch {
        snapshot: Some(snap.clone()),
        entries: ents(11, 13, 4, 5),
        hard_state: Some(HardState {
            term: 4,
            vote: 0,
            commit: 10,
        }),
    };
    wal.append_sync(&b).unwrap();
    assert_eq!(
        (wal.first_index(), wal.last_index(), wal.term(10).unwrap()),
        (11, 12, 4)
    );
    assert_eq!(wal.snapshot_meta(), snap);
    let before = view(&wal);
    drop(wal);
    assert_eq!(view(&open(tmp.path(), &o)), before);
}

#[test]
fn four_syncing_threads_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(64 << 10);
    let wal = Arc::new(open(tmp.path(), &o));
    let next = Arc::new(Mutex::new(1u64));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (wal, next) = (Arc::clone(&wal), Arc::clone(&next));
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let lsn = {
                        let mut next = next.lock().unwrap();
                        let lsn = wal.append(&batch(ents(*next, *next + 1, 1, 64))).unwrap();
                        *next += 1;
                        lsn
                    };
                    wal.sync(lsn).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(Arc::into_inner(wal).unwrap());
    let wal = open(tmp.path(), &o);
    assert_eq!(wal.entries(1, 201, u64::MAX).unwrap(), ents(1, 201, 1, 64));
}

#[test]
fn durability_callbacks_fire_in_lsn_order_after_the_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = open(tmp.path(), &options(64 << 10));
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut lsns = Vec::new();
    for i in 1..=20 {
        lsns.push(wal.append(&batch(ents(i, i + 1, 1, 10))).unwrap());
    }
    // Registered out of order; they must run in Lsn order.
    for &lsn in lsns.iter().rev() {
        let order = Arc::clone(&order);
        wal.on_durable(
            lsn,
            Box::new(move |r| order.lock().unwrap().push((lsn, r.is_ok()))),
        );
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let never = Lsn(lsns[19].0 + 1);
    wal.on_durable(never, Box::new(move |r| tx.send(r).unwrap()));
    assert!(matches!(rx.recv().unwrap(), Err(Error::InvalidCall(_))));
    drop(wal);
    let want: Vec<(Lsn, bool)> = lsns.iter().map(|&lsn| (lsn, true)).collect();
    assert_eq!(
        *order.lock().unwrap(),
        want,
        "dropping the log runs every waiting callback, successfully and in Lsn order"
    );
}

#[test]
fn a_snapshot_bounds_the_log_like_the_commit_index() {
    let tmp = tempfile::tempdir().unwrap();
    let wal = open(tmp.path(), &options(64 << 10));
    let hs = HardState {
        term: 1,
        vote: 0,
        commit: 8,
    };
    wal.append(&Batch {
        entries: ents(1, 11, 1, 4),
        hard_state: Some(hs),
        snapshot: None,
    })
    .unwrap();
    let older = SnapshotMeta {
        index: 5,
        term: 1,
        conf_state: Bytes::new(),
    };
    let install = Batch {
        snapshot: Some(older.clone()),
        ..Batch::default()
    };
    assert!(matches!(
        wal.append(&install),
        Err(Error::CommitBeyondLast {
            commit: 8,
            last_index: 5
        })
    ));
    wal.save_snapshot_meta(SnapshotMeta { index: 9, ..older })
        .unwrap();
    assert!(matches!(
        wal.truncate_after(8),
        Err(Error::BelowCommitted {
            index: 9,
            committed: 9
        })
    ));
    assert!(matches!(
        wal.append(&batch(ents(9, 10, 2, 1))),
        Err(Error::BelowCommitted {
            index: 9,
            committed: 9
        })
    ));
    assert_eq!((wal.last_index(), wal.term(10).unwrap()), (10, 1));
}

#[test]
fn readers_see_whole_entries_while_a_writer_rotates_and_purges() {
    let tmp = tempfile::tempdir().unwrap();
    for use_mmap in [true, false] {
        let mut o = options(4 << 10);
        o.use_mmap = use_mmap;
        let wal = Arc::new(open(&tmp.path().join(format!("{use_mmap}")), &o));
        let done = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (wal, done) = (Arc::clone(&wal), Arc::clone(&done));
                std::thread::spawn(move || {
                    let mut reads = 0;
                    while done.load(Ordering::Acquire) == 0 || reads == 0 {
                        let (first, last) = (wal.first_index(), wal.last_index());
                        // A purge may pass `first` between the two calls: Compacted is fine.
                        match wal.entries(first, last + 1, u64::MAX) {
                            Ok(got) => {
                                let want = ents(first, first + got.len() as u64, 1, 600);
                                assert_eq!(got, want);
                            }
                            Err(Error::Compacted { .. }) => {}
                            Err(e) => panic!("{e:?}"),
                        }
                        reads += 1;
                    }
                })
            })
            .collect();
        for i in 1..=80 {
            wal.append(&batch(ents(i, i + 1, 1, 600))).unwrap();
            if i % 20 == 0 {
                wal.purge_to(EntryId::new(1, i - 10)).unwrap();
            }
        }
        done.store(1, Ordering::Release);
        for r in readers {
            r.join().unwrap();
        }
    }
}

#[test]
fn the_segment_size_may_change_between_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for (round, size) in [4u64 << 10, 64 << 10, 1 << 10, 4 << 10]
        .into_iter()
        .enumerate()
    {
        let wal = open(tmp.path(), &options(size));
        assert_eq!(wal.entries(1, all.len() as u64 + 1, u64::MAX).unwrap(), all);
        let lo = all.len() as u64 + 1;
        // Entries of 3000 bytes: larger than a 1 KiB segment, so each gets one sized to fit.
        let more = ents(lo, lo + 10, 1 + round as u64, 3000);
        wal.append_sync(&batch(more.clone())).unwrap();
        for e in more {
            wal.append(&batch(vec![Entry::new(e.index + 10, e.term, e.data)]))
                .unwrap();
        }
        all = wal.entries(1, wal.last_index() + 1, u64::MAX).unwrap();
        assert_eq!(all.len() as u64, lo + 19);
    }
}

/// The real disk, counting the data syncs of the first segment and making each one slow
/// enough that concurrent writers pile up behind it.
#[derive(Debug, Default)]
struct SlowSyncFs {
    syncs: Arc<AtomicU64>,
}

#[derive(Debug)]
struct SlowSyncFile {
    inner: Arc<dyn raftwal::fs::File>,
    /// Where this file's syncs are counted, if it is the first segment.
    syncs: Option<Arc<AtomicU64>>,
}

impl Fs for SlowSyncFs {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        StdFs.create_dir_all(dir)
    }
    fn open(
        &self,
        path: &Path,
        mode: raftwal::fs::OpenMode,
    ) -> std::io::Result<Arc<dyn raftwal::fs::File>> {
        let inner = StdFs.open(path, mode)?;
        let first = path
            .file_name()
            .is_some_and(|n| n == "0000000000000001.wal");
        let syncs = first.then(|| Arc::clone(&self.syncs));
        Ok(Arc::new(SlowSyncFile { inner, syncs }))
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        StdFs.remove_file(path)
    }

    fn remove_dir(&self, dir: &Path) -> std::io::Result<()> {
        StdFs.remove_dir(dir)
    }
    fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        StdFs.list_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        StdFs.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> std::io::Result<Box<dyn raftwal::fs::LockGuard>> {
        StdFs.lock(path)
    }
}

impl raftwal::fs::File for SlowSyncFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        if let Some(syncs) = &self.syncs {
            syncs.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        self.inner.sync_data()
    }
    fn len(&self) -> std::io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate_zeroed(&self, len: u64) -> std::io::Result<()> {
        self.inner.allocate_zeroed(len)
    }
    fn map_readonly(&self, len: u64) -> std::io::Result<Bytes> {
        self.inner.map_readonly(len)
    }
}

#[test]
fn a_lone_writer_syncs_each_write_and_concurrent_writers_share_syncs() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = Arc::new(SlowSyncFs::default());
    let syncs = Arc::clone(&fs.syncs);
    let (wal, _) = Wal::open_with_fs(fs, tmp.path(), options(1 << 20)).unwrap();
    let before = syncs.load(Ordering::SeqCst);
    for i in 1..=20 {
        wal.append_sync(&batch(ents(i, i + 1, 1, 10))).unwrap();
    }
    assert_eq!(
        syncs.load(Ordering::SeqCst) - before,
        20,
        "one sync per lone write, no more"
    );

    let wal = Arc::new(wal);
    let next = Arc::new(Mutex::new(21u64));
    let before = syncs.load(Ordering::SeqCst);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (wal, next) = (Arc::clone(&wal), Arc::clone(&next));
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let lsn = {
                        let mut next = next.lock().unwrap();
                        *next += 1;
                        wal.append(&batch(ents(*next - 1, *next, 1, 10))).unwrap()
                    };
                    wal.sync(lsn).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let shared = syncs.load(Ordering::SeqCst) - before;
    assert!(
        shared < 75,
        "100 synced writes from 4 threads took {shared} syncs"
    );
    assert_eq!(wal.last_index(), 120);
}

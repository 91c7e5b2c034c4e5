//! `RaftLog` against spec section 5.2 (etcd `log_test.go` plus derived rows). Where etcd
//! panics, the log returns a typed error and stays unchanged.

mod log_common;

use log_common::{Id, Ids, e, ents, ents_term_is_index, ids, snap};
use raftwal::{Entry, EntryId, Error, LogConfig, MemStorage, RaftLog};

const NO_LIMIT: u64 = u64::MAX;

/// Whether an error is the one a case expects.
type ErrorCheck = fn(&Error) -> bool;

fn log_over(storage: &MemStorage) -> RaftLog<MemStorage> {
    RaftLog::new(storage.clone()).unwrap()
}

/// A fresh log with `entries` appended to its unstable tail.
fn fresh_with(entries: Ids) -> RaftLog<MemStorage> {
    let mut log = log_over(&MemStorage::new());
    log.append(&ents(entries)).unwrap();
    log
}

fn all(log: &RaftLog<MemStorage>) -> Vec<(u64, u64)> {
    ids(&log.all_entries().unwrap())
}

#[test]
fn find_conflict() {
    let log = fresh_with(&[(1, 1), (2, 2), (3, 3)]);
    let rows: &[(&str, Ids, u64)] = &[
        ("L01", &[], 0),
        ("L02", &[(1, 1), (2, 2), (3, 3)], 0),
        ("L03", &[(2, 2), (3, 3)], 0),
        ("L04", &[(3, 3)], 0),
        ("L06", &[(2, 2), (3, 3), (4, 4), (5, 5)], 4),
        ("L07", &[(3, 3), (4, 4), (5, 4)], 4),
        ("L08", &[(4, 4), (5, 4)], 4),
        ("L09", &[(1, 4), (2, 4)], 1),
        ("L11", &[(3, 1), (4, 2), (5, 4), (6, 4)], 3),
    ];
    for &(id, es, want) in rows {
        // Spec: 5.2 L01-L11
        assert_eq!(log.find_conflict(&ents(es)).unwrap(), want, "{id}");
    }
}

#[test]
fn find_conflict_by_term() {
    let a = MemStorage::new();
    a.append(&ents(&[(1, 2), (2, 2), (3, 5), (4, 5), (5, 5)]))
        .unwrap();
    let b = MemStorage::new();
    b.apply_snapshot(snap(10, 3)).unwrap();
    b.append(&ents(&[(11, 3), (12, 3), (13, 4), (14, 4), (15, 4)]))
        .unwrap();
    let (a, b) = (log_over(&a), log_over(&b));
    // (id, log, index, term, result (index, term))
    let rows: &[(&str, &RaftLog<MemStorage>, u64, u64, Id)] = &[
        ("L12", &a, 100, 2, (100, 0)),
        ("L13", &a, 5, 6, (5, 5)),
        ("L14", &a, 5, 5, (5, 5)),
        ("L16", &a, 5, 2, (2, 2)),
        ("L17", &a, 5, 1, (0, 0)),
        ("L18", &a, 1, 2, (1, 2)),
        ("L19", &a, 1, 1, (0, 0)),
        ("L21", &b, 30, 3, (30, 0)),
        ("L22", &b, 14, 9, (14, 4)),
        ("L23", &b, 14, 4, (14, 4)),
        ("L24", &b, 14, 3, (12, 3)),
        ("L26", &b, 11, 5, (11, 3)),
        ("L27", &b, 10, 5, (10, 3)),
        ("L28", &b, 10, 3, (10, 3)),
        ("L29", &b, 10, 2, (9, 0)),
        ("L31", &b, 4, 2, (4, 0)),
        ("L32", &b, 0, 0, (0, 0)),
    ];
    for &(id, log, index, term, want) in rows {
        // Spec: 5.2 L12-L32
        assert_eq!(
            log.find_conflict_by_term(index, term).unwrap(),
            want,
            "{id}"
        );
    }
}

#[test]
fn is_up_to_date() {
    let log = fresh_with(&[(1, 1), (2, 2), (3, 3)]);
    // (id, index, term, result)
    let rows = [
        ("L33", 2, 4, true),
        ("L34", 3, 4, true),
        ("L36", 2, 2, false),
        ("L37", 3, 2, false),
        ("L38", 4, 2, false),
        ("L39", 2, 3, false),
        ("L41", 4, 3, true),
    ];
    for (id, index, term, want) in rows {
        // Spec: 5.2 L33-L41
        assert_eq!(
            log.is_up_to_date(EntryId::new(term, index)).unwrap(),
            want,
            "{id}"
        );
    }
}

#[test]
fn append() {
    // (id, ents, returned last index, log, unstable offset)
    let rows: &[(&str, Ids, u64, Ids, u64)] = &[
        ("L42", &[], 2, &[(1, 1), (2, 2)], 3),
        ("L43", &[(3, 2)], 3, &[(1, 1), (2, 2), (3, 2)], 3),
        ("L44", &[(1, 2)], 1, &[(1, 2)], 1),
    ];
    for &(id, es, want_last, want_log, want_offset) in rows {
        // Spec: 5.2 L42-L44
        let storage = MemStorage::new();
        storage.append(&ents(&[(1, 1), (2, 2)])).unwrap();
        let mut log = log_over(&storage);
        assert_eq!(log.append(&ents(es)).unwrap(), want_last, "{id}");
        assert_eq!(ids(&log.entries(1, NO_LIMIT).unwrap()), want_log, "{id}");
        assert_eq!(log.unstable().offset(), want_offset, "{id}");
    }
}

#[test]
fn bad_appends_are_typed_errors_and_change_nothing() {
    let mut log = fresh_with(&[(1, 1), (2, 2), (3, 3)]);
    log.commit_to(2).unwrap();
    let cases: [(Ids, ErrorCheck); 5] = [
        (&[(2, 3)], |e| {
            matches!(
                e,
                Error::BelowCommitted {
                    index: 2,
                    committed: 2
                }
            )
        }),
        (&[(0, 3)], |e| {
            matches!(e, Error::BelowCommitted { index: 0, .. })
        }),
        (&[(5, 3)], |e| {
            matches!(
                e,
                Error::NotContiguous {
                    expected: 4,
                    found: 5
                }
            )
        }),
        (&[(4, 2)], |e| {
            matches!(
                e,
                Error::TermRegression {
                    index: 4,
                    term: 2,
                    prev_term: 3
                }
            )
        }),
        (&[(4, 3), (6, 3)], |e| {
            matches!(
                e,
                Error::NotContiguous {
                    expected: 5,
                    found: 6
                }
            )
        }),
    ];
    for (es, is_expected) in cases {
        let err = log.append(&ents(es)).unwrap_err();
        assert!(is_expected(&err), "{es:?}: {err:?}");
        assert_eq!(all(&log), [(1, 1), (2, 2), (3, 3)]);
        assert_eq!(log.unstable().offset_in_progress(), 1);
    }
}

#[test]
fn maybe_append() {
    // (id, prev (index, term), commit, ents, Some(last new) or None, committed after)
    type Row<'a> = (&'a str, (u64, u64), u64, Ids<'a>, Option<u64>, u64);
    let rows: &[Row] = &[
        ("L46", (3, 2), 3, &[(4, 4)], None, 1),
        ("L47", (4, 3), 3, &[(5, 4)], None, 1),
        ("L48", (3, 3), 3, &[], Some(3), 3),
        ("L49", (3, 3), 4, &[], Some(3), 3),
        ("L51", (3, 3), 0, &[], Some(3), 1),
        ("L52", (0, 0), 3, &[], Some(0), 1),
        ("L53", (3, 3), 3, &[(4, 4)], Some(4), 3),
        ("L54", (3, 3), 4, &[(4, 4)], Some(4), 4),
        ("L56", (3, 3), 5, &[(4, 4), (5, 4)], Some(5), 5),
        ("L57", (2, 2), 3, &[(3, 4)], Some(3), 3),
        ("L58", (1, 1), 3, &[(2, 4)], Some(2), 2),
    ];
    for &(id, (pi, pt), commit, es, want, want_commit) in rows {
        // Spec: 5.2 L46-L58
        let mut log = fresh_with(&[(1, 1), (2, 2), (3, 3)]);
        log.commit_to(1).unwrap();
        let got = log
            .maybe_append(EntryId::new(pt, pi), commit, &ents(es))
            .unwrap();
        assert_eq!((got, log.committed()), (want, want_commit), "{id}");
        if got.is_some() && !es.is_empty() {
            let log_ents = all(&log);
            assert_eq!(&log_ents[log_ents.len() - es.len()..], es, "{id}");
        }
    }
}

#[test]
fn maybe_append_never_overwrites_a_committed_entry() {
    // Spec: 5.2 L59 (etcd panics)
    let mut log = fresh_with(&[(1, 1), (2, 2), (3, 3)]);
    log.commit_to(1).unwrap();
    let err = log
        .maybe_append(EntryId::new(0, 0), 3, &ents(&[(1, 4)]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BelowCommitted {
                index: 1,
                committed: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        (all(&log), log.committed()),
        (vec![(1, 1), (2, 2), (3, 3)], 1)
    );
}

/// The term before a batch may live in storage, the rest of the batch in the unstable tail:
/// both are checked, and a rejected batch changes nothing.
#[test]
fn a_batch_after_stable_entries_is_checked_against_storage_and_within() {
    let storage = MemStorage::new();
    storage.append(&ents(&[(1, 1), (2, 2), (3, 3)])).unwrap();
    let mut log = log_over(&storage);
    let first = log.append(&ents(&[(4, 2)])).unwrap_err();
    assert!(
        matches!(
            first,
            Error::TermRegression {
                index: 4,
                term: 2,
                prev_term: 3
            }
        ),
        "{first:?}"
    );
    let inner = log.append(&ents(&[(4, 3), (5, 4), (6, 3)])).unwrap_err();
    assert!(
        matches!(
            inner,
            Error::TermRegression {
                index: 6,
                term: 3,
                prev_term: 4
            }
        ),
        "{inner:?}"
    );
    assert_eq!(all(&log), [(1, 1), (2, 2), (3, 3)]);
    assert!(log.unstable().entries().is_empty());
}

#[test]
fn maybe_append_rejects_entries_that_do_not_follow_prev() {
    let mut log = fresh_with(&[(1, 1), (2, 2), (3, 3)]);
    let gap = log.maybe_append(EntryId::new(3, 3), 3, &ents(&[(5, 3)]));
    assert!(matches!(
        gap,
        Err(Error::NotContiguous {
            expected: 4,
            found: 5
        })
    ));
    let back = log.maybe_append(EntryId::new(3, 3), 3, &ents(&[(4, 2)]));
    assert!(matches!(back, Err(Error::TermRegression { index: 4, .. })));
    assert_eq!(
        (all(&log), log.committed()),
        (vec![(1, 1), (2, 2), (3, 3)], 0)
    );
}

#[test]
fn maybe_append_of_a_stale_prefix_does_not_truncate() {
    // Spec: 5.2 L61
    let mut log = fresh_with(&[(1, 1), (2, 2), (3, 3), (4, 3), (5, 3)]);
    log.commit_to(1).unwrap();
    let got = log
        .maybe_append(EntryId::new(1, 1), 5, &ents(&[(2, 2)]))
        .unwrap();
    assert_eq!(got, Some(2));
    assert_eq!(all(&log), [(1, 1), (2, 2), (3, 3), (4, 3), (5, 3)]);
    assert_eq!(log.committed(), 2);
}

#[test]
fn compaction_side_effects() {
    // Spec: 5.2 L62
    let storage = MemStorage::new();
    storage.append(&ents_term_is_index(1, 751)).unwrap();
    let mut log = log_over(&storage);
    log.append(&ents_term_is_index(751, 1001)).unwrap();
    assert!(log.maybe_commit(EntryId::new(1000, 1000)).unwrap());
    log.applied_to(1000, 0).unwrap();
    storage.compact(500).unwrap();
    assert_eq!(log.last_index().unwrap(), 1000);
    for j in 500..=1000 {
        assert_eq!(log.term(j).unwrap(), j);
        assert!(log.match_term(EntryId::new(j, j)).unwrap());
    }
    let next = log.next_unstable_ents();
    assert_eq!((next.len(), next[0].index), (250, 751));
    log.append(&[e(1001, 1001)]).unwrap();
    assert_eq!(log.last_index().unwrap(), 1001);
    assert_eq!(log.entries(1001, NO_LIMIT).unwrap().len(), 1);
}

/// The common setup of L63-L105: storage snapshot 3@1 plus [4@1], the log appends
/// [4@1 5@1 6@1], 4 is stable, 5 committed.
fn committed_setup(max_applying_size: u64) -> RaftLog<MemStorage> {
    let storage = MemStorage::new();
    storage.apply_snapshot(snap(3, 1)).unwrap();
    storage.append(&ents(&[(4, 1)])).unwrap();
    let config = LogConfig {
        max_applying_size,
        ..LogConfig::default()
    };
    let mut log = RaftLog::with_config(storage, config).unwrap();
    assert_eq!((log.unstable().offset(), log.committed()), (5, 3));
    log.append(&ents(&[(4, 1), (5, 1), (6, 1)])).unwrap();
    assert_eq!(log.unstable().offset(), 4);
    log.stable_to(EntryId::new(1, 4));
    assert_eq!(log.unstable().offset(), 5);
    assert!(log.maybe_commit(EntryId::new(1, 5)).unwrap());
    log
}

#[test]
fn next_committed_ents() {
    // (id, applied, applying, allow_unstable, snapshot pending, has_next, next)
    type Row<'a> = (&'a str, u64, u64, bool, bool, bool, Ids<'a>);
    let rows: &[Row] = &[
        ("L63", 3, 3, true, false, true, &[(4, 1), (5, 1)]),
        ("L64", 3, 4, true, false, true, &[(5, 1)]),
        ("L66", 4, 4, true, false, true, &[(5, 1)]),
        ("L67", 4, 5, true, false, false, &[]),
        ("L68", 5, 5, true, false, false, &[]),
        ("L69", 3, 3, false, false, true, &[(4, 1)]),
        ("L71", 3, 5, false, false, false, &[]),
        ("L72", 4, 4, false, false, false, &[]),
        ("L73", 4, 5, false, false, false, &[]),
        ("L74", 5, 5, false, false, false, &[]),
        ("L76", 3, 3, true, true, false, &[]),
    ];
    for &(id, applied, applying, allow, snapshot, want_has, want) in rows {
        // Spec: 5.2 L63-L76
        let mut log = committed_setup(NO_LIMIT);
        log.applied_to(applied, 0).unwrap();
        log.accept_applying(applying, 0, allow).unwrap();
        // etcd forces the paused flag off here; a repeated applied_to re-evaluates it.
        log.applied_to(applied, 0).unwrap();
        assert!(!log.applying_paused(), "{id}");
        if snapshot {
            log.restore(snap(4, 1)).unwrap();
        }
        assert_eq!(log.has_next_committed_ents(allow), want_has, "{id}");
        assert_eq!(ids(&log.next_committed_ents(allow).unwrap()), want, "{id}");
    }
}

#[test]
fn accept_applying() {
    // (id, index, allow_unstable, size, paused)
    let rows = [
        ("L77", 3, true, 99, true),
        ("L78", 3, true, 100, true),
        ("L79", 3, true, 101, true),
        ("L81", 4, true, 100, true),
        ("L82", 4, true, 101, true),
        ("L83", 5, true, 99, false),
        ("L84", 5, true, 100, true),
        ("L86", 3, false, 99, true),
        ("L87", 3, false, 100, true),
        ("L88", 3, false, 101, true),
        ("L89", 4, false, 99, false),
        ("L91", 4, false, 101, true),
        ("L92", 5, false, 99, false),
        ("L93", 5, false, 100, true),
        ("L94", 5, false, 101, true),
    ];
    for (id, index, allow, size, paused) in rows {
        // Spec: 5.2 L77-L94
        let mut log = committed_setup(100);
        log.applied_to(3, 0).unwrap();
        log.accept_applying(index, size, allow).unwrap();
        assert_eq!(log.applying_paused(), paused, "{id}");
        let has_next = log.has_next_committed_ents(allow);
        assert!(!has_next, "{id}: paused or all handed out");
    }
}

#[test]
fn applied_to() {
    // (id, index, size, applying size after, paused)
    let rows = [
        ("L96", 4, 5, 100, true),
        ("L97", 4, 6, 99, false),
        ("L98", 5, 4, 101, true),
        ("L99", 5, 5, 100, true),
        ("L101", 4, 105, 0, false),
        ("L102", 4, 106, 0, false),
    ];
    for (id, index, size, want_size, paused) in rows {
        // Spec: 5.2 L96-L102
        let mut log = committed_setup(100);
        log.applied_to(3, 0).unwrap();
        log.accept_applying(5, 105, false).unwrap();
        log.applied_to(index, size).unwrap();
        assert_eq!((log.applied(), log.applying()), (index, 5), "{id}");
        assert_eq!(
            (log.applying_size(), log.applying_paused()),
            (want_size, paused),
            "{id}"
        );
    }
}

#[test]
fn apply_indexes_out_of_range_are_typed_errors() {
    let mut log = committed_setup(100);
    log.applied_to(3, 0).unwrap();
    // Spec: 5.2 L103 (etcd panics)
    assert!(matches!(log.applied_to(6, 0), Err(Error::InvalidCall(_))));
    // Spec: 5.2 L104 (etcd panics)
    assert!(matches!(log.applied_to(2, 0), Err(Error::InvalidCall(_))));
    // Spec: 5.2 L105 (etcd panics)
    assert!(matches!(
        log.accept_applying(6, 1, true),
        Err(Error::InvalidCall(_))
    ));
    assert_eq!(
        (log.applied(), log.applying(), log.applying_size()),
        (3, 3, 0)
    );
}

#[test]
fn next_unstable_ents() {
    // (id, entries in storage, next unstable, offset after)
    let rows: &[(&str, usize, Ids, u64)] =
        &[("L106", 2, &[], 3), ("L107", 0, &[(1, 1), (2, 2)], 3)];
    let all_ents = ents(&[(1, 1), (2, 2)]);
    for &(id, stored, want, want_offset) in rows {
        // Spec: 5.2 L106-L107
        let storage = MemStorage::new();
        storage.append(&all_ents[..stored]).unwrap();
        let mut log = log_over(&storage);
        log.append(&all_ents[stored..]).unwrap();
        let next = log.next_unstable_ents().to_vec();
        assert_eq!(ids(&next), want, "{id}");
        if let Some(last) = next.last() {
            log.stable_to(last.id());
        }
        assert_eq!(log.unstable().offset(), want_offset, "{id}");
    }
}

#[test]
fn commit_to() {
    for (id, to, want) in [("L108", 3, 3), ("L109", 1, 2)] {
        // Spec: 5.2 L108-L109
        let mut log = fresh_with(&[(1, 1), (2, 2), (3, 3)]);
        log.commit_to(2).unwrap();
        log.commit_to(to).unwrap();
        assert_eq!(log.committed(), want, "{id}");
    }
    let mut log = fresh_with(&[(1, 1), (2, 2), (3, 3)]);
    let err = log.commit_to(4).unwrap_err();
    assert!(matches!(
        err,
        Error::CommitBeyondLast {
            commit: 4,
            last_index: 3
        }
    ));
    assert_eq!(log.committed(), 0);
}

#[test]
fn maybe_commit() {
    let mut log = fresh_with(&[(1, 1), (2, 2), (3, 3)]);
    // Spec: 5.2 L111
    assert!(!log.maybe_commit(EntryId::new(0, 3)).unwrap());
    // Spec: 5.2 L112
    assert!(!log.maybe_commit(EntryId::new(2, 3)).unwrap());
    assert_eq!(log.committed(), 0);
    // Spec: 5.2 L113
    assert!(log.maybe_commit(EntryId::new(3, 3)).unwrap());
    assert_eq!(log.committed(), 3);
    assert!(!log.maybe_commit(EntryId::new(3, 3)).unwrap());
}

#[test]
fn stable_to() {
    for (id, (i, t), want) in [
        ("L114", (1, 1), 2),
        ("L116", (2, 1), 1),
        ("L117", (3, 1), 1),
    ] {
        // Spec: 5.2 L114-L117
        let mut log = fresh_with(&[(1, 1), (2, 2)]);
        log.stable_to(EntryId::new(t, i));
        assert_eq!(log.unstable().offset(), want, "{id}");
    }
}

#[test]
fn stable_to_with_a_storage_snapshot() {
    // (id, append 6@2 first, stable_to (index, term), offset after)
    let rows = [
        ("L118", false, (6, 2), 6),
        ("L119", false, (5, 2), 6),
        ("L121", false, (6, 3), 6),
        ("L122", false, (5, 3), 6),
        ("L123", false, (4, 3), 6),
        ("L124", true, (6, 2), 7),
        ("L126", true, (4, 2), 6),
        ("L127", true, (6, 3), 6),
        ("L128", true, (5, 3), 6),
        ("L129", true, (4, 3), 6),
    ];
    for (id, new_ents, (i, t), want) in rows {
        // Spec: 5.2 L118-L129
        let storage = MemStorage::new();
        storage.apply_snapshot(snap(5, 2)).unwrap();
        let mut log = log_over(&storage);
        assert_eq!(log.unstable().offset(), 6);
        if new_ents {
            log.append(&[e(6, 2)]).unwrap();
        }
        log.stable_to(EntryId::new(t, i));
        assert_eq!(log.unstable().offset(), want, "{id}");
    }
}

#[test]
fn compaction_and_all_entries() {
    let storage = MemStorage::new();
    storage.append(&ents_term_is_index(1, 1001)).unwrap();
    let mut log = log_over(&storage);
    assert!(!log.maybe_commit(EntryId::new(0, 1000)).unwrap());
    assert_eq!(log.committed(), 0);
    log.applied_to(0, 0).unwrap();
    // Spec: 5.2 L131
    for (compact, want) in [(300, 700), (500, 500), (800, 200), (900, 100)] {
        storage.compact(compact).unwrap();
        assert_eq!(log.all_entries().unwrap().len(), want, "compact {compact}");
    }
    // Spec: 5.2 L132
    let storage = MemStorage::new();
    storage.append(&ents_term_is_index(1, 1001)).unwrap();
    let log = log_over(&storage);
    storage.compact(300).unwrap();
    assert_eq!(log.all_entries().unwrap().len(), 700);
    assert!(matches!(
        storage.compact(299),
        Err(Error::Compacted { index: 299, .. })
    ));
    assert_eq!(log.all_entries().unwrap().len(), 700);
}

#[test]
fn restore_at_construction() {
    // Spec: 5.2 L133
    let storage = MemStorage::new();
    storage.apply_snapshot(snap(1000, 1000)).unwrap();
    let log = log_over(&storage);
    assert!(log.all_entries().unwrap().is_empty());
    assert_eq!(log.first_index().unwrap(), 1001);
    assert_eq!((log.committed(), log.unstable().offset()), (1000, 1001));
    assert_eq!(log.term(1000).unwrap(), 1000);
}

#[test]
fn slice_bounds() {
    let storage = MemStorage::new();
    storage.apply_snapshot(snap(100, 0)).unwrap();
    let mut log = log_over(&storage);
    log.append(&ents_term_is_index(101, 201)).unwrap();
    assert_eq!(log.first_index().unwrap(), 101);
    // Spec: 5.2 L134
    assert!(matches!(
        log.slice(99, 102, NO_LIMIT),
        Err(Error::Compacted { index: 99, .. })
    ));
    // Spec: 5.2 L136-L139
    for (lo, hi) in [(101, 101), (151, 151), (200, 200), (201, 201)] {
        assert!(
            log.slice(lo, hi, NO_LIMIT).unwrap().is_empty(),
            "[{lo}, {hi})"
        );
    }
    // Spec: 5.2 L141 (etcd panics)
    assert!(matches!(
        log.slice(202, 202, NO_LIMIT),
        Err(Error::Unavailable { .. })
    ));
}

#[test]
fn term() {
    let storage = MemStorage::new();
    storage.apply_snapshot(snap(100, 1)).unwrap();
    let mut log = log_over(&storage);
    let tail: Vec<Entry> = (1..100).map(|k| e(100 + k, k)).collect();
    log.append(&tail).unwrap();
    // Spec: 5.2 L142
    assert!(matches!(
        log.term(99),
        Err(Error::Compacted {
            index: 99,
            first_index: 101
        })
    ));
    // Spec: 5.2 L143-L144
    assert_eq!((log.term(100).unwrap(), log.term(150).unwrap()), (1, 50));
    // Spec: 5.2 L146
    assert!(matches!(
        log.term(200),
        Err(Error::Unavailable {
            index: 200,
            last_index: 199
        })
    ));
}

#[test]
fn term_with_an_unstable_snapshot() {
    let storage = MemStorage::new();
    storage.apply_snapshot(snap(100, 1)).unwrap();
    let mut log = log_over(&storage);
    log.restore(snap(105, 1)).unwrap();
    // Spec: 5.2 L147-L149
    for index in [100, 101, 104] {
        assert!(
            matches!(log.term(index), Err(Error::Compacted { .. })),
            "{index}"
        );
    }
    assert_eq!(log.term(105).unwrap(), 1);
    // Spec: 5.2 L151
    assert!(matches!(log.term(106), Err(Error::Unavailable { .. })));
}

/// Storage snapshot 100@0 plus entries 101..=149, log tail 150..=199; term = index.
fn slice_setup() -> RaftLog<MemStorage> {
    let storage = MemStorage::new();
    storage.apply_snapshot(snap(100, 0)).unwrap();
    storage.append(&ents_term_is_index(101, 150)).unwrap();
    let mut log = log_over(&storage);
    log.append(&ents_term_is_index(150, 200)).unwrap();
    assert_eq!(log.unstable().offset(), 150);
    log
}

#[test]
fn slice() {
    let log = slice_setup();
    let s = e(1, 1).size();
    // (id, lo, hi, max_size, result [a, b))
    let rows = [
        ("L156", 101, 101, NO_LIMIT, (101, 101)),
        ("L157", 101, 149, NO_LIMIT, (101, 149)),
        ("L158", 101, 150, NO_LIMIT, (101, 150)),
        ("L159", 101, 151, NO_LIMIT, (101, 151)),
        ("L161", 149, 150, NO_LIMIT, (149, 150)),
        ("L162", 149, 151, NO_LIMIT, (149, 151)),
        ("L163", 149, 200, NO_LIMIT, (149, 200)),
        ("L164", 150, 151, NO_LIMIT, (150, 151)),
        ("L166", 199, 200, NO_LIMIT, (199, 200)),
        ("L167", 101, 200, 0, (101, 102)),
        ("L168", 149, 151, 0, (149, 150)),
        ("L169", 150, 200, 0, (150, 151)),
        ("L171", 101, 200, s - 1, (101, 102)),
        ("L172", 149, 151, s - 1, (149, 150)),
        ("L173", 150, 200, s - 1, (150, 151)),
        ("L174", 101, 200, s, (101, 102)),
        ("L176", 150, 200, s, (150, 151)),
        ("L177", 101, 200, s + 1, (101, 102)),
        ("L178", 149, 151, s + 1, (149, 150)),
        ("L179", 150, 200, s + 1, (150, 151)),
        ("L181", 148, 151, 2 * s, (148, 150)),
        ("L182", 149, 151, 2 * s, (149, 151)),
        ("L183", 150, 200, 2 * s, (150, 152)),
        ("L184", 148, 151, 3 * s - 1, (148, 150)),
    ];
    for (id, lo, hi, max, (a, b)) in rows {
        // Spec: 5.2 L156-L184
        assert_eq!(
            log.slice(lo, hi, max).unwrap(),
            ents_term_is_index(a, b),
            "{id}"
        );
    }
    // Spec: 5.2 L152-L153
    for lo in [99, 100] {
        assert!(
            matches!(log.slice(lo, 101, NO_LIMIT), Err(Error::Compacted { .. })),
            "{lo}"
        );
    }
    // Spec: 5.2 L154 (etcd panics)
    assert!(matches!(
        log.slice(150, 149, NO_LIMIT),
        Err(Error::InvalidCall(_))
    ));
}

/// Storage snapshot 47@0 plus entries 48..=56, log tail 57..=66; term = index.
fn scan_setup() -> RaftLog<MemStorage> {
    let storage = MemStorage::new();
    storage.apply_snapshot(snap(47, 0)).unwrap();
    storage.append(&ents_term_is_index(48, 57)).unwrap();
    let mut log = log_over(&storage);
    log.append(&ents_term_is_index(57, 67)).unwrap();
    log
}

#[test]
fn scan_pages_concatenate_to_the_slice() {
    // Spec: 5.2 L186
    let log = scan_setup();
    let s = e(1, 1).size();
    for page_size in [0, 1, 10, 100, s, s + 1] {
        for lo in 48..67 {
            for hi in lo..=67 {
                let mut got = Vec::new();
                log.scan(lo, hi, page_size, |page| {
                    assert!(page.len() == 1 || raftwal::entries_size(page) <= page_size);
                    got.extend_from_slice(page);
                    Ok::<(), Error>(())
                })
                .unwrap();
                assert_eq!(
                    got,
                    log.slice(lo, hi, NO_LIMIT).unwrap(),
                    "{page_size} [{lo}, {hi})"
                );
            }
        }
    }
}

#[test]
fn scan_stops_at_the_visitors_error() {
    // Spec: 5.2 L187
    let log = scan_setup();
    let mut calls = 0;
    let result = log.scan(48, 57, 0, |_| {
        calls += 1;
        match calls {
            2 => Err(Error::InvalidCall("stop")),
            _ => Ok(()),
        }
    });
    assert!(matches!(result, Err(Error::InvalidCall("stop"))));
    assert_eq!(calls, 2);
}

#[test]
fn scan_pages_fill_the_page_size() {
    // Spec: 5.2 L188
    let log = scan_setup();
    let s = e(1, 1).size();
    let mut pages = Vec::new();
    log.scan(48, 58, 2 * s, |page| {
        pages.push((page.len(), raftwal::entries_size(page)));
        Ok::<(), Error>(())
    })
    .unwrap();
    assert_eq!(pages, vec![(2, 2 * s); 5]);
}

#[test]
fn a_zero_apply_budget_is_refused() {
    // Spec 6.14: etcd panics the first time there is something to apply.
    let config = LogConfig {
        max_applying_size: 0,
        ..LogConfig::default()
    };
    let err = RaftLog::with_config(MemStorage::new(), config).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                name: "max_applying_size",
                ..
            }
        ),
        "{err:?}"
    );
}

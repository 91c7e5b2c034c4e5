//! `Unstable` against spec section 5.1 (etcd `log_unstable_test.go` plus derived rows).

mod log_common;

use log_common::{Id, Ids, ents, ids, snap};
use raftwal::{EntryId, Error, Unstable};

/// `u{entries, off, oip, snap, sip}` from the spec's notation.
fn u(entries: Ids, off: u64, oip: u64, snapshot: Option<Id>, sip: bool) -> Unstable {
    let snapshot = snapshot.map(|(i, t)| snap(i, t));
    Unstable::from_parts(snapshot, ents(entries), off, oip, sip).expect("a valid spec state")
}

/// A row of the first/last index tables: (id, entries, offset, snapshot, result).
type IndexRow<'a> = (&'a str, Ids<'a>, u64, Option<Id>, Option<u64>);
/// A row of the term table: (id, entries, offset, snapshot, index, result).
type TermRow<'a> = (&'a str, Ids<'a>, u64, Option<Id>, u64, Option<u64>);

/// `u` with nothing in progress.
fn u0(entries: Ids, off: u64, snapshot: Option<Id>) -> Unstable {
    u(entries, off, off, snapshot, false)
}

#[test]
fn maybe_first_index() {
    // (id, entries, offset, snapshot, result)
    let rows: &[IndexRow] = &[
        ("U01", &[(5, 1)], 5, None, None),
        ("U02", &[], 0, None, None),
        ("U03", &[(5, 1)], 5, Some((4, 1)), Some(5)),
        ("U04", &[], 5, Some((4, 1)), Some(5)),
    ];
    for &(id, entries, off, s, want) in rows {
        // Spec: 5.1 U01-U04
        assert_eq!(u0(entries, off, s).maybe_first_index(), want, "{id}");
    }
}

#[test]
fn maybe_last_index() {
    let rows: &[IndexRow] = &[
        ("U06", &[(5, 1)], 5, Some((4, 1)), Some(5)),
        ("U07", &[], 5, Some((4, 1)), Some(4)),
        ("U08", &[], 0, None, None),
    ];
    for &(id, entries, off, s, want) in rows {
        // Spec: 5.1 U06-U08
        assert_eq!(u0(entries, off, s).maybe_last_index(), want, "{id}");
    }
}

#[test]
fn maybe_term() {
    // (id, entries, offset, snapshot, index, result)
    let rows: &[TermRow] = &[
        ("U09", &[(5, 1)], 5, None, 5, Some(1)),
        ("U11", &[(5, 1)], 5, None, 4, None),
        ("U12", &[(5, 1)], 5, Some((4, 1)), 5, Some(1)),
        ("U13", &[(5, 1)], 5, Some((4, 1)), 6, None),
        ("U14", &[(5, 1)], 5, Some((4, 1)), 4, Some(1)),
        ("U16", &[], 5, Some((4, 1)), 5, None),
        ("U17", &[], 5, Some((4, 1)), 4, Some(1)),
        ("U18", &[], 0, None, 5, None),
    ];
    for &(id, entries, off, s, i, want) in rows {
        // Spec: 5.1 U09-U18
        assert_eq!(u0(entries, off, s).maybe_term(i), want, "{id}");
    }
}

#[test]
fn restore_drops_entries_and_in_progress_marks() {
    // Spec: 5.1 U19
    let mut x = u(&[(5, 1)], 5, 6, Some((4, 1)), true);
    x.restore(snap(6, 2));
    assert_eq!((x.offset(), x.offset_in_progress()), (7, 7));
    assert!(x.entries().is_empty());
    assert_eq!(x.snapshot().map(|s| s.meta.id()), Some(EntryId::new(2, 6)));
    assert!(!x.snapshot_in_progress());
}

#[test]
fn next_entries() {
    // Spec: 5.1 U21
    assert_eq!(
        ids(u(&[(5, 1), (6, 1)], 5, 6, None, false).next_entries()),
        [(6, 1)]
    );
    // Spec: 5.1 U22 (nothing, not an empty batch to write)
    assert!(
        u(&[(5, 1), (6, 1)], 5, 7, None, false)
            .next_entries()
            .is_empty()
    );
}

#[test]
fn next_snapshot() {
    // Spec: 5.1 U23
    assert_eq!(u0(&[], 5, None).next_snapshot(), None);
    // Spec: 5.1 U24
    let x = u(&[], 5, 5, Some((4, 1)), false);
    assert_eq!(
        x.next_snapshot().map(|s| s.meta.id()),
        Some(EntryId::new(1, 4))
    );
    // Spec: 5.1 U25
    assert_eq!(u(&[], 5, 5, Some((4, 1)), true).next_snapshot(), None);
}

#[test]
fn accept_in_progress() {
    // (id, entries, snapshot, oip before, sip before, oip after, sip after)
    type Row<'a> = (&'a str, Ids<'a>, Option<Id>, u64, bool, u64, bool);
    let rows: &[Row] = &[
        ("U26", &[], None, 5, false, 5, false),
        ("U27", &[(5, 1)], None, 5, false, 6, false),
        ("U28", &[(5, 1), (6, 1)], None, 5, false, 7, false),
        ("U29", &[(5, 1), (6, 1)], None, 6, false, 7, false),
        ("U31", &[], Some((4, 1)), 5, false, 5, true),
        ("U32", &[(5, 1)], Some((4, 1)), 5, false, 6, true),
        ("U33", &[(5, 1), (6, 1)], Some((4, 1)), 5, false, 7, true),
        ("U34", &[(5, 1), (6, 1)], Some((4, 1)), 6, false, 7, true),
        ("U36", &[], Some((4, 1)), 5, true, 5, true),
        ("U37", &[(5, 1)], Some((4, 1)), 5, true, 6, true),
        ("U38", &[(5, 1), (6, 1)], Some((4, 1)), 5, true, 7, true),
        ("U39", &[(5, 1), (6, 1)], Some((4, 1)), 6, true, 7, true),
    ];
    for &(id, entries, s, oip, sip, want_oip, want_sip) in rows {
        // Spec: 5.1 U26-U39
        let mut x = u(entries, 5, oip, s, sip);
        x.accept_in_progress();
        assert_eq!(
            (x.offset_in_progress(), x.snapshot_in_progress()),
            (want_oip, want_sip),
            "{id}"
        );
    }
}

#[test]
fn stable_to() {
    // (id, entries, off, oip, snapshot, stable_to (index, term), (offset, oip, len))
    type Row<'a> = (
        &'a str,
        Ids<'a>,
        u64,
        u64,
        Option<Id>,
        (u64, u64),
        (u64, u64, usize),
    );
    let rows: &[Row] = &[
        ("U41", &[], 0, 0, None, (5, 1), (0, 0, 0)),
        ("U42", &[(5, 1)], 5, 6, None, (5, 1), (6, 6, 0)),
        ("U43", &[(5, 1), (6, 1)], 5, 6, None, (5, 1), (6, 6, 1)),
        ("U44", &[(5, 1), (6, 1)], 5, 7, None, (5, 1), (6, 7, 1)),
        ("U46", &[(5, 1)], 5, 6, None, (4, 1), (5, 6, 1)),
        ("U47", &[(5, 1)], 5, 6, None, (4, 2), (5, 6, 1)),
        ("U48", &[(5, 1)], 5, 6, Some((4, 1)), (5, 1), (6, 6, 0)),
        (
            "U49",
            &[(5, 1), (6, 1)],
            5,
            6,
            Some((4, 1)),
            (5, 1),
            (6, 6, 1),
        ),
        ("U51", &[(6, 2)], 6, 7, Some((5, 1)), (6, 1), (6, 7, 1)),
        ("U52", &[(5, 1)], 5, 6, Some((4, 1)), (4, 1), (5, 6, 1)),
        ("U53", &[(5, 2)], 5, 6, Some((4, 2)), (4, 1), (5, 6, 1)),
    ];
    for &(id, entries, off, oip, s, (i, t), want) in rows {
        // Spec: 5.1 U41-U53
        let mut x = u(entries, off, oip, s, false);
        x.stable_to(EntryId::new(t, i));
        assert_eq!(
            (x.offset(), x.offset_in_progress(), x.entries().len()),
            want,
            "{id}"
        );
    }
}

#[test]
fn truncate_and_append() {
    // (id, entries, off, oip, append, (offset, oip, entries))
    type Row<'a> = (&'a str, Ids<'a>, u64, u64, Ids<'a>, (u64, u64, Ids<'a>));
    let rows: &[Row] = &[
        (
            "U54",
            &[(5, 1)],
            5,
            5,
            &[(6, 1), (7, 1)],
            (5, 5, &[(5, 1), (6, 1), (7, 1)]),
        ),
        (
            "U56",
            &[(5, 1)],
            5,
            5,
            &[(5, 2), (6, 2)],
            (5, 5, &[(5, 2), (6, 2)]),
        ),
        (
            "U57",
            &[(5, 1)],
            5,
            5,
            &[(4, 2), (5, 2), (6, 2)],
            (4, 4, &[(4, 2), (5, 2), (6, 2)]),
        ),
        (
            "U58",
            &[(5, 1)],
            5,
            6,
            &[(5, 2), (6, 2)],
            (5, 5, &[(5, 2), (6, 2)]),
        ),
        (
            "U59",
            &[(5, 1), (6, 1), (7, 1)],
            5,
            5,
            &[(6, 2)],
            (5, 5, &[(5, 1), (6, 2)]),
        ),
        (
            "U61",
            &[(5, 1), (6, 1), (7, 1)],
            5,
            6,
            &[(6, 2)],
            (5, 6, &[(5, 1), (6, 2)]),
        ),
        (
            "U62",
            &[(5, 1), (6, 1), (7, 1)],
            5,
            7,
            &[(6, 2)],
            (5, 6, &[(5, 1), (6, 2)]),
        ),
    ];
    for &(id, entries, off, oip, append, (want_off, want_oip, want)) in rows {
        // Spec: 5.1 U54-U62
        let mut x = u(entries, off, oip, None, false);
        x.truncate_and_append(&ents(append)).unwrap();
        assert_eq!(
            (x.offset(), x.offset_in_progress()),
            (want_off, want_oip),
            "{id}"
        );
        assert_eq!(ids(x.entries()), want, "{id}");
    }
}

#[test]
fn slice_out_of_bounds_is_a_typed_error() {
    let x = u0(&[(5, 1), (6, 1)], 5, None);
    // Spec: 5.1 U63 (etcd panics)
    assert!(matches!(x.slice(6, 5), Err(Error::InvalidCall(_))));
    // Spec: 5.1 U64 (etcd panics)
    assert!(matches!(x.slice(4, 6), Err(Error::InvalidCall(_))));
    assert!(matches!(x.slice(5, 8), Err(Error::InvalidCall(_))));
    assert_eq!(ids(x.slice(5, 7).unwrap()), [(5, 1), (6, 1)]);
    assert!(x.slice(7, 7).unwrap().is_empty());
}

#[test]
fn stable_snap_to() {
    // Spec: 5.1 U66
    let mut x = u(&[], 5, 5, Some((4, 1)), true);
    x.stable_snap_to(3);
    assert!(x.snapshot().is_some() && x.snapshot_in_progress());
    // Spec: 5.1 U67
    x.stable_snap_to(4);
    assert!(x.snapshot().is_none() && !x.snapshot_in_progress());
    assert_eq!(x.offset(), 5);
}

#[test]
fn truncation_inside_the_in_progress_region() {
    // Spec: 5.1 U68 (= worked example W4)
    let mut x = u(&[(4, 2), (5, 2), (6, 2)], 4, 7, None, false);
    x.truncate_and_append(&ents(&[(6, 3)])).unwrap();
    assert_eq!(x.offset_in_progress(), 6);
    assert_eq!(ids(x.next_entries()), [(6, 3)]);
    x.stable_to(EntryId::new(2, 6));
    assert_eq!(
        (x.offset(), x.entries().len()),
        (4, 3),
        "a stale write's ack changes nothing"
    );
}

#[test]
fn from_parts_rejects_broken_invariants() {
    let bad = [
        Unstable::from_parts(None, ents(&[(5, 1)]), 5, 4, false),
        Unstable::from_parts(None, ents(&[(5, 1)]), 5, 7, false),
        Unstable::from_parts(None, ents(&[(5, 1), (7, 1)]), 5, 5, false),
        Unstable::from_parts(None, ents(&[(5, 2), (6, 1)]), 5, 5, false),
        Unstable::from_parts(None, ents(&[(6, 1)]), 5, 5, false),
        Unstable::from_parts(None, vec![], 5, 5, true),
        Unstable::from_parts(Some(snap(5, 1)), vec![], 5, 5, false),
    ];
    for (k, r) in bad.into_iter().enumerate() {
        assert!(matches!(r, Err(Error::InvalidCall(_))), "case {k}");
    }
}

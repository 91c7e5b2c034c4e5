//! Format v1 stays readable: `tests/fixtures/v1/` holds a log written by the first release of
//! the format. Today's build must open it to the same log the same workload gives today, and
//! encode each of its frames to the very same bytes.
//!
//! The fixture was made by `RAFTWAL_WRITE_FIXTURES=1 cargo test --test format_compat --
//! --ignored`; never regenerate it for a released version: add `v2/` instead.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use raftwal::fs::{Fs, OpenMode, StdFs};
use raftwal::inspect;
use raftwal::{Batch, Entry, EntryId, HardState, Options, SnapshotMeta, Wal};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn options() -> Options {
    let mut o = Options::default();
    o.segment_size = 4 << 10;
    o
}

/// Every kind of record, and a rotation.
fn workload(wal: &Wal) {
    let entries = |lo: u64, hi: u64, term: u64| -> Vec<Entry> {
        (lo..hi)
            .map(|i| Entry::new(i, term, format!("entry {i} of term {term};").repeat(4)))
            .collect()
    };
    let hs = |term, commit| {
        Some(HardState {
            term,
            vote: 2,
            commit,
        })
    };
    let batches = [
        Batch {
            entries: entries(1, 4, 1),
            hard_state: hs(1, 0),
            snapshot: None,
        },
        Batch {
            entries: entries(4, 40, 2),
            hard_state: hs(2, 3),
            snapshot: None,
        },
        Batch {
            entries: entries(30, 33, 3),
            hard_state: hs(3, 20),
            snapshot: None,
        },
    ];
    for b in &batches {
        wal.append(b).unwrap();
    }
    wal.truncate_after(31).unwrap();
    let cs = Bytes::from_static(b"voters 1 2 3");
    wal.save_snapshot_meta(SnapshotMeta {
        index: 10,
        term: 2,
        conf_state: cs.clone(),
    })
    .unwrap();
    wal.purge_to(EntryId::new(2, 10)).unwrap();
    let snap = SnapshotMeta {
        index: 20,
        term: 2,
        conf_state: cs,
    };
    let install = Batch {
        snapshot: Some(snap),
        entries: entries(21, 23, 4),
        hard_state: hs(4, 20),
    };
    let lsn = wal.append(&install).unwrap();
    wal.sync(lsn).unwrap();
}

#[derive(Debug, PartialEq, Eq)]
struct View(u64, u64, u64, Vec<Entry>, HardState, SnapshotMeta);

fn view(wal: &Wal) -> View {
    let (first, last) = (wal.first_index(), wal.last_index());
    View(
        first,
        last,
        wal.term(first - 1).unwrap(),
        wal.entries(first, last + 1, u64::MAX).unwrap(),
        wal.hard_state(),
        wal.snapshot_meta(),
    )
}

/// Copies the segment files of `from` into `to`.
fn copy_segments(from: &Path, to: &Path) {
    StdFs.create_dir_all(to).unwrap();
    for name in StdFs.list_dir(from).unwrap() {
        if !name.ends_with(".wal") {
            continue;
        }
        let src = StdFs.open(&from.join(&name), OpenMode::ReadOnly).unwrap();
        let mut bytes = vec![0u8; src.len().unwrap() as usize];
        src.read_exact_at(&mut bytes, 0).unwrap();
        let dst = StdFs.open(&to.join(&name), OpenMode::CreateNew).unwrap();
        dst.write_all_at(&bytes, 0).unwrap();
    }
}

#[test]
fn the_v1_fixture_opens_to_the_log_its_workload_gives_today() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = tmp.path().join("fixture");
    copy_segments(&fixture_dir(), &fixture);
    let sealed = |s: &inspect::SegmentDump| matches!(s.end, inspect::End::Sealed { .. });
    assert!(
        inspect::dump(&fixture).unwrap().iter().any(sealed),
        "the fixture has rotated"
    );
    let (old, report) = Wal::open(&fixture, options()).unwrap();
    assert_eq!(report.torn_bytes_dropped, 0);
    let (today, _) = Wal::open(tmp.path().join("today"), options()).unwrap();
    workload(&today);
    assert_eq!(view(&old), view(&today));
    assert_eq!(view(&old).0, 21, "the installed snapshot is in the fixture");
}

#[cfg(feature = "test-util")]
#[test]
fn every_v1_frame_encodes_to_the_same_bytes_today() {
    use raftwal::testing::{decode_frame, decode_header, encode_frame, encode_header};
    let mut frames = 0;
    for segment in inspect::dump(fixture_dir()).unwrap() {
        let file = StdFs.open(&segment.path, OpenMode::ReadOnly).unwrap();
        let mut bytes = vec![0u8; segment.len as usize];
        file.read_exact_at(&mut bytes, 0).unwrap();
        let Ok(header) = segment.header else { continue };
        assert_eq!(decode_header(&bytes).unwrap(), header);
        assert_eq!(encode_header(&header), bytes[..48]);
        for record in &segment.records {
            let at = &bytes[record.offset as usize..][..record.len as usize];
            let frame = decode_frame(at, header.salt).unwrap();
            let again = encode_frame(header.salt, frame.lsn, frame.synced_lsn, &frame.record);
            assert_eq!(again.as_deref(), Some(at), "frame at {}", record.offset);
            frames += 1;
        }
    }
    assert!(frames >= 8, "only {frames} frames");
}

/// Writes the fixture (only when asked: a released version's fixture never changes). Ignored,
/// so that a run of the suite does not count this tool as a passing test.
#[test]
#[ignore = "writes tests/fixtures/v1 when RAFTWAL_WRITE_FIXTURES is set"]
fn write_fixture_when_asked() {
    if std::env::var_os("RAFTWAL_WRITE_FIXTURES").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    {
        let (wal, _) = Wal::open(tmp.path(), options()).unwrap();
        workload(&wal);
    }
    copy_segments(tmp.path(), &fixture_dir());
}

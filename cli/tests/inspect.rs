//! `raftwal dump` and `raftwal verify` on real logs written by the library: a clean log, a log
//! whose last write was torn, and a log with a flipped byte in acknowledged data.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use common::{Run, raftwal};
use raftwal::fs::{Fs, OpenMode, StdFs};
use raftwal::inspect::{self, What};
use raftwal::{Batch, Entry, EntryId, HardState, Options, SnapshotMeta, Wal};

/// Sector size the recovery rules reason in: a torn write leaves whole sectors unwritten.
const SECTOR: u64 = 512;

fn entries(first: u64, last: u64, term: u64, size: usize) -> Vec<Entry> {
    (first..=last)
        .map(|i| Entry::new(i, term, vec![i as u8; size]))
        .collect()
}

fn batch(entries: Vec<Entry>, hard_state: Option<HardState>) -> Batch {
    Batch {
        entries,
        hard_state,
        ..Batch::default()
    }
}

/// A closed log at `dir/log` that went through every kind of record, over several 4 KiB
/// segments: entries 1..=12 (9..=12 rewritten in term 2), a snapshot at 5, purged to 3.
fn varied_log(dir: &Path) -> PathBuf {
    let path = dir.join("log");
    let mut options = Options::default();
    options.segment_size = 4 << 10;
    let (wal, _) = Wal::open(&path, options).unwrap();
    let hs = |term, commit| {
        Some(HardState {
            term,
            vote: 1,
            commit,
        })
    };
    wal.append_sync(&batch(entries(1, 10, 1, 300), hs(1, 4)))
        .unwrap();
    wal.sync(wal.truncate_after(8).unwrap()).unwrap();
    wal.append_sync(&batch(entries(9, 12, 2, 300), hs(2, 6)))
        .unwrap();
    let meta = SnapshotMeta {
        index: 5,
        term: 1,
        conf_state: "abc".into(),
    };
    wal.sync(wal.save_snapshot_meta(meta).unwrap()).unwrap();
    wal.sync(wal.purge_to(EntryId::new(1, 3)).unwrap()).unwrap();
    path
}

/// A closed log at `dir/log` of three synced batches of 1, 1 and 4 entries of 600 bytes each:
/// every frame spans more than one sector.
fn three_batches(dir: &Path, segment_size: u64) -> PathBuf {
    let path = dir.join("log");
    let mut options = Options::default();
    options.segment_size = segment_size;
    let (wal, _) = Wal::open(&path, options).unwrap();
    wal.append_sync(&batch(entries(1, 1, 1, 600), None))
        .unwrap();
    wal.append_sync(&batch(entries(2, 2, 1, 600), None))
        .unwrap();
    wal.append_sync(&batch(entries(3, 6, 1, 600), None))
        .unwrap();
    path
}

/// (segment path, frame offset, frame length) of every batch frame, in log order.
fn batch_frames(log: &Path) -> Vec<(PathBuf, u64, u64)> {
    inspect::dump(log)
        .unwrap()
        .into_iter()
        .flat_map(|s| {
            let path = s.path.clone();
            s.records
                .into_iter()
                .filter(|r| matches!(r.what, What::Batch { .. }))
                .map(move |r| (path.clone(), r.offset, r.len))
        })
        .collect()
}

fn read_file(path: &Path) -> Vec<u8> {
    let file = StdFs.open(path, OpenMode::ReadOnly).unwrap();
    let mut buf = vec![0; file.len().unwrap() as usize];
    file.read_exact_at(&mut buf, 0).unwrap();
    buf
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    let file = StdFs.open(path, OpenMode::ReadWrite).unwrap();
    file.write_all_at(bytes, offset).unwrap();
    file.sync_data().unwrap();
}

fn segment_files(log: &Path) -> usize {
    StdFs
        .list_dir(log)
        .unwrap()
        .iter()
        .filter(|n| n.ends_with(".wal"))
        .count()
}

fn verify(log: &Path, extra: &[&str]) -> Run {
    let mut args = vec![OsStr::new("verify"), log.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    raftwal(args)
}

#[test]
fn dump_shows_every_kind_of_record() {
    let dir = tempfile::tempdir().unwrap();
    let log = varied_log(dir.path());
    let run = raftwal(["dump".as_ref(), log.as_os_str()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let out = &run.stdout;
    for part in [
        "segment 0000000000000001.wal",
        "checkpoint  compacted to 0 (term 0)",
        "10 entries 1..=10 (terms 1..=1), 3000 B payload; hard state term 1 vote 1 commit 4",
        "truncate    entries after 8 removed",
        "4 entries 9..=12 (terms 2..=2), 1200 B payload; hard state term 2 vote 1 commit 6",
        "snapshot    5 (term 1), conf state 3 bytes",
        "purge       compacted to 3 (term 1)",
        "seal        next segment seq 2",
        "end: sealed at byte",
        "prepared ahead, not used yet",
    ] {
        assert!(out.contains(part), "{part:?} missing in\n{out}");
    }
    let segments = segment_files(&log);
    assert!(segments > 1, "4 KiB segments should have rotated");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("segment ")).count(),
        segments,
        "one block per segment file\n{out}"
    );
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("{segments} segment files, ")),
        "{last}"
    );
}

#[test]
fn verify_passes_a_clean_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = varied_log(dir.path());
    let run = verify(&log, &["--segment-size", "4KiB"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.starts_with("clean: "), "{}", run.stdout);
    assert!(run.stdout.contains("last index 12"), "{}", run.stdout);

    let other = tempfile::tempdir().unwrap();
    let run = verify(
        &three_batches(other.path(), Options::default().segment_size),
        &[],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("clean: ") && run.stdout.contains("last index 6"),
        "{run:?}"
    );
}

#[test]
fn verify_reports_a_torn_tail_without_touching_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = three_batches(dir.path(), 1 << 20);
    let frames = batch_frames(&log);
    let (segment, offset, len) = frames.last().cloned().unwrap();
    // The power went out while the last write was on its way: its final sector never landed.
    let end = offset + len;
    let lost_from = ((end - 1) / SECTOR * SECTOR).max(offset + 1);
    write_at(&segment, lost_from, &vec![0; (end - lost_from) as usize]);
    let before = read_file(&segment);

    let run = verify(&log, &["--segment-size", "1MiB"]);
    assert_eq!(
        run.code,
        Some(0),
        "a torn tail is what a crash leaves: {run:?}"
    );
    let out = &run.stdout;
    assert!(out.starts_with("torn tail: "), "{out}");
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(out.contains(&format!("{name} at byte {offset}")), "{out}");
    assert!(out.contains("keeps last index 2"), "{out}");
    assert_eq!(read_file(&segment), before, "verify wrote to the log");
}

#[test]
fn verify_fails_on_a_flipped_byte_naming_segment_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = three_batches(dir.path(), 1 << 20);
    let (segment, offset, len) = batch_frames(&log)[0].clone();
    let at = offset + len / 2;
    let mut byte = [0u8];
    StdFs
        .open(&segment, OpenMode::ReadOnly)
        .unwrap()
        .read_exact_at(&mut byte, at)
        .unwrap();
    write_at(&segment, at, &[byte[0] ^ 0x10]);

    let run = verify(&log, &["--segment-size", "1MiB"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let out = &run.stdout;
    assert!(
        out.starts_with(&format!(
            "corrupt: {} at byte {offset}: ",
            segment.display()
        )),
        "{out}"
    );
    assert!(out.contains("checksum"), "{out}");

    // dump still reads what it can and shows where the frames stop.
    let run = raftwal(["dump".as_ref(), log.as_os_str()]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout
            .contains(&format!("end: stopped at byte {offset}: ")),
        "{}",
        run.stdout
    );
}

#[test]
fn dump_and_verify_refuse_what_is_not_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    for command in ["dump", "verify"] {
        let run = raftwal([command.as_ref(), dir.path().as_os_str()]);
        assert_eq!(run.code, Some(2), "{command} on an empty dir: {run:?}");
        assert!(
            run.stderr.contains("holds no raftwal log"),
            "{}",
            run.stderr
        );

        let run = raftwal([command.as_ref(), missing.as_os_str()]);
        assert_eq!(run.code, Some(2), "{command} on a missing dir: {run:?}");
        assert!(run.stderr.contains("missing"), "{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

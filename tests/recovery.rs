//! Recovery on the real disk: a torn unacknowledged tail is cut and reported; damage to
//! acknowledged data (followed by later frames, in a sealed segment, in a header, or in a final
//! frame whose every sector was written) is `Error::Corrupt` naming the file and offset; stale
//! bytes are never taken for records.

use std::path::{Path, PathBuf};

use raftwal::fs::{Fs, OpenMode, StdFs};
use raftwal::inspect::{self, End, SegmentDump, What};
use raftwal::{Batch, Entry, EntryId, Error, Options, Wal};

fn options(segment_size: u64) -> Options {
    let mut o = Options::default();
    o.segment_size = segment_size;
    o
}

fn entry(i: u64, size: usize) -> Entry {
    Entry::new(i, 1, vec![(i % 200 + 1) as u8; size])
}

/// A log of `n` entries of `size` bytes, one synced batch each.
fn synced_log(dir: &Path, o: &Options, n: u64, size: usize) -> Vec<Entry> {
    let (wal, _) = Wal::open(dir, o.clone()).unwrap();
    let entries: Vec<Entry> = (1..=n).map(|i| entry(i, size)).collect();
    for e in &entries {
        wal.append_sync(&Batch {
            entries: vec![e.clone()],
            ..Batch::default()
        })
        .unwrap();
    }
    entries
}

/// Appends `e` without syncing it and closes the log: its frame is the unacknowledged tail.
fn append_unsynced(dir: &Path, o: &Options, e: Entry) {
    let (wal, _) = Wal::open(dir, o.clone()).unwrap();
    wal.append(&Batch {
        entries: vec![e],
        ..Batch::default()
    })
    .unwrap();
}

fn read_file(path: &Path) -> Vec<u8> {
    let file = StdFs.open(path, OpenMode::ReadOnly).unwrap();
    let mut buf = vec![0u8; file.len().unwrap() as usize];
    file.read_exact_at(&mut buf, 0).unwrap();
    buf
}

fn write_file(path: &Path, offset: u64, bytes: &[u8]) {
    StdFs
        .open(path, OpenMode::ReadWrite)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

fn flip(path: &Path, offset: u64) {
    let byte = read_file(path)[offset as usize];
    write_file(path, offset, &[byte ^ 0x40]);
}

/// [`inspect::dump`] of `dir`, which a running log may be changing: a segment listed may be
/// retired (renamed to a free file) before it is read, and is then listed no more.
fn dump_live(dir: &Path) -> Vec<SegmentDump> {
    loop {
        match inspect::dump(dir) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            dumped => return dumped.unwrap(),
        }
    }
}

/// The segments that hold frames beyond their checkpoint.
fn used_segments(dir: &Path) -> Vec<SegmentDump> {
    dump_live(dir)
        .into_iter()
        .filter(|s| s.records.len() > 1)
        .collect()
}

/// The last batch frame of the log: (file, offset, length).
fn last_batch(dir: &Path) -> (PathBuf, u64, u64) {
    tail_batches(dir).pop().unwrap()
}

fn assert_corrupt(dir: &Path, o: &Options, file: &Path, at: u64) {
    for result in [
        inspect::verify(dir, o).map(|_| ()),
        Wal::open(dir, o.clone()).map(|_| ()),
    ] {
        match result {
            Err(Error::Corrupt {
                segment, offset, ..
            }) => {
                assert_eq!((segment.as_path(), offset), (file, at));
            }
            other => panic!("expected Corrupt at {} {at}, got {other:?}", file.display()),
        }
    }
}

#[test]
fn a_torn_unsynced_tail_is_cut_reported_and_not_seen_again() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(64 << 10);
    let kept = synced_log(tmp.path(), &o, 10, 300);
    append_unsynced(tmp.path(), &o, entry(11, 3000));
    // A power cut wrote the frame's first sectors but not its second one.
    let (path, offset, len) = last_batch(tmp.path());
    let frame = read_file(&path)[offset as usize..][..len as usize].to_vec();
    let hole = (offset / 512 + 1) * 512;
    write_file(&path, hole, &[0u8; 512]);
    let verified = inspect::verify(tmp.path(), &o).unwrap();
    let (wal, report) = Wal::open(tmp.path(), o.clone()).unwrap();
    assert_eq!(report, verified, "verify predicts what open does");
    assert_eq!(report.torn_bytes_dropped, len - trailing_zeros(&frame));
    assert_eq!(
        (report.torn_segment.as_deref(), report.last_index),
        (Some(path.as_path()), 10)
    );
    assert_eq!(wal.entries(1, 11, u64::MAX).unwrap(), kept);
    wal.append_sync(&Batch {
        entries: vec![entry(11, 5)],
        ..Batch::default()
    })
    .unwrap();
    drop(wal);
    let (wal, report) = Wal::open(tmp.path(), o).unwrap();
    assert_eq!((report.torn_bytes_dropped, report.last_index), (0, 11));
    assert_eq!(wal.entries(11, 12, u64::MAX).unwrap(), vec![entry(11, 5)]);
}

#[test]
fn a_file_cut_short_inside_its_last_frame_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(64 << 10);
    let kept = synced_log(tmp.path(), &o, 5, 100);
    append_unsynced(tmp.path(), &o, entry(6, 2000));
    let (path, offset, _) = last_batch(tmp.path());
    StdFs
        .open(&path, OpenMode::ReadWrite)
        .unwrap()
        .set_len(offset + 700)
        .unwrap();
    let (wal, report) = Wal::open(tmp.path(), o).unwrap();
    assert_eq!((report.torn_bytes_dropped, report.last_index), (700, 5));
    assert_eq!(wal.entries(1, 6, u64::MAX).unwrap(), kept);
}

#[test]
fn a_flipped_byte_before_a_later_synced_batch_is_corruption_at_its_frame() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(64 << 10);
    synced_log(tmp.path(), &o, 10, 300);
    let seg = used_segments(tmp.path()).pop().unwrap();
    let third = &seg.records[3];
    assert!(matches!(third.what, What::Batch { count: 1, .. }));
    flip(&seg.path, third.offset + third.len / 2);
    assert_corrupt(tmp.path(), &o, &seg.path, third.offset);
}

#[test]
fn damage_to_the_last_synced_frame_is_found_when_every_sector_of_it_was_written() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(64 << 10);
    synced_log(tmp.path(), &o, 4, 3000);
    let (path, offset, len) = last_batch(tmp.path());
    flip(&path, offset + len - 100);
    assert_corrupt(tmp.path(), &o, &path, offset);
}

#[test]
fn damage_in_a_sealed_segment_or_any_header_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(4 << 10);
    synced_log(tmp.path(), &o, 30, 700);
    let segments = used_segments(tmp.path());
    assert!(segments.len() >= 4, "{} segments", segments.len());
    let middle = &segments[1];
    assert!(matches!(middle.end, End::Sealed { .. }));
    // (file, byte to damage, expected offset of the error)
    let batch = &middle.records[1];
    let cases = [
        (middle.path.clone(), batch.offset + 40, batch.offset),
        (middle.path.clone(), 20, 0),
        (segments[0].path.clone(), 3, 0),
        (segments.last().unwrap().path.clone(), 30, 0),
    ];
    for (path, at, want) in cases {
        flip(&path, at);
        assert_corrupt(tmp.path(), &o, &path, want);
        flip(&path, at);
        Wal::open(tmp.path(), o.clone()).expect("repaired by hand, the log opens again");
    }
}

#[test]
fn a_missing_segment_whose_entries_are_still_in_the_log_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(4 << 10);
    synced_log(tmp.path(), &o, 30, 700);
    let segments = used_segments(tmp.path());
    StdFs.remove_file(&segments[1].path).unwrap();
    match Wal::open(tmp.path(), o) {
        Err(Error::Corrupt { segment, .. }) => assert_eq!(segment, segments[2].path),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn stale_frames_in_pre_zeroed_space_are_never_taken_for_records() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(8 << 10);
    let kept = synced_log(tmp.path(), &o, 12, 700);
    let segments = used_segments(tmp.path());
    let (old, active) = (&segments[0], segments.last().unwrap());
    let End::Clean { offset: end } = active.end else {
        panic!("{:?}", active.end)
    };
    // Frames of another segment (another salt), and one of this segment's own frames again
    // (a stale sequence number), some distance after the end of the log.
    let foreign = &old.records[1];
    let own = &active.records[1];
    let bytes = read_file(&old.path)[foreign.offset as usize..][..foreign.len as usize].to_vec();
    let again = read_file(&active.path)[own.offset as usize..][..own.len as usize].to_vec();
    write_file(&active.path, end + 512, &bytes);
    write_file(&active.path, end + 512 + foreign.len, &again);
    let (wal, report) = Wal::open(tmp.path(), o.clone()).unwrap();
    assert_eq!(report.last_index, 12);
    assert_eq!(
        report.torn_bytes_dropped,
        512 + foreign.len + own.len - trailing_zeros(&again)
    );
    assert_eq!(wal.entries(1, 13, u64::MAX).unwrap(), kept);
    drop(wal);
    let (_, report) = Wal::open(tmp.path(), o).unwrap();
    assert_eq!(report.torn_bytes_dropped, 0, "the stale bytes were zeroed");
}

fn trailing_zeros(bytes: &[u8]) -> u64 {
    bytes.iter().rev().take_while(|&&b| b == 0).count() as u64
}

#[test]
fn a_torn_frame_larger_than_a_segment_is_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(4 << 10);
    let kept = synced_log(tmp.path(), &o, 3, 100);
    append_unsynced(tmp.path(), &o, entry(4, 20_000));
    let (path, offset, _) = last_batch(tmp.path());
    write_file(&path, (offset / 512 + 20) * 512, &[0u8; 512]);
    let (wal, report) = Wal::open(tmp.path(), o).unwrap();
    assert_eq!((report.last_index, report.torn_segment), (3, Some(path)));
    assert_eq!(wal.entries(1, 4, u64::MAX).unwrap(), kept);
}

/// Path of segment `seq` in `dir`.
fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016x}.wal"))
}

/// Reads back entries `1..=n` and checks them against [`entry`].
fn assert_entries(wal: &Wal, n: u64, size: usize) {
    let got = wal.entries(1, n + 1, u64::MAX).unwrap();
    let want: Vec<Entry> = (1..=n).map(|i| entry(i, size)).collect();
    assert_eq!(got, want);
}

/// A segment prepared ahead and never used is never used after a reopen, whatever it holds:
/// after a failed directory sync in the same boot its name may be one the disk never got, and
/// a log that rotated into it would lose the segment to a power cut (found by `wal_model`).
/// A new preparation replaces it (one link left on the old file), the log rotates into that
/// one, and everything reads back.
#[test]
fn a_preparation_left_by_a_closed_log_is_replaced() {
    use std::os::unix::fs::MetadataExt;
    let size = 64u64 << 10;
    // (offset of a stray byte, or None; length the file is cut to)
    let cases = [
        (None, size),
        (Some(0), size),
        (Some(47), size),
        (None, size - 512),
    ];
    for (i, (stray, len)) in cases.into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let o = options(size);
        synced_log(dir, &o, 3, 100);
        let next = segment_path(dir, 2);
        if let Some(at) = stray {
            write_file(&next, at, &[7]);
        }
        StdFs
            .open(&next, OpenMode::ReadWrite)
            .unwrap()
            .set_len(len)
            .unwrap();
        std::fs::hard_link(&next, dir.join("witness")).unwrap();
        let (wal, _) = Wal::open(dir, o.clone()).unwrap();
        assert_entries(&wal, 3, 100);
        for i in 4..=200 {
            wal.append_sync(&Batch {
                entries: vec![entry(i, 1000)],
                ..Batch::default()
            })
            .unwrap();
        }
        drop(wal);
        assert_eq!(
            std::fs::metadata(dir.join("witness")).unwrap().nlink(),
            1,
            "case {i}: replaced"
        );
        assert!(segment_path(dir, 4).exists(), "case {i}: rotated past it");
        let (wal, _) = Wal::open(dir, o).unwrap();
        let got = wal.entries(4, 201, u64::MAX).unwrap();
        assert_eq!(
            got,
            (4..=200).map(|i| entry(i, 1000)).collect::<Vec<_>>(),
            "case {i}"
        );
        assert_entries(&wal, 3, 100);
    }
}

/// The files in `dir` whose names end in `.{extension}`, sorted.
fn files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut names = StdFs.list_dir(dir).unwrap();
    names.sort();
    names
        .into_iter()
        .map(|name| dir.join(name))
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect()
}

/// The free files in `dir`.
fn free_files(dir: &Path) -> Vec<PathBuf> {
    files(dir, "free")
}

/// A copy of the closed log in `dir`.
fn copy_log(dir: &Path) -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for name in StdFs.list_dir(dir).unwrap() {
        let to = StdFs
            .open(&copy.path().join(&name), OpenMode::CreateNew)
            .unwrap();
        to.write_all_at(&read_file(&dir.join(&name)), 0).unwrap();
    }
    copy
}

/// Is the segment the log writes to a recycled one? Reads the newest segment with a header
/// (the prepared one after it has none yet) while the log runs.
fn writing_into_recycled(dir: &Path) -> bool {
    let segments = dump_live(dir);
    let newest = segments.iter().rev().find_map(|s| s.header.as_ref().ok());
    newest.is_some_and(|h| h.recycled)
}

/// Appends entries `from..` of `size` bytes, one synced batch each, compacting right behind
/// them, until the log writes into a recycled segment (and `extra` entries more). Returns the
/// last index.
fn compact_until_recycled(wal: &Wal, from: u64, size: usize, extra: u64) -> u64 {
    let mut i = from;
    let mut left = None;
    while left != Some(0) {
        wal.append_sync(&Batch {
            entries: vec![entry(i, size)],
            ..Batch::default()
        })
        .unwrap();
        if i > 1 {
            let purge = wal.purge_to(EntryId::new(1, i - 1)).unwrap();
            wal.sync(purge).unwrap();
        }
        left = match left {
            None if writing_into_recycled(wal.dir()) => Some(extra),
            None => {
                assert!(i < from + 10_000, "the log never recycled a segment");
                None
            }
            Some(n) => Some(n - 1),
        };
        i += 1;
    }
    i - 1
}

#[test]
fn a_log_compacted_behind_its_writer_recycles_segments_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = options(16 << 10);
    let (wal, _) = Wal::open(dir, o.clone()).unwrap();
    let last = compact_until_recycled(&wal, 1, 700, 60);
    let want = vec![entry(last, 700)];
    assert_eq!(wal.entries(last, last + 1, u64::MAX).unwrap(), want);
    drop(wal);
    // At most the pool's cap of free files, and no more segments than compaction leaves.
    assert!(free_files(dir).len() <= 2, "{:?}", free_files(dir));
    let segments = inspect::dump(dir).unwrap();
    assert!(segments.len() <= 3, "{segments:?}");
    let (wal, report) = Wal::open(dir, o.clone()).unwrap();
    assert_eq!((report.last_index, report.torn_bytes_dropped), (last, 0));
    assert_eq!(wal.entries(last, last + 1, u64::MAX).unwrap(), want);
    let last = compact_until_recycled(&wal, last + 1, 700, 30);
    drop(wal);
    let (wal, _) = Wal::open(dir, o).unwrap();
    assert_eq!(wal.last_index(), last);
    let got = wal.entries(last, last + 1, u64::MAX).unwrap();
    assert_eq!(got, vec![entry(last, 700)]);
}

/// The batch frames of the segment being written: (file, offset, length), in order.
fn tail_batches(dir: &Path) -> Vec<(PathBuf, u64, u64)> {
    let seg = used_segments(dir).pop().unwrap();
    seg.records
        .iter()
        .filter(|r| matches!(r.what, What::Batch { .. }))
        .map(|r| (seg.path.clone(), r.offset, r.len))
        .collect()
}

/// A closed log, in 64 KiB segments, that writes into a recycled segment, its newest frame an
/// acknowledged batch of 2000 bytes after the purges that recycled it; with its options and
/// that batch's index.
fn recycled_log_ending_in_a_batch() -> (tempfile::TempDir, Options, u64) {
    let tmp = tempfile::tempdir().unwrap();
    let o = options(64 << 10);
    let (wal, _) = Wal::open(tmp.path(), o.clone()).unwrap();
    let last = compact_until_recycled(&wal, 1, 2000, 3) + 1;
    wal.append_sync(&Batch {
        entries: vec![entry(last, 2000)],
        ..Batch::default()
    })
    .unwrap();
    (tmp, o, last)
}

#[test]
fn in_a_recycled_segment_only_a_later_frame_proves_damage() {
    let (tmp, o, last) = recycled_log_ending_in_a_batch();
    let dir = tmp.path();
    // Healthy, the stale bytes after the frames are no part of the log.
    let tail = used_segments(dir).pop().unwrap();
    assert!(tail.header.unwrap().recycled);
    assert!(matches!(tail.end, End::Clean { .. }), "{:?}", tail.end);
    assert_eq!(inspect::verify(dir, &o).unwrap().torn_bytes_dropped, 0);
    // The last synced frame damaged: with stale bytes around, nothing tells it from a torn
    // write, so it is cut (in a zeroed segment this is Corrupt: every sector was written).
    let copy = copy_log(dir);
    let (path, offset, len) = last_batch(copy.path());
    flip(&path, offset + len / 2);
    let (wal, report) = Wal::open(copy.path(), o.clone()).unwrap();
    assert_eq!(
        (report.last_index, report.torn_bytes_dropped),
        (last - 1, len)
    );
    drop(wal);
    // An earlier one, vouched for by the purge written after its sync: Corrupt.
    let batches = tail_batches(dir);
    let (path, offset, len) = batches[batches.len() - 2].clone();
    flip(&path, offset + len / 2);
    assert_corrupt(dir, &o, &path, offset);
}

#[test]
fn in_a_recycled_segment_damage_to_the_newest_frame_is_reported_never_silent() {
    let (tmp, o, last) = recycled_log_ending_in_a_batch();
    let dir = tmp.path();
    let (path, offset, len) = last_batch(dir);
    let tail = used_segments(dir).pop().unwrap();
    assert_eq!(tail.records.last().unwrap().offset, offset);
    assert!(tail.header.unwrap().recycled);
    let end = (offset + len) as usize;
    let bytes = read_file(&path);
    assert_eq!(
        bytes[end..end + 32],
        [0; 32],
        "the end marker follows the frame"
    );
    assert!(
        bytes[end + 32..].iter().any(|&b| b != 0),
        "stale bytes follow the marker"
    );
    // A clean shutdown: nothing dropped.
    let (_, report) = Wal::open(copy_log(dir).path(), o.clone()).unwrap();
    assert_eq!(report.torn_bytes_dropped, 0);
    // (byte flipped: header_crc, body_len, kind, lsn, synced_lsn, body; least bytes reported)
    let cases = [0, 8, 12, 16, 24, len / 2].map(|at| (at, if at < 32 { 32 } else { len }));
    for (at, least) in cases {
        let copy = copy_log(dir);
        let path = copy.path().join(path.file_name().unwrap());
        flip(&path, offset + at);
        let verified = inspect::verify(copy.path(), &o).unwrap();
        let stopped = used_segments(copy.path()).pop().unwrap().end;
        assert!(
            matches!(stopped, End::Stopped { offset: o, trailing, .. } if o == offset && trailing >= least),
            "byte {at}: dump says {stopped:?}"
        );
        let (wal, report) = Wal::open(copy.path(), o.clone()).unwrap();
        assert_eq!(
            report, verified,
            "byte {at}: verify predicts what open does"
        );
        assert!(
            report.torn_bytes_dropped >= least,
            "byte {at}: dropped {} bytes",
            report.torn_bytes_dropped
        );
        assert_eq!(
            (report.torn_segment.as_deref(), report.last_index),
            (Some(path.as_path()), last - 1),
            "byte {at}"
        );
        assert_eq!(wal.last_index(), last - 1, "byte {at}");
        drop(wal);
        // The marker is back: the next open finds a clean end.
        let bytes = read_file(&path);
        assert_eq!(bytes[offset as usize..][..32], [0; 32], "byte {at}");
        let (_, again) = Wal::open(copy.path(), o.clone()).unwrap();
        assert_eq!(
            (again.torn_bytes_dropped, again.last_index),
            (0, last - 1),
            "byte {at}"
        );
    }
}

#[test]
fn frames_past_a_torn_frame_in_a_recycled_segment_are_zeroed_and_never_resurrected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = options(64 << 10);
    let (wal, _) = Wal::open(dir, o.clone()).unwrap();
    let last = compact_until_recycled(&wal, 1, 1000, 2);
    // Two more frames, never synced: the first is torn, the second reached the disk whole.
    for i in [last + 1, last + 2] {
        wal.append(&Batch {
            entries: vec![entry(i, 1000)],
            ..Batch::default()
        })
        .unwrap();
    }
    drop(wal);
    let batches = tail_batches(dir);
    let [.., (path, torn, len), (_, whole, _)] = batches.as_slice() else {
        panic!("two unsynced frames expected: {batches:?}");
    };
    assert_eq!(torn + len, *whole);
    flip(path, torn + len / 2);
    let (wal, report) = Wal::open(dir, o.clone()).unwrap();
    assert_eq!(
        (report.last_index, report.torn_bytes_dropped),
        (last, 2 * len)
    );
    let bytes = read_file(path);
    assert!(
        bytes[*torn as usize..(torn + 2 * len) as usize]
            .iter()
            .all(|&b| b == 0)
    );
    // The same index again, the same length: the old second frame would follow it with just
    // the next Lsn, had recovery not zeroed it.
    let again = Entry::new(last + 1, 1, vec![0x5a; 1000]);
    wal.append_sync(&Batch {
        entries: vec![again.clone()],
        ..Batch::default()
    })
    .unwrap();
    drop(wal);
    let (wal, _) = Wal::open(dir, o).unwrap();
    assert_eq!(wal.last_index(), last + 1, "a stale frame came back");
    assert_eq!(
        wal.entries(last + 1, last + 2, u64::MAX).unwrap(),
        vec![again]
    );
}

#[test]
fn entries_a_reader_holds_keep_their_bytes_when_their_segment_is_purged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = options(16 << 10);
    let (wal, _) = Wal::open(dir, o).unwrap();
    for i in 1..=30 {
        wal.append_sync(&Batch {
            entries: vec![entry(i, 1000)],
            ..Batch::default()
        })
        .unwrap();
    }
    // Slices of segment 1's map: its file must not be written over while they live.
    let held = wal.entries(1, 6, u64::MAX).unwrap();
    assert_eq!(held, (1..=5).map(|i| entry(i, 1000)).collect::<Vec<_>>());
    // A second name for segment 1's file: whether the log removed the file or reused it
    // under another name shows in its link count.
    let witness = tmp.path().join("witness");
    std::fs::hard_link(segment_path(dir, 1), &witness).unwrap();
    compact_until_recycled(&wal, 31, 1000, 40);
    assert_eq!(held, (1..=5).map(|i| entry(i, 1000)).collect::<Vec<_>>());
    let links = std::os::unix::fs::MetadataExt::nlink(&std::fs::metadata(&witness).unwrap());
    assert_eq!(links, 1, "segment 1's file was removed, not recycled");
}

/// Free files left by a closed log are removed at the next open, whatever their size (their
/// free names may be ones a failed directory sync forgot), and the log goes on recycling files
/// it frees itself.
#[test]
fn free_files_are_removed_at_open_and_recycling_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (wal, _) = Wal::open(dir, options(16 << 10)).unwrap();
    let mut last = compact_until_recycled(&wal, 1, 700, 0);
    // Two segments more without a purge, then purge everything: the segments behind the
    // writer become free files (the preparer may take one).
    for i in last + 1..=last + 50 {
        wal.append_sync(&Batch {
            entries: vec![entry(i, 700)],
            ..Batch::default()
        })
        .unwrap();
    }
    last += 50;
    let purge = wal.purge_to(EntryId::new(1, last)).unwrap();
    wal.sync(purge).unwrap();
    drop(wal);
    assert!(!free_files(dir).is_empty(), "no free file to test with");
    // Larger segments.
    let copy = copy_log(dir);
    let big = options(32 << 10);
    let (wal, _) = Wal::open(copy.path(), big.clone()).unwrap();
    assert_eq!(free_files(copy.path()), Vec::<PathBuf>::new());
    let end = compact_until_recycled(&wal, last + 1, 700, 5);
    drop(wal);
    for seg in inspect::dump(copy.path()).unwrap() {
        assert!(seg.len <= 32 << 10, "{}", seg.path.display());
    }
    let (wal, _) = Wal::open(copy.path(), big).unwrap();
    assert_eq!(
        wal.entries(end, end + 1, u64::MAX).unwrap(),
        vec![entry(end, 700)]
    );
    drop(wal);
    // Smaller segments.
    let (wal, _) = Wal::open(dir, options(8 << 10)).unwrap();
    assert_eq!(free_files(dir), Vec::<PathBuf>::new());
    assert_eq!(wal.last_index(), last);
}

/// After a bulk load with one sync at the end, open rewrites and syncs every frame of the tail
/// no later frame proves durable; after a close, only the close's own small frame.
#[test]
fn a_closed_log_leaves_open_almost_nothing_to_rewrite() {
    let (n, size) = (200, 1000);
    let bulk_load = |dir: &Path| {
        let (wal, _) = Wal::open(dir, Options::default()).unwrap();
        let mut lsn = None;
        for i in 1..=n {
            let batch = Batch {
                entries: vec![entry(i, size)],
                ..Batch::default()
            };
            lsn = Some(wal.append(&batch).unwrap());
        }
        wal.sync(lsn.unwrap()).unwrap();
        wal
    };
    let (dropped, closed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    drop(bulk_load(dropped.path()));
    bulk_load(closed.path()).close().unwrap();
    let (wal, report) = Wal::open(dropped.path(), Options::default()).unwrap();
    assert_entries(&wal, n, size);
    assert!(report.unproven_bytes_rewritten >= n * size as u64);
    let (wal, report) = Wal::open(closed.path(), Options::default()).unwrap();
    assert_entries(&wal, n, size);
    assert!(
        (1..=128).contains(&report.unproven_bytes_rewritten),
        "{} bytes rewritten",
        report.unproven_bytes_rewritten
    );
    assert_eq!(report.torn_bytes_dropped, 0);
}

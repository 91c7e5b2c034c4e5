//! Opening a log whose segments are long enough (1 MiB and more) to be loaded and checked on
//! several threads at once: everything acknowledged comes back, damage is reported in the
//! first damaged segment as on one thread, and a torn tail is still only a torn tail.

mod common;

use std::path::PathBuf;

use common::{LogState, log_files, open, open_report};
use raftwal::fs::SimFs;
use raftwal::fs::sim::ImageSpec;
use raftwal::{Batch, Entry, Error, Options};

const SEGMENT_SIZE: u64 = 1 << 20;
const ENTRY_LEN: usize = 1024;

fn options() -> Options {
    let mut options = Options::default();
    options.segment_size = SEGMENT_SIZE;
    options
}

/// Entries `first..first + count`, each payload telling its index apart from the others.
fn batch(first: u64, count: u64) -> Batch {
    let entries = (first..first + count)
        .map(|i| Entry::new(i, 1, vec![(i % 251) as u8 + 1; ENTRY_LEN]))
        .collect();
    Batch {
        entries,
        ..Batch::default()
    }
}

/// A log of about 4.5 MiB over five 1 MiB segments, every batch synced, and what it holds.
fn synced_log() -> (SimFs, LogState) {
    let fs = SimFs::new(11);
    let wal = open(&fs, &options()).expect("open a new log");
    for b in 0..70 {
        wal.append_sync(&batch(b * 64 + 1, 64)).expect("append");
    }
    let state = LogState::read(&wal).expect("read back");
    drop(wal);
    (fs, state)
}

/// The segment files of `fs` that hold written bytes, oldest first.
fn segments(fs: &SimFs) -> Vec<PathBuf> {
    log_files(fs)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .filter(|p| fs.file_bytes(p).is_ok_and(|b| b.iter().any(|&x| x != 0)))
        .collect()
}

#[test]
fn every_acknowledged_entry_comes_back() {
    let (fs, expect) = synced_log();
    let image = fs.crash_image(&ImageSpec::NOTHING, 0);
    let (wal, report) = open_report(&image, &options()).expect("reopen");
    assert!(report.segments >= 5, "too few segments: {report:?}");
    assert_eq!(report.torn_bytes_dropped, 0);
    assert_eq!(LogState::read(&wal).expect("read back"), expect);
}

#[test]
fn damage_is_reported_in_the_first_damaged_segment() {
    let (fs, _) = synced_log();
    let files = segments(&fs);
    assert!(files.len() >= 5, "too few segments: {files:?}");
    // (segments damaged, the one the error must name); damage lies in the middle of each.
    let cases = [
        (vec![0], 0),
        (vec![1], 1),
        (vec![3], 3),
        (vec![1, 3], 1),
        (vec![2, 3], 2),
    ];
    let at = SEGMENT_SIZE as usize / 2;
    for (damaged, named) in cases {
        let image = fs.crash_image(&ImageSpec::NOTHING, 0);
        for &k in &damaged {
            image
                .damage(&files[k], |bytes| bytes[at] ^= 0x40)
                .expect("damage");
        }
        match open(&image, &options()) {
            Err(Error::Corrupt {
                segment, offset, ..
            }) => {
                assert_eq!(segment, files[named], "damage in {damaged:?}");
                assert!(
                    offset <= at as u64,
                    "damage in {damaged:?} reported at {offset}"
                );
            }
            other => panic!("damage in {damaged:?}: {other:?}"),
        }
    }
}

#[test]
fn a_torn_final_write_is_cut_as_on_one_thread() {
    let (fs, expect) = synced_log();
    let wal = open(&fs, &options()).expect("reopen");
    let first = expect.last_index() + 1;
    wal.append_sync(&batch(first, 8)).expect("final write");
    drop(wal);
    let image = fs.crash_image(&ImageSpec::NOTHING, 0);
    let tail = segments(&image).pop().expect("a tail segment");
    let mut torn_from = 0;
    image
        .damage(&tail, |bytes| {
            // The final frame's last sector never reached the disk.
            let end = bytes.iter().rposition(|&b| b != 0).expect("written") + 1;
            torn_from = (end - 1) / 512 * 512;
            bytes[torn_from..end].fill(0);
        })
        .expect("damage");
    let (wal, report) = open_report(&image, &options()).expect("a torn tail opens");
    assert!(report.segments >= 5, "too few segments: {report:?}");
    assert!(report.torn_bytes_dropped > 0, "{report:?}");
    assert_eq!(report.torn_segment, Some(tail));
    assert_eq!(LogState::read(&wal).expect("read back"), expect);
}

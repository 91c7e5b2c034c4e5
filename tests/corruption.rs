//! Media faults in acknowledged data (research/reliability.md G4/G5): a single flipped bit, a
//! zeroed sector, a garbage sector and a stale sector, anywhere in any file of a synced log.
//! Each must be reported as `Error::Corrupt` naming the damaged file and an offset at or before
//! the damage, or leave the log exactly as it was acknowledged (damage to bytes that carry
//! nothing). Never an error of another kind, a panic, a silently shorter log or altered bytes.
//!
//! `RAFTWAL_FLIPS=all` flips every bit instead of one random bit per byte.

mod common;

use std::path::Path;

use common::{LogState, Op, Workload, log_files, open, small_options};
use raftwal::fs::SimFs;
use raftwal::fs::sim::{ImageSpec, SimRng};
use raftwal::{Batch, Entry, Error, HardState, Options, SnapshotMeta};

const SECTOR: usize = 512;

/// A synced log of three or more 16 KiB segments holding appends, overwrites, hard states and
/// snapshot metadata, and the state it was acknowledged in. Only durable bytes are kept.
fn reference_log(options: &Options) -> (SimFs, LogState) {
    let fs = SimFs::new(99);
    let wal = open(&fs, options).expect("open a new log");
    let mut workload = Workload::new(99, 1500);
    while workload.state.last_index() < 120 {
        let op = workload.next_op();
        let lsn = op.run(&wal).expect("healthy disk");
        wal.sync(lsn).expect("healthy disk");
    }
    let state = LogState::read(&wal).expect("read back");
    assert_eq!(
        state, workload.state,
        "the log differs from its model before any damage"
    );
    (fs.crash_image(&ImageSpec::NOTHING, 0), state)
}

/// How a damaged log opened.
#[derive(Debug, Default)]
struct Tally {
    /// Reported as corrupt, at the right file and an offset at or before the damage.
    detected: u64,
    /// Opened with every acknowledged byte intact (the damage hit nothing that matters).
    harmless: u64,
}

impl Tally {
    /// Opens `image`, where `path` was damaged at `[at, at + len)`, and judges the outcome.
    fn judge(&mut self, image: &SimFs, options: &Options, expect: &LogState, path: &Path, at: u64) {
        let outcome = open(image, options).and_then(|wal| LogState::read(&wal));
        match outcome {
            Ok(state) if state == *expect => self.harmless += 1,
            Ok(state) => panic!(
                "damage in {} at byte {at} went unnoticed: {}",
                path.display(),
                common::describe_mismatch(&state, std::slice::from_ref(expect))
            ),
            Err(Error::Corrupt {
                segment, offset, ..
            }) => {
                assert_eq!(
                    segment.file_name(),
                    path.file_name(),
                    "damage at byte {at} of {} reported in another file",
                    path.display()
                );
                assert!(
                    offset <= at,
                    "damage at byte {at} of {} reported after it, at {offset}",
                    path.display()
                );
                self.detected += 1;
            }
            Err(e) => panic!("damage in {} at byte {at}: {e:?}", path.display()),
        }
    }
}

/// The files of `fs` with how many leading bytes of each hold written data: up to the last
/// byte that is not zero (the rest is preallocated zeros).
fn written_extents(fs: &SimFs) -> Vec<(std::path::PathBuf, usize)> {
    log_files(fs)
        .into_iter()
        .map(|path| {
            let bytes = fs.file_bytes(&path).expect("listed file");
            let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            (path, end)
        })
        .filter(|(_, end)| *end > 0)
        .collect()
}

#[test]
fn every_flipped_bit_is_detected_or_harmless() {
    let options = small_options();
    let (base, expect) = reference_log(&options);
    let exhaustive = std::env::var("RAFTWAL_FLIPS").is_ok_and(|v| v == "all");
    let mut rng = SimRng::new(7);
    let mut tally = Tally::default();
    let extents = written_extents(&base);
    assert!(
        extents.len() >= 3,
        "the reference log has too few files: {extents:?}"
    );
    for (path, end) in &extents {
        for at in 0..*end {
            let bits: Vec<u8> = if exhaustive {
                (0..8).collect()
            } else {
                vec![rng.below(8) as u8]
            };
            for bit in bits {
                let image = base.crash_image(&ImageSpec::NOTHING, 0);
                image
                    .damage(path, |b| b[at] ^= 1 << bit)
                    .expect("file exists");
                tally.judge(&image, &options, &expect, path, at as u64);
            }
        }
    }
    println!(
        "bit flips: {} files, {} flips, {} detected as Corrupt, {} harmless, 0 silent",
        extents.len(),
        tally.detected + tally.harmless,
        tally.detected,
        tally.harmless
    );
    assert!(tally.detected > 0);
}

/// How one 512-byte sector is damaged.
#[derive(Clone, Copy, Debug)]
enum SectorFault {
    /// All zeros (a lost or never-written sector).
    Zeroed,
    /// Random bytes.
    Garbage,
    /// A copy of another sector of the same file (a lost or misdirected write).
    Stale,
}

#[test]
fn every_damaged_sector_is_detected_or_harmless() {
    let options = small_options();
    let (base, expect) = reference_log(&options);
    let mut rng = SimRng::new(11);
    let mut tally = Tally::default();
    for (path, end) in written_extents(&base) {
        for sector in 0..end.div_ceil(SECTOR) {
            for fault in [
                SectorFault::Zeroed,
                SectorFault::Garbage,
                SectorFault::Stale,
            ] {
                let at = sector * SECTOR;
                let image = base.crash_image(&ImageSpec::NOTHING, 0);
                image
                    .damage(&path, |b| {
                        let other = rng.below((b.len() / SECTOR) as u64) as usize * SECTOR;
                        let copy = b[other..].iter().take(SECTOR).copied().collect::<Vec<_>>();
                        let target = &mut b[at..(at + SECTOR).min(end)];
                        match fault {
                            SectorFault::Zeroed => target.fill(0),
                            SectorFault::Garbage => rng.fill(target),
                            SectorFault::Stale => {
                                let n = target.len().min(copy.len());
                                target[..n].copy_from_slice(&copy[..n]);
                            }
                        }
                    })
                    .expect("file exists");
                tally.judge(&image, &options, &expect, &path, at as u64);
            }
        }
    }
    println!(
        "damaged sectors (zeroed, garbage, stale): {} checked, {} detected as Corrupt, {} \
         harmless, 0 silent",
        tally.detected + tally.harmless,
        tally.detected,
        tally.harmless
    );
    assert!(tally.detected > 0);
}

/// Where `needle` starts in the durable bytes of the log, as (file, offset).
fn locate(fs: &SimFs, needle: &[u8]) -> (std::path::PathBuf, usize) {
    for path in log_files(fs) {
        let bytes = fs.file_bytes(&path).expect("listed file");
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            return (path, at);
        }
    }
    panic!("payload not found on disk");
}

/// etcd's `TestRepairWriteTearMiddle` saves 5 synced records, zeroes a sector inside the 2nd,
/// and expects its repair to keep 1 entry, silently dropping 4 synced ones. Here it must be
/// `Corrupt`.
#[test]
fn zeroed_sector_inside_an_early_record_is_corruption_not_a_torn_tail() {
    let options = small_options();
    let fs = SimFs::new(5);
    let payloads: Vec<Vec<u8>> = (1..=5u8).map(|i| vec![i; 1800]).collect();
    {
        let wal = open(&fs, &options).expect("open");
        for (i, data) in payloads.iter().enumerate() {
            let entry = Entry::new(i as u64 + 1, 1, data.clone());
            let batch = Batch {
                entries: vec![entry],
                hard_state: Some(HardState {
                    term: 1,
                    vote: 1,
                    commit: i as u64 + 1,
                }),
                ..Batch::default()
            };
            wal.append_sync(&batch).expect("healthy disk");
        }
    }
    let image = fs.crash_image(&ImageSpec::NOTHING, 0);
    let (path, at) = locate(&image, &payloads[1]);
    let sector = at.next_multiple_of(SECTOR);
    image
        .damage(&path, |b| b[sector..sector + SECTOR].fill(0))
        .expect("file exists");
    match open(&image, &options) {
        Err(Error::Corrupt { offset, .. }) => assert!(offset <= sector as u64),
        Err(e) => panic!("expected Corrupt, got {e:?}"),
        Ok(wal) => panic!(
            "opened with last index {} after a sector of entry 2 was zeroed",
            wal.last_index()
        ),
    }
}

/// Damage to the newest hard state or snapshot metadata must not silently roll either back.
#[test]
fn damaged_hard_state_and_snapshot_meta_never_roll_back_silently() {
    let options = small_options();
    let fs = SimFs::new(6);
    let hs = HardState {
        term: 0x7777,
        vote: 0x5151,
        commit: 2,
    };
    let meta = SnapshotMeta {
        index: 1,
        term: 1,
        conf_state: vec![0xc5; 40].into(),
    };
    let mut expect = LogState::default();
    {
        let wal = open(&fs, &options).expect("open");
        let batch = Batch {
            entries: vec![Entry::new(1, 1, &b"a"[..]), Entry::new(2, 1, &b"b"[..])],
            ..Batch::default()
        };
        let ops = [
            Op::Append(batch),
            Op::Append(Batch {
                hard_state: Some(hs),
                ..Batch::default()
            }),
            Op::SaveSnapshotMeta(meta.clone()),
        ];
        for op in &ops {
            wal.sync(op.run(&wal).expect("healthy disk"))
                .expect("healthy disk");
            expect.apply(op);
        }
    }
    let base = fs.crash_image(&ImageSpec::NOTHING, 0);
    let mut tally = Tally::default();
    for needle in [
        &hs.vote.to_le_bytes()[..],
        &hs.term.to_le_bytes()[..],
        &meta.conf_state[..],
    ] {
        let (path, at) = locate(&base, needle);
        for bit in 0..8 {
            let image = base.crash_image(&ImageSpec::NOTHING, 0);
            image
                .damage(&path, |b| b[at] ^= 1 << bit)
                .expect("file exists");
            tally.judge(&image, &options, &expect, &path, at as u64);
        }
    }
    println!("hard state and snapshot meta flips: {tally:?}");
}

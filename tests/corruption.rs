//! Media faults in acknowledged data (research/reliability.md G4/G5): a single flipped bit, a
//! zeroed sector, a garbage sector and a stale sector, anywhere in any file of a synced log.
//! Each must be reported as `Error::Corrupt` naming the damaged file and an offset at or before
//! the damage, or leave the log exactly as it was acknowledged (damage to bytes that carry
//! nothing). Never an error of another kind, a panic, a silently shorter log or altered bytes.
//!
//! `RAFTWAL_FLIPS=all` flips every bit instead of one random bit per byte.

mod common;

use std::path::{Path, PathBuf};

use common::{
    LogState, Op, Workload, dir, log_files, open, open_report, recycling_options, small_options,
};
use raftwal::fs::SimFs;
use raftwal::fs::sim::{ImageSpec, SimRng};
use raftwal::inspect::{self, What};
use raftwal::testing::decode_header;
use raftwal::{Batch, Entry, EntryId, Error, HardState, Options, SnapshotMeta};

const SECTOR: usize = 512;

/// A synced log, the states it went through, and where its final write lies.
struct Reference {
    /// Durable bytes only.
    image: SimFs,
    /// The state after each op; the last is the acknowledged state.
    states: Vec<LogState>,
    /// The file holding the final write.
    final_file: PathBuf,
    /// The sector-aligned offset at which the final write's frame may begin.
    ///
    /// NB: damage from here to the end of the written bytes cannot be told from a torn final
    /// write on local evidence alone: no later frame vouches for it. Recovery may cut it off
    /// (and report it); everywhere else damage must be reported as corruption.
    final_start: usize,
}

impl Reference {
    /// Runs `ops`, each synced, then one final append of a known payload.
    fn build(options: &Options, ops: &[Op]) -> Self {
        let fs = SimFs::new(99);
        let wal = open(&fs, options).expect("open a new log");
        let mut state = LogState::default();
        let mut states = vec![state.clone()];
        let final_payload: Vec<u8> = {
            let mut p = vec![0; 1000];
            SimRng::new(0xf1a1).fill(&mut p);
            p
        };
        let last = ops.iter().fold(LogState::default(), |mut s, op| {
            s.apply(op);
            s
        });
        let term = last.last_term().max(last.hard_state.term);
        let final_op = Op::Append(Batch {
            entries: vec![Entry::new(
                last.last_index() + 1,
                term,
                final_payload.clone(),
            )],
            ..Batch::default()
        });
        for op in ops.iter().chain([&final_op]) {
            let lsn = op.run(&wal).expect("healthy disk");
            wal.sync(lsn).expect("healthy disk");
            state.apply(op);
            states.push(state.clone());
        }
        let read = LogState::read(&wal).expect("read back");
        assert_eq!(
            read, state,
            "the log differs from its model before any damage"
        );
        let image = fs.crash_image(&ImageSpec::NOTHING, 0);
        let (final_file, at) = locate(&image, &final_payload);
        // The frame header and batch fields sit in front of the payload.
        let final_start = at.saturating_sub(256) / SECTOR * SECTOR;
        Self {
            image,
            states,
            final_file,
            final_start,
        }
    }

    /// Seeded appends, overwrites, truncations, hard states and snapshot metadata (no purges),
    /// until about `bytes` of payload were written.
    fn random(options: &Options, bytes: usize) -> Self {
        let mut workload = Workload::new(99, 1500);
        workload.compaction = false;
        let mut ops = Vec::new();
        let mut written = 0;
        while written < bytes {
            let op = workload.next_op();
            if let Op::Append(batch) = &op {
                written += batch.entries.iter().map(|e| e.data.len()).sum::<usize>();
            }
            ops.push(op);
        }
        Self::build(options, &ops)
    }

    /// A log compacted right behind its writer in segments so small that its final write lands
    /// in a recycled segment, where stale bytes of the file's earlier life follow it.
    ///
    /// NB: whether the segment prepared ahead comes from the free pool depends on whether the
    /// purge that frees a file completed before the preparing thread looked, so a log one
    /// entry longer is tried until the final write is in a recycled segment.
    fn recycled(options: &Options) -> Self {
        let mut ops = Vec::new();
        for i in 1..=100u64 {
            ops.push(Op::Append(Batch {
                entries: vec![Entry::new(i, 1, vec![i as u8; 700])],
                ..Batch::default()
            }));
            if i > 1 {
                ops.push(Op::PurgeTo(EntryId::new(1, i - 1)));
            }
            if i >= 40 {
                let r = Self::build(options, &ops);
                let bytes = r.image.file_bytes(&r.final_file).expect("final file");
                if decode_header(&bytes).is_ok_and(|h| h.recycled) {
                    return r;
                }
            }
        }
        panic!("the final write never landed in a recycled segment");
    }

    fn expect(&self) -> &LogState {
        self.states.last().expect("at least the initial state")
    }

    /// A copy of the durable disk to damage.
    fn copy(&self) -> SimFs {
        self.image.crash_image(&ImageSpec::NOTHING, 0)
    }
}

/// How damaged logs opened.
#[derive(Debug, Default)]
struct Tally {
    /// Reported as corrupt, at the right file and an offset at or before the damage.
    detected: u64,
    /// Opened with every acknowledged byte intact (the damage hit nothing that matters).
    harmless: u64,
    /// Damage inside the final write, cut off like a torn write (see [`Reference::final_start`]).
    final_write_cut: u64,
}

impl Tally {
    /// Opens `image`, where `path` was damaged from byte `at`, and judges the outcome.
    fn judge(&mut self, image: &SimFs, options: &Options, r: &Reference, path: &Path, at: usize) {
        let outcome = open_report(image, options)
            .and_then(|(wal, report)| Ok((LogState::read(&wal)?, report)));
        let place = format!("damage in {} at byte {at}", path.display());
        match outcome {
            Ok((state, _)) if state == *r.expect() => self.harmless += 1,
            Ok((state, report)) => {
                let in_final_write = path == r.final_file && at >= r.final_start;
                assert!(
                    in_final_write && r.states.contains(&state),
                    "{place} went unnoticed: {}",
                    common::describe_mismatch(&state, std::slice::from_ref(r.expect()))
                );
                assert!(
                    report.torn_bytes_dropped > 0,
                    "{place}: the final write was dropped without a report"
                );
                let torn = report.torn_segment.as_deref().and_then(Path::file_name);
                assert_eq!(
                    torn,
                    path.file_name(),
                    "{place}: torn tail reported elsewhere"
                );
                self.final_write_cut += 1;
            }
            Err(Error::Corrupt {
                segment, offset, ..
            }) => {
                assert_eq!(
                    segment.file_name(),
                    path.file_name(),
                    "{place} reported in {}",
                    segment.display()
                );
                assert!(
                    offset <= at as u64,
                    "{place} reported after it, at {offset}"
                );
                self.detected += 1;
            }
            Err(e) => panic!("{place}: {e:?}"),
        }
    }

    fn total(&self) -> u64 {
        self.detected + self.harmless + self.final_write_cut
    }
}

/// The files of `fs` with how many leading bytes of each hold written data: up to the last
/// byte that is not zero (the rest is preallocated zeros).
fn written_extents(fs: &SimFs) -> Vec<(PathBuf, usize)> {
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
    let r = Reference::random(&options, 40 << 10);
    let exhaustive = std::env::var("RAFTWAL_FLIPS").is_ok_and(|v| v == "all");
    let mut rng = SimRng::new(7);
    let mut tally = Tally::default();
    let extents = written_extents(&r.image);
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
                let image = r.copy();
                image
                    .damage(path, |b| b[at] ^= 1 << bit)
                    .expect("file exists");
                tally.judge(&image, &options, &r, path, at);
            }
        }
    }
    println!(
        "bit flips: {} files, {} records, {} flips: {} detected as Corrupt, {} harmless, {} in \
         the final write cut off as torn and reported, 0 silent",
        extents.len(),
        r.states.len() - 1,
        tally.total(),
        tally.detected,
        tally.harmless,
        tally.final_write_cut
    );
    assert!(tally.detected > tally.total() / 2, "{tally:?}");
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
    let r = Reference::random(&options, 40 << 10);
    let mut rng = SimRng::new(11);
    let mut tally = Tally::default();
    for (path, end) in written_extents(&r.image) {
        for sector in 0..end.div_ceil(SECTOR) {
            for fault in [
                SectorFault::Zeroed,
                SectorFault::Garbage,
                SectorFault::Stale,
            ] {
                let at = sector * SECTOR;
                let image = r.copy();
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
                tally.judge(&image, &options, &r, &path, at);
            }
        }
    }
    println!(
        "damaged sectors (zeroed, garbage, stale): {} checked: {} detected as Corrupt, {} \
         harmless, {} in the final write cut off as torn, 0 silent",
        tally.total(),
        tally.detected,
        tally.harmless,
        tally.final_write_cut
    );
    assert!(tally.detected > tally.total() / 2, "{tally:?}");
}

/// In a recycled segment, stale bytes of the file's earlier life follow the final frame's end
/// marker. Damage to that frame or its marker, which no later frame vouches for, cannot be told
/// from a torn write, but must be reported: never taken for the stale bytes after the log.
/// (A sector of zeros over the frame's header is the one damage that still looks exactly like
/// a write that never reached the disk; docs/durability.md.)
#[test]
fn damage_to_the_final_frame_of_a_recycled_segment_is_never_silent() {
    let options = recycling_options();
    let r = Reference::recycled(&options);
    let bytes = r.image.file_bytes(&r.final_file).expect("final file");
    let segment = inspect::dump_with_fs(&r.image, &dir())
        .expect("dump")
        .into_iter()
        .find(|s| s.path == r.final_file)
        .expect("the final file is a segment");
    let last = segment.records.last().expect("frames");
    assert!(matches!(last.what, What::Batch { count: 1, .. }));
    let (start, end) = (last.offset as usize, (last.offset + last.len) as usize + 32);
    assert!(
        bytes[end..].iter().any(|&b| b != 0),
        "stale bytes follow the final frame's end marker"
    );
    let (_, healthy) = open_report(&r.copy(), &options).expect("undamaged");
    assert_eq!(
        healthy.torn_bytes_dropped, 0,
        "the end marker is a clean end"
    );
    let mut rng = SimRng::new(13);
    let mut tally = Tally::default();
    for at in start..end {
        let bit = rng.below(8);
        let image = r.copy();
        image
            .damage(&r.final_file, |b| b[at] ^= 1 << bit)
            .expect("file exists");
        tally.judge(&image, &options, &r, &r.final_file, at);
    }
    for sector in start / SECTOR..end.div_ceil(SECTOR) {
        let image = r.copy();
        let at = (sector * SECTOR).max(start);
        image
            .damage(&r.final_file, |b| {
                rng.fill(&mut b[at..(sector + 1) * SECTOR])
            })
            .expect("file exists");
        tally.judge(&image, &options, &r, &r.final_file, at);
    }
    println!(
        "final frame of a recycled segment, {} bytes with its end marker: {} damaged, {} cut off \
         as torn and reported, {} harmless, {} Corrupt, 0 silent",
        end - start,
        tally.total(),
        tally.final_write_cut,
        tally.harmless,
        tally.detected
    );
    assert!(
        tally.final_write_cut >= (end - start - 32) as u64,
        "{tally:?}"
    );
}

/// Where `needle` starts in the durable bytes of the log, as (file, offset).
fn locate(fs: &SimFs, needle: &[u8]) -> (PathBuf, usize) {
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

/// Damage to a synced hard state or snapshot metadata must not silently roll either back.
#[test]
fn damaged_hard_state_and_snapshot_meta_never_roll_back_silently() {
    let options = small_options();
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
    let ops = [
        Op::Append(Batch {
            entries: vec![Entry::new(1, 1, &b"a"[..]), Entry::new(2, 1, &b"b"[..])],
            ..Batch::default()
        }),
        Op::Append(Batch {
            hard_state: Some(hs),
            ..Batch::default()
        }),
        Op::SaveSnapshotMeta(meta.clone()),
    ];
    let r = Reference::build(&options, &ops);
    let mut tally = Tally::default();
    for needle in [
        &hs.vote.to_le_bytes()[..],
        &hs.term.to_le_bytes()[..],
        &meta.conf_state[..],
    ] {
        let (path, at) = locate(&r.image, needle);
        for bit in 0..8 {
            let image = r.copy();
            image
                .damage(&path, |b| b[at] ^= 1 << bit)
                .expect("file exists");
            tally.judge(&image, &options, &r, &path, at);
        }
    }
    println!("hard state and snapshot meta flips: {tally:?}");
    assert_eq!(tally.detected, 24, "{tally:?}");
}

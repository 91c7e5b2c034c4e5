//! Crash consistency (research/reliability.md G1/G2): run seeded workloads on SimFs, record the
//! disk before every sync and before a sample of the other writes, and build many legal
//! post-crash images of each moment. Every image must open, and recover to a state that holds
//! every acknowledged operation, nothing issued after the crash, and each batch whole or not at
//! all. Some recovered logs are then written, crashed and reopened again.
//!
//! Size: `RAFTWAL_CRASH_IMAGES` images in all (default 100,000), split over the tests below.
//! Replay one workload: `RAFTWAL_CRASH_SEED=<seed> cargo test --features test-util --test
//! crash replay -- --nocapture`.

mod common;

use std::sync::{Arc, Mutex};

use common::{
    History, LogState, Op, Workload, drive, env_u64, judge, open, recycling_options, small_options,
};
use raftwal::fs::SimFs;
use raftwal::fs::sim::{CrashPoint, ImageSpec, OpKind, SimRng};
use raftwal::testing::decode_header;
use raftwal::{Batch, Entry, Lsn, Options};

/// Operations per workload: enough to fill, rotate and purge a few 16 KiB segments.
const OPS: usize = 60;
/// Images built per crash point besides "nothing survives" and "everything survives".
const RANDOM_IMAGES: u64 = 6;
/// Every this many images, the recovered log is also written to, crashed and reopened.
const NESTED_EVERY: u64 = 8;
/// Every this many images, the power is also cut during recovery itself.
const RECOVERY_CRASH_EVERY: u64 = 64;
/// How many tests share the image budget (each runs its own seed stream).
const SHARDS: u64 = 4;

#[derive(Debug, Default)]
struct Counts {
    workloads: u64,
    points: u64,
    images: u64,
    nested: u64,
    recovery_images: u64,
    acked_ops: u64,
    /// Images per survival mode and per fill, so each mode's share shows.
    modes: std::collections::BTreeMap<String, u64>,
}

/// Runs workloads from seed `first_seed` on, `SHARDS` apart, until `budget` images are checked.
fn sweep(first_seed: u64, budget: u64) -> Counts {
    let options = small_options();
    let mut counts = Counts::default();
    let mut seed = first_seed;
    while counts.images < budget {
        check_workload(seed, &options, &mut counts);
        seed += SHARDS;
    }
    counts
}

/// Runs workload `seed`, then checks images of each recorded crash point.
fn check_workload(seed: u64, options: &Options, counts: &mut Counts) {
    let fs = SimFs::new(seed);
    let mut pick = SimRng::new(seed ^ 0xc0ffee);
    fs.capture(Box::new(move |op, _| {
        op.is_sync() || (op.mutates() && pick.one_in(3))
    }));
    let (history, error) = drive(&fs, options, seed, OPS);
    if let Some(e) = error {
        panic!("workload {seed} failed on a healthy disk: {e:?}");
    }
    fs.stop_capture();
    let points = fs.take_crash_points();
    counts.workloads += 1;
    counts.points += points.len() as u64;
    counts.acked_ops += history.acked_at.iter().filter(|a| a.is_some()).count() as u64;
    // The disk after the last sync is a crash point too: nothing may be missing from it.
    let end = fs.crash_point();
    for point in points.iter().chain([&end]) {
        check_point(seed, point, &history, options, counts);
    }
}

fn check_point(
    seed: u64,
    point: &CrashPoint,
    history: &History,
    options: &Options,
    c: &mut Counts,
) {
    let legal = history.legal_after_crash_at(point.seq);
    let mut rng = SimRng::new(seed ^ point.seq.rotate_left(32));
    let mut specs = vec![ImageSpec::NOTHING, ImageSpec::EVERYTHING];
    specs.extend((0..RANDOM_IMAGES).map(|_| ImageSpec::random(&mut rng)));
    for (i, spec) in specs.into_iter().enumerate() {
        let image_seed = rng.next_u64();
        let image = point.image(&spec, image_seed);
        let fail = |what: String| -> ! {
            panic!(
                "workload {seed}, crash before op #{} ({:?}), image {i} {spec:?} seed \
                 {image_seed}: {what}",
                point.seq, point.op
            )
        };
        let watch_recovery = c.images.is_multiple_of(RECOVERY_CRASH_EVERY);
        if watch_recovery {
            image.capture(Box::new(|op, _| op.mutates()));
        }
        let got = judge(&image, options, legal).unwrap_or_else(|e| fail(e));
        c.images += 1;
        for mode in [
            format!("{:?}", spec.survival),
            format!("{:?} fill", spec.fill),
        ] {
            *c.modes.entry(mode).or_default() += 1;
        }
        if watch_recovery {
            c.recovery_images +=
                crash_during_recovery(&image, options, &got, &mut rng).unwrap_or_else(|e| fail(e));
        }
        if c.images.is_multiple_of(NESTED_EVERY) {
            write_crash_reopen(&image, options, &got).unwrap_or_else(|e| fail(e));
            c.nested += 1;
        }
    }
}

/// Cuts the power at every write recovery made on `image` (recorded while it opened): each
/// such image must recover to the very state the first recovery found. Returns images checked.
fn crash_during_recovery(
    image: &SimFs,
    options: &Options,
    got: &LogState,
    rng: &mut SimRng,
) -> Result<u64, String> {
    image.stop_capture();
    let mut checked = 0;
    for point in image.take_crash_points() {
        for spec in [ImageSpec::NOTHING, ImageSpec::random(rng)] {
            let again = point.image(&spec, rng.next_u64());
            judge(&again, options, std::slice::from_ref(got)).map_err(|e| {
                format!(
                    "crash during recovery, before op #{} ({:?}), {spec:?}: {e}",
                    point.seq, point.op
                )
            })?;
            checked += 1;
        }
    }
    Ok(checked)
}

/// Appends one entry to the recovered log and syncs it, cuts the power, and expects the reopened
/// log to be the recovered one plus that entry: recovery left nothing that breaks later writes.
fn write_crash_reopen(image: &SimFs, options: &Options, got: &LogState) -> Result<(), String> {
    let entry = Entry::new(
        got.last_index() + 1,
        got.last_term(),
        &b"after recovery"[..],
    );
    let batch = Batch {
        entries: vec![entry],
        ..Batch::default()
    };
    let mut expect = got.clone();
    expect.apply(&Op::Append(batch.clone()));
    {
        let wal = open(image, options).map_err(|e| format!("second open failed: {e:?}"))?;
        wal.append_sync(&batch)
            .map_err(|e| format!("append after recovery failed: {e:?}"))?;
    }
    let again = image.crash_image(&ImageSpec::NOTHING, 0);
    judge(&again, options, std::slice::from_ref(&expect))
        .map(drop)
        .map_err(|e| format!("after recovery, append and crash: {e}"))
}

fn run_shard(shard: u64) {
    let budget = env_u64("RAFTWAL_CRASH_IMAGES", 100_000).div_ceil(SHARDS);
    let c = sweep(shard, budget);
    println!(
        "crash shard {shard}: {} workloads, {} crash points, {} images checked ({} also \
         written, crashed and reopened), {} more cut during recovery, {} acknowledged ops, 0 \
         lost",
        c.workloads, c.points, c.images, c.nested, c.recovery_images, c.acked_ops
    );
    println!("crash shard {shard} images by mode: {:?}", c.modes);
    assert!(c.images >= budget);
}

#[test]
fn crash_images_shard_0() {
    run_shard(0);
}

#[test]
fn crash_images_shard_1() {
    run_shard(1);
}

#[test]
fn crash_images_shard_2() {
    run_shard(2);
}

#[test]
fn crash_images_shard_3() {
    run_shard(3);
}

/// Replays one workload (`RAFTWAL_CRASH_SEED`) with all its crash points; a no-op without it.
#[test]
fn replay() {
    let Ok(seed) = std::env::var("RAFTWAL_CRASH_SEED") else {
        return;
    };
    let seed = seed.parse().expect("RAFTWAL_CRASH_SEED is a u64");
    let mut counts = Counts::default();
    check_workload(seed, &small_options(), &mut counts);
    println!("replayed workload {seed}: {counts:?}");
}

/// Crash at every single operation (not just a sample) of a few workloads, including the
/// operations of the very first open.
#[test]
fn crash_before_every_operation() {
    let options = small_options();
    let mut images = 0;
    for seed in 1000..1003 {
        let fs = SimFs::new(seed);
        fs.capture(Box::new(|op, _| op != OpKind::Len));
        let (history, error) = drive(&fs, &options, seed, 25);
        assert!(error.is_none(), "workload {seed}: {error:?}");
        for point in fs.take_crash_points() {
            let legal = history.legal_after_crash_at(point.seq);
            for spec in [ImageSpec::NOTHING, ImageSpec::EVERYTHING] {
                let image = point.image(&spec, point.seq);
                if let Err(e) = judge(&image, &options, legal) {
                    panic!(
                        "workload {seed}, before op #{} ({:?}), {spec:?}: {e}",
                        point.seq, point.op
                    );
                }
                images += 1;
            }
        }
    }
    println!("crash before every operation: {images} images checked");
    assert!(images > 0);
}

/// Regression (found by the crash-during-recovery images): a crash while the very first open
/// built the first segment left its temporary file behind, and every later open failed with
/// `AlreadyExists`. Every image of every moment of a first open must open as an empty log.
#[test]
fn crash_while_creating_a_new_log_never_blocks_the_next_open() {
    let options = small_options();
    let fs = SimFs::new(7);
    fs.capture(Box::new(|op, _| op.mutates()));
    open(&fs, &options).expect("a new log opens");
    let empty = [LogState::default()];
    let mut rng = SimRng::new(7);
    let points = fs.take_crash_points();
    assert!(
        points.len() > 4,
        "the first open did too little to test: {}",
        points.len()
    );
    for point in &points {
        for spec in [
            ImageSpec::NOTHING,
            ImageSpec::EVERYTHING,
            ImageSpec::random(&mut rng),
        ] {
            let image = point.image(&spec, rng.next_u64());
            judge(&image, &options, &empty).unwrap_or_else(|e| {
                panic!("before op #{} ({:?}), {spec:?}: {e}", point.seq, point.op)
            });
        }
    }
}

/// A new log's directory appears whole or not at all (issue 2): it is built under a temporary
/// name, renamed into place and its parent synced. A power cut at any moment of a first open
/// in directories that do not exist yet leaves no log directory, or one whose first segment
/// is complete; and an entry acknowledged after the open survives a power cut, so every new
/// ancestor's name was synced as well.
#[test]
fn a_new_log_directory_appears_whole_or_not_at_all() {
    let options = small_options();
    let dir = std::path::Path::new("/data/node1/log");
    let open_at =
        |fs: &SimFs| raftwal::Wal::open_with_fs(Arc::new(fs.clone()), dir, options.clone());
    let fs = SimFs::new(11);
    fs.capture(Box::new(|op, _| op.mutates()));
    let (wal, _) = open_at(&fs).expect("a new log opens");
    fs.stop_capture();
    let acked = Batch {
        entries: vec![Entry::new(1, 1, "x")],
        ..Batch::default()
    };
    wal.append_sync(&acked).expect("append");
    drop(wal);
    let (mut absent, mut whole) = (0, 0);
    let mut rng = SimRng::new(11);
    for point in fs.take_crash_points() {
        for spec in [
            ImageSpec::NOTHING,
            ImageSpec::EVERYTHING,
            ImageSpec::random(&mut rng),
        ] {
            let image = point.image(&spec, rng.next_u64());
            let at = format!("before op #{} ({:?}), {spec:?}", point.seq, point.op);
            use raftwal::fs::Fs;
            match image.list_dir(dir) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => absent += 1,
                Ok(names) => {
                    assert!(
                        names.iter().any(|n| n == "0000000000000001.wal"),
                        "{at}: {names:?}"
                    );
                    // Whole before open could repair anything: a header and its checkpoint.
                    let dump = raftwal::inspect::dump_with_fs(&image, dir).expect("dump");
                    let first = dump.first().unwrap_or_else(|| panic!("{at}: no segment"));
                    assert!(first.header.is_ok(), "{at}: {:?}", first.header);
                    assert!(
                        matches!(
                            first.records.first().map(|r| &r.what),
                            Some(raftwal::inspect::What::Checkpoint { .. })
                        ),
                        "{at}: {:?}",
                        first.records
                    );
                    whole += 1;
                }
                Err(e) => panic!("{at}: {e}"),
            }
            let (wal, _) = open_at(&image).unwrap_or_else(|e| panic!("{at}: {e:?}"));
            assert_eq!(wal.last_index(), 0, "{at}");
        }
    }
    println!(
        "first open in new directories: {absent} images without the log, {whole} with it whole"
    );
    assert!(absent > 0 && whole > 0, "{absent} absent, {whole} whole");
    let (wal, _) = open_at(&fs.crash_image(&ImageSpec::NOTHING, 1)).expect("open after the cut");
    assert_eq!(
        wal.entries(1, 2, u64::MAX).expect("the acknowledged entry")[0].data,
        "x"
    );
}

/// The asynchronous path a persistence pipeline takes: every op is acknowledged by an
/// `on_durable` callback from the WAL's background syncer while the workload keeps writing
/// (group commit), never by a blocking sync. Thread timing makes runs differ slightly.
#[test]
fn crash_images_with_background_acks() {
    let options = small_options();
    let budget = env_u64("RAFTWAL_CRASH_IMAGES", 100_000) / 20;
    let mut counts = Counts::default();
    let mut seed = 5000;
    while counts.images < budget {
        let fs = sampling_fs(seed, 3);
        let history = drive_with_callbacks(&fs, &options, seed, OPS);
        counts.acked_ops += history.acked_at.iter().filter(|a| a.is_some()).count() as u64;
        check_captured(seed, &fs, &history, &options, &mut counts);
        seed += 1;
    }
    println!(
        "background acks: {} workloads, {} crash points, {} images checked, {} acknowledged \
         ops, 0 lost",
        counts.workloads, counts.points, counts.images, counts.acked_ops
    );
}

/// A new disk for workload `seed` that records a crash point before every sync and before
/// one in `one_in` of the other writes.
fn sampling_fs(seed: u64, one_in: u64) -> SimFs {
    let fs = SimFs::new(seed);
    let mut pick = SimRng::new(seed);
    fs.capture(Box::new(move |op, _| {
        op.is_sync() || (op.mutates() && pick.one_in(one_in))
    }));
    fs
}

/// Checks images of every crash point `fs` recorded for workload `seed`, and of its end.
fn check_captured(seed: u64, fs: &SimFs, history: &History, options: &Options, c: &mut Counts) {
    fs.stop_capture();
    c.workloads += 1;
    for point in fs.take_crash_points().iter().chain([&fs.crash_point()]) {
        c.points += 1;
        check_point(seed, point, history, options, c);
    }
}

/// Runs `ops` operations, each acknowledged through [`raftwal::Wal::on_durable`]; returns once
/// every callback has run.
fn drive_with_callbacks(fs: &SimFs, options: &Options, seed: u64, ops: usize) -> History {
    let acks: Arc<Mutex<Vec<(Lsn, u64)>>> = Arc::default();
    let mut history = History::new();
    let mut workload = Workload::new(seed, 3000);
    {
        let wal = open(fs, options).expect("open a new log");
        for _ in 0..ops {
            let op = workload.next_op();
            let seq = fs.op_count();
            let lsn = op.run(&wal).expect("healthy disk");
            history.issued(seq, lsn, &workload.state);
            let (acks, fs) = (Arc::clone(&acks), fs.clone());
            wal.on_durable(
                lsn,
                Box::new(move |result| {
                    result.expect("healthy disk");
                    // Read after the sync returned: at or after the true moment, never before.
                    let at = fs.op_count();
                    acks.lock().expect("ack list").push((lsn, at));
                }),
            );
        }
    }
    // The drop ran every waiting callback.
    let acks = acks.lock().expect("ack list");
    assert_eq!(acks.len(), ops, "callbacks lost");
    if let Some(w) = acks.windows(2).find(|w| w[0].0 > w[1].0) {
        panic!("seed {seed}: callbacks out of Lsn order: {w:?} in {acks:?}");
    }
    for &(lsn, at) in acks.iter() {
        history.synced(lsn, at);
    }
    history
}

/// How many segment files of `fs`'s log carry the recycled flag.
fn recycled_segments(fs: &SimFs) -> usize {
    common::log_files(fs)
        .iter()
        .filter_map(|path| fs.file_bytes(path).ok())
        .filter(|bytes| decode_header(bytes).is_ok_and(|h| h.recycled))
        .count()
}

/// A log compacted right behind its writer, in small segments, recycles purged files as
/// segments all the time: a crash at every mutating operation of it (freeing a segment,
/// zeroing a free file's header, renaming it into place, writing over stale bytes) must lose
/// nothing acknowledged, fabricate nothing, and resurrect no stale frame.
#[test]
fn crash_images_of_a_log_that_recycles_its_segments() {
    let options = recycling_options();
    let budget = env_u64("RAFTWAL_CRASH_IMAGES", 100_000) / 10;
    let mut counts = Counts::default();
    let mut recycled = 0;
    let mut seed = 9000;
    while counts.images < budget {
        let fs = sampling_fs(seed, 2);
        let (history, error) = drive(&fs, &options, seed, OPS * 2);
        assert!(error.is_none(), "workload {seed}: {error:?}");
        recycled += recycled_segments(&fs);
        check_captured(seed, &fs, &history, &options, &mut counts);
        seed += 1;
    }
    println!(
        "recycling: {} workloads, {recycled} recycled segments at their ends, {} crash points, \
         {} images",
        counts.workloads, counts.points, counts.images
    );
    assert!(
        recycled >= counts.workloads as usize,
        "too few segments were recycled to test: {recycled} in {} workloads",
        counts.workloads
    );
}

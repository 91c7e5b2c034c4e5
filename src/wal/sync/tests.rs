//! Group commit step by step, on a file whose syncs block until the test lets them end.

use std::io;
use std::thread::{self, JoinHandle};

use bytes::Bytes;

use super::*;

/// A segment whose every `sync_data` blocks until the test allows it; it has no other use.
#[derive(Debug, Default)]
struct GatedFile {
    gate: Mutex<Gate>,
    moved: Condvar,
}

#[derive(Debug, Default)]
struct Gate {
    /// Syncs begun so far; they are numbered from 1 in that order.
    begun: u64,
    /// Syncs numbered up to this may end. Invariant: never decreases.
    allowed: u64,
    /// The syncs allowed to end fail.
    fail: bool,
}

impl GatedFile {
    fn begun(&self) -> u64 {
        lock(&self.gate).begun
    }

    /// Lets the syncs numbered up to `n` end, with an error if `fail`.
    fn allow(&self, n: u64, fail: bool) {
        let mut gate = lock(&self.gate);
        gate.allowed = n;
        gate.fail = fail;
        self.moved.notify_all();
    }
}

impl File for GatedFile {
    fn sync_data(&self) -> io::Result<()> {
        let mut gate = lock(&self.gate);
        gate.begun += 1;
        let number = gate.begun;
        self.moved.notify_all();
        while gate.allowed < number {
            gate = self.moved.wait(gate).unwrap();
        }
        if gate.fail {
            return Err(io::Error::other("injected sync failure"));
        }
        Ok(())
    }
    fn read_exact_at(&self, _: &mut [u8], _: u64) -> io::Result<()> {
        Err(unused())
    }
    fn write_all_at(&self, _: &[u8], _: u64) -> io::Result<()> {
        Err(unused())
    }
    fn len(&self) -> io::Result<u64> {
        Err(unused())
    }
    fn set_len(&self, _: u64) -> io::Result<()> {
        Err(unused())
    }
    fn allocate_zeroed(&self, _: u64) -> io::Result<()> {
        Err(unused())
    }
    fn map_readonly(&self, _: u64) -> io::Result<Bytes> {
        Err(unused())
    }
}

fn unused() -> io::Error {
    io::Error::other("group commit only syncs")
}

/// A sync point over a fresh gated file, everything up to Lsn 0 durable.
fn gated() -> (Arc<GatedFile>, Arc<SyncPoint>) {
    gated_spinning(GATHER_SPIN)
}

/// As [`gated`], with leaders spinning at most `spin` for released callers to come back.
fn gated_spinning(spin: Duration) -> (Arc<GatedFile>, Arc<SyncPoint>) {
    let file = Arc::new(GatedFile::default());
    let mut point = SyncPoint::new(0, Arc::clone(&file) as Arc<dyn File>, "gated.wal".into());
    point.spin = spin;
    (file, Arc::new(point))
}

fn spawn_sync(point: &Arc<SyncPoint>, lsn: u64) -> JoinHandle<Result<()>> {
    let point = Arc::clone(point);
    thread::spawn(move || point.sync(lsn))
}

/// Spins until `reached` holds of the point's state (it waits for threads, never for time).
fn until(point: &SyncPoint, reached: impl Fn(&Progress) -> bool) {
    while !reached(&lock(&point.progress)) {
        thread::yield_now();
    }
}

/// Yields many times, giving any other thread every chance to act.
fn give_every_chance() {
    for _ in 0..10_000 {
        thread::yield_now();
    }
}

/// A writer's sync: it begins and ends an append (of nothing new) first.
fn spawn_writer_sync(point: &Arc<SyncPoint>, lsn: u64) -> JoinHandle<Result<()>> {
    let point = Arc::clone(point);
    thread::spawn(move || {
        drop(point.begin_append());
        point.sync(lsn)
    })
}

/// An append of the frame of `lsn`, begun and ended.
fn append(point: &SyncPoint, lsn: u64) {
    let _appending = point.begin_append();
    point.wrote(lsn);
}

#[test]
fn a_caller_is_released_only_by_a_sync_that_began_after_its_write() {
    let (file, point) = gated();
    point.wrote(1);
    let first = spawn_sync(&point, 1);
    until(&point, |p| p.leader);
    while file.begun() < 1 {
        thread::yield_now();
    }
    // Written while the first sync runs: that sync proves nothing about it.
    point.wrote(2);
    let second = spawn_sync(&point, 2);
    until(&point, |p| p.waiting.iter().any(|w| w.lsn == 2));
    file.allow(1, false);
    first.join().unwrap().unwrap();
    while file.begun() < 2 && !second.is_finished() {
        thread::yield_now();
    }
    assert!(
        !second.is_finished(),
        "released by a sync that began before its write"
    );
    assert_eq!((file.begun(), point.synced()), (2, 1));
    file.allow(2, false);
    second.join().unwrap().unwrap();
    assert_eq!((file.begun(), point.synced()), (2, 2));
}

#[test]
fn a_failed_sync_fails_its_leader_and_every_waiter_and_is_never_retried() {
    let (file, point) = gated();
    point.wrote(1);
    let leader = spawn_sync(&point, 1);
    while file.begun() < 1 {
        thread::yield_now();
    }
    point.wrote(2);
    // One caller the failed sync would have covered, one it would not.
    let covered = spawn_sync(&point, 1);
    let later = spawn_sync(&point, 2);
    until(&point, |p| p.waiting.len() == 2);
    file.allow(1, true);
    assert!(matches!(
        leader.join().unwrap(),
        Err(Error::Io {
            op: IoOp::SyncData,
            ..
        })
    ));
    assert!(matches!(covered.join().unwrap(), Err(Error::Poisoned)));
    assert!(matches!(later.join().unwrap(), Err(Error::Poisoned)));
    assert!(matches!(point.sync(2), Err(Error::Poisoned)));
    assert_eq!((file.begun(), point.synced()), (1, 0));
}

#[test]
fn a_leader_lets_the_appends_under_way_end_and_its_sync_covers_them() {
    // No spin: the leader parks at once, waiting for the append under way only.
    let (file, point) = gated_spinning(Duration::ZERO);
    point.wrote(1);
    let appending = point.begin_append();
    let leader = spawn_sync(&point, 1);
    while point.goal.load(Ordering::SeqCst) == NO_GOAL {
        thread::yield_now();
    }
    // Begun after the leader fixed its goal: not waited for, so a stream of appends cannot
    // stall it.
    let late = point.begin_append();
    give_every_chance();
    assert_eq!(file.begun(), 0, "synced while an append was under way");
    point.wrote(2);
    drop(appending);
    while file.begun() < 1 {
        thread::yield_now();
    }
    file.allow(1, false);
    leader.join().unwrap().unwrap();
    assert_eq!((file.begun(), point.synced()), (1, 2));
    drop(late);
}

#[test]
fn a_leader_waits_for_as_many_appends_as_the_last_sync_released_callers() {
    // A spin that never runs out here: the leader waits for the callers to come back.
    let (file, point) = gated_spinning(Duration::from_secs(3600));
    point.wrote(1);
    let first = spawn_writer_sync(&point, 1);
    while file.begun() < 1 {
        thread::yield_now();
    }
    let second = spawn_writer_sync(&point, 1);
    until(&point, |p| p.waiting.iter().any(|w| w.lsn == 1));
    file.allow(2, false);
    first.join().unwrap().unwrap();
    second.join().unwrap().unwrap();
    // Two callers released: one is back with its append and leads; the other is not yet.
    append(&point, 2);
    let leader = spawn_sync(&point, 2);
    until(&point, |p| p.leader);
    give_every_chance();
    assert_eq!(
        file.begun(),
        1,
        "synced before the released callers came back"
    );
    append(&point, 3);
    let last = spawn_sync(&point, 3);
    leader.join().unwrap().unwrap();
    last.join().unwrap().unwrap();
    assert_eq!((file.begun(), point.synced()), (2, 3), "one sync for both");
}

#[test]
fn a_caller_that_did_not_append_is_not_expected_back() {
    let (file, point) = gated();
    file.allow(u64::MAX, false);
    append(&point, 1);
    // The background syncer's way: it syncs what others wrote.
    spawn_sync(&point, 1).join().unwrap().unwrap();
    assert_eq!(point.synced(), 1);
    let expected = lock(&point.progress).expected;
    assert_eq!(expected, point.begun.load(Ordering::SeqCst));
}

#[test]
fn a_leader_whose_spin_runs_out_syncs_without_the_callers_not_back() {
    let (file, point) = gated_spinning(Duration::ZERO);
    file.allow(u64::MAX, false);
    point.wrote(1);
    lock(&point.progress).expected = 2;
    point.sync(1).unwrap();
    assert_eq!((file.begun(), point.synced()), (1, 1));
}

#[test]
fn a_lone_caller_syncs_at_once_each_time() {
    let (file, point) = gated();
    file.allow(u64::MAX, false);
    for lsn in 1..=5 {
        append(&point, lsn);
        point.sync(lsn).unwrap();
        assert_eq!((file.begun(), point.synced()), (lsn, lsn));
        // It expects itself back only: its next append ends any spin at once.
        let expected = lock(&point.progress).expected;
        assert_eq!(expected, point.begun.load(Ordering::SeqCst) + 1);
    }
    // Nothing new: no sync.
    point.sync(5).unwrap();
    assert_eq!(file.begun(), 5);
    assert!(matches!(point.sync(6), Err(Error::InvalidCall(_))));
}

/// A rotation syncs the segment the leader syncs. Linux reports a writeback error to one
/// fdatasync only, so the two must not overlap: once the rotation's sync has failed, the
/// leader's must not start, or it could return Ok for the page that was lost.
#[test]
fn a_sync_never_starts_while_another_of_the_log_runs() {
    let (file, point) = gated();
    point.wrote(1);
    let seal = {
        let (point, file) = (Arc::clone(&point), Arc::clone(&file));
        thread::spawn(move || point.sync_data(file.as_ref(), Path::new("gated.wal")))
    };
    while file.begun() < 1 {
        thread::yield_now();
    }
    let leader = spawn_sync(&point, 1);
    until(&point, |p| p.leader);
    // Nothing to gather: the leader goes to its sync. Give an overlapping one every chance.
    give_every_chance();
    assert_eq!(file.begun(), 1, "two syncs of the log in flight at once");
    file.allow(1, true);
    assert!(matches!(seal.join().unwrap(), Err(Error::Io { .. })));
    file.allow(2, false);
    assert!(matches!(leader.join().unwrap(), Err(Error::Poisoned)));
    assert_eq!(point.synced(), 0);
}

/// A failed directory sync poisons the log like a failed data sync, and no sync of the
/// directory runs after it (its changes may be lost, and a later sync would not say so).
#[cfg(feature = "test-util")]
#[test]
fn a_failed_directory_sync_poisons_and_none_runs_after_it() {
    use crate::fs::SimFs;
    use crate::fs::sim::{Fault, FaultError, OpKind};
    let (_file, point) = gated();
    let fs = SimFs::new(1);
    let dir = Path::new("/d");
    fs.create_dir_all(dir).unwrap();
    point.sync_dir(&fs, dir).unwrap();
    fs.inject(Fault::nth(OpKind::SyncDir, 0, FaultError::Eio));
    assert!(matches!(
        point.sync_dir(&fs, dir),
        Err(Error::Io {
            op: IoOp::SyncDir,
            ..
        })
    ));
    let syncs = fs.count(OpKind::SyncDir);
    assert!(matches!(point.sync_dir(&fs, dir), Err(Error::Poisoned)));
    assert!(matches!(point.sync(0), Err(Error::Poisoned)));
    assert_eq!(
        fs.count(OpKind::SyncDir),
        syncs,
        "a directory sync ran after the failure"
    );
}

//! What openraft's suite does not cover: the log, vote, committed id and last purged id survive a
//! reopen (including after a purge past the last entry and a purge cut short by a crash), the
//! flush callback waits for the real fdatasync, readers keep working while the log is purged,
//! and (feature `test-util`) acknowledged writes and purges survive power cuts on `SimFs`.

mod openraft_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use openraft::storage::{LogState, RaftLogReader, RaftLogStorage, RaftLogStorageExt};
use openraft::{BasicNode, EntryPayload, LeaderId, LogId, Membership, Vote};
use raftwal::adapters::openraft::OpenraftLog;
use raftwal::fs::{File, Fs, LockGuard, OpenMode, StdFs};
use raftwal::{Options, SnapshotMeta, Wal};

use openraft_support::{Config, open_log};

type Entry = openraft::Entry<Config>;

fn log_id(term: u64, node_id: u64, index: u64) -> LogId<u64> {
    LogId::new(LeaderId::new(term, node_id), index)
}

fn blank(term: u64, node_id: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, node_id, index),
        payload: EntryPayload::Blank,
    }
}

fn request(term: u64, node_id: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, node_id, index),
        payload: EntryPayload::Normal(format!("request {index}")),
    }
}

/// Blank entries `indexes`, all from leader `(term, node_id)`.
fn blanks(term: u64, node_id: u64, indexes: impl IntoIterator<Item = u64>) -> Vec<Entry> {
    indexes
        .into_iter()
        .map(|i| blank(term, node_id, i))
        .collect()
}

/// Everything openraft reads back at start-up.
#[derive(Debug, PartialEq)]
struct Persisted {
    state: LogState<Config>,
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
    entries: Vec<Entry>,
}

async fn persisted(log: &mut OpenraftLog<Config>) -> Persisted {
    Persisted {
        state: log.get_log_state().await.expect("log state"),
        vote: log.read_vote().await.expect("vote"),
        committed: log.read_committed().await.expect("committed"),
        entries: log.try_get_log_entries(..).await.expect("entries"),
    }
}

/// Checks that `log` reports `state`, closes it, and checks that a fresh handle on the same
/// directory reads back everything the old one did; returns that.
async fn assert_survives_reopen(
    dir: &Path,
    mut log: OpenraftLog<Config>,
    state: LogState<Config>,
) -> Persisted {
    let before = persisted(&mut log).await;
    assert_eq!(before.state, state, "before reopen");
    drop(log);
    let after = persisted(&mut open_log(dir)).await;
    assert_eq!(after, before, "after reopen");
    after
}

#[tokio::test]
async fn entries_vote_and_committed_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    let nodes = BTreeMap::from([(1, BasicNode::new("n1")), (2, BasicNode::new("n2"))]);
    let membership = Membership::new(vec![BTreeSet::from([1, 2])], nodes);
    let mut entries = vec![Entry {
        log_id: log_id(1, 1, 0),
        payload: EntryPayload::Membership(membership),
    }];
    entries.extend((1..=5).map(|i| request(1, 1, i)));
    log.blocking_append(entries.clone()).await.unwrap();
    // A second leader in a later term: the node id is kept per entry.
    let later: Vec<_> = (6..=8).map(|i| request(2, 2, i)).collect();
    log.blocking_append(later.clone()).await.unwrap();
    entries.extend(later);
    log.save_vote(&Vote::new_committed(2, 2)).await.unwrap();
    log.save_committed(Some(log_id(2, 2, 7))).await.unwrap();

    let state = LogState {
        last_purged_log_id: None,
        last_log_id: Some(log_id(2, 2, 8)),
    };
    let after = assert_survives_reopen(dir.path(), log, state.clone()).await;
    let want = Persisted {
        state,
        vote: Some(Vote::new_committed(2, 2)),
        committed: Some(log_id(2, 2, 7)),
        entries,
    };
    assert_eq!(after, want);
}

#[tokio::test]
async fn purge_past_the_last_entry_survives_reopen_and_the_log_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    log.blocking_append(blanks(1, 0, 0..=10)).await.unwrap();
    log.purge(log_id(3, 1, 20)).await.unwrap();

    let purged = LogState {
        last_purged_log_id: Some(log_id(3, 1, 20)),
        last_log_id: Some(log_id(3, 1, 20)),
    };
    let after = assert_survives_reopen(dir.path(), log, purged).await;
    assert!(after.entries.is_empty());

    let mut log = open_log(dir.path());
    log.blocking_append([request(3, 1, 21)]).await.unwrap();
    let continued = LogState {
        last_purged_log_id: Some(log_id(3, 1, 20)),
        last_log_id: Some(log_id(3, 1, 21)),
    };
    let after = assert_survives_reopen(dir.path(), log, continued).await;
    assert_eq!(after.entries, vec![request(3, 1, 21)]);
}

#[tokio::test]
async fn purge_inside_the_log_and_truncate_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    log.blocking_append(blanks(1, 0, 0..=10)).await.unwrap();
    log.purge(log_id(1, 0, 4)).await.unwrap();
    log.truncate(log_id(1, 0, 8)).await.unwrap();

    let state = LogState {
        last_purged_log_id: Some(log_id(1, 0, 4)),
        last_log_id: Some(log_id(1, 0, 7)),
    };
    let after = assert_survives_reopen(dir.path(), log, state).await;
    assert_eq!(after.entries, blanks(1, 0, 5..=7));
}

#[tokio::test]
async fn reopen_finishes_a_purge_that_a_crash_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    log.blocking_append(blanks(1, 0, 0..=10)).await.unwrap();
    drop(log);

    // The first half of a purge to openraft index 5 (raftwal index 6), as `purge` writes it: the
    // last purged id recorded (leader node id 0 in the metadata) and synced, then the crash.
    {
        let (wal, _) = Wal::open(dir.path(), Options::default()).unwrap();
        let lsn = wal
            .save_snapshot_meta(SnapshotMeta {
                index: 6,
                term: 1,
                conf_state: Bytes::copy_from_slice(&0u64.to_le_bytes()),
            })
            .unwrap();
        wal.sync(lsn).unwrap();
        assert_eq!(wal.first_index(), 1, "nothing compacted yet");
    }

    let mut log = open_log(dir.path());
    assert_eq!(log.wal().first_index(), 7, "the compaction was finished");
    let got = persisted(&mut log).await;
    assert_eq!(got.state.last_purged_log_id, Some(log_id(1, 0, 5)));
    assert_eq!(got.entries, blanks(1, 0, 6..=10));
}

#[tokio::test]
async fn committed_at_or_below_the_purge_point_reads_back_as_the_purge_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    log.blocking_append(blanks(1, 0, 0..=10)).await.unwrap();
    log.save_committed(Some(log_id(1, 0, 3))).await.unwrap();
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 0, 3)));
    log.purge(log_id(1, 0, 6)).await.unwrap();

    let state = LogState {
        last_purged_log_id: Some(log_id(1, 0, 6)),
        last_log_id: Some(log_id(1, 0, 10)),
    };
    let after = assert_survives_reopen(dir.path(), log, state).await;
    assert_eq!(after.committed, Some(log_id(1, 0, 6)));
}

#[tokio::test]
async fn an_empty_log_starts_at_its_first_entry_but_a_later_gap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    log.blocking_append(blanks(1, 0, 2..=3)).await.unwrap();

    let gap = log.blocking_append([blank(1, 0, 5)]).await;
    assert!(gap.is_err(), "a hole after index 3 must be refused");

    let state = LogState {
        last_purged_log_id: None,
        last_log_id: Some(log_id(1, 0, 3)),
    };
    let after = assert_survives_reopen(dir.path(), log, state).await;
    assert_eq!(after.entries, blanks(1, 0, 2..=3));
}

/// Holds every `sync_data` while closed and counts the calls that arrive.
#[derive(Debug, Default)]
struct SyncGate {
    /// `(closed, syncs that reached the gate)`.
    state: Mutex<(bool, u64)>,
    opened: Condvar,
}

impl SyncGate {
    /// Closes the gate until the returned guard is dropped (also when a failed assertion
    /// unwinds, so the WAL's threads can finish and the test ends instead of hanging).
    fn close(&self) -> OpenOnDrop<'_> {
        self.state.lock().unwrap().0 = true;
        OpenOnDrop(self)
    }

    fn arrived(&self) -> u64 {
        self.state.lock().unwrap().1
    }

    fn pass(&self) {
        let mut state = self.state.lock().unwrap();
        state.1 += 1;
        while state.0 {
            state = self.opened.wait(state).unwrap();
        }
    }
}

/// Reopens a [`SyncGate`] when dropped.
struct OpenOnDrop<'a>(&'a SyncGate);

impl Drop for OpenOnDrop<'_> {
    fn drop(&mut self) {
        self.0.state.lock().unwrap().0 = false;
        self.0.opened.notify_all();
    }
}

/// The real file system with every file's `sync_data` behind a [`SyncGate`].
#[derive(Debug)]
struct GatedFs {
    gate: Arc<SyncGate>,
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn File>,
    gate: Arc<SyncGate>,
}

impl Fs for GatedFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        StdFs.create_dir_all(dir)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn File>> {
        Ok(Arc::new(GatedFile {
            inner: StdFs.open(path, mode)?,
            gate: Arc::clone(&self.gate),
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)
    }

    fn remove_dir(&self, dir: &Path) -> io::Result<()> {
        StdFs.remove_dir(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        StdFs.sync_dir(dir)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn LockGuard>> {
        StdFs.lock(path)
    }
}

impl File for GatedFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.gate.pass();
        self.inner.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate_zeroed(&self, len: u64) -> io::Result<()> {
        self.inner.allocate_zeroed(len)
    }
    fn map_readonly(&self, len: u64) -> io::Result<Bytes> {
        self.inner.map_readonly(len)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_callback_waits_for_fdatasync_while_entries_are_readable_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(SyncGate::default());
    let fs = Arc::new(GatedFs {
        gate: Arc::clone(&gate),
    });
    let (wal, _) = Wal::open_with_fs(fs, dir.path(), Options::default()).unwrap();
    let mut log = OpenraftLog::<Config>::new(wal).unwrap();
    let mut reader = log.get_log_reader().await;

    let closed = gate.close();
    let arrived = gate.arrived();
    let append =
        tokio::spawn(async move { log.blocking_append(blanks(1, 0, 0..=2)).await.map(|()| log) });
    // Declared after `append` and `reader`, so dropped before them if an assertion fails.
    let closed = closed;
    // Wait for the WAL's sync to reach the gate, or for a callback that did not wait for one.
    let sync_or_ack = async {
        while gate.arrived() == arrived && !append.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), sync_or_ack)
        .await
        .expect("neither a sync nor the flush callback came");
    // A sync is held at the gate, so no data can be durable: the callback must not have fired.
    // (The pause only gives a premature callback time to show; correctness never depends on it.)
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !append.is_finished(),
        "flush callback fired before fdatasync"
    );
    let readable = reader.try_get_log_entries(0..3).await.unwrap();
    assert_eq!(
        readable,
        blanks(1, 0, 0..=2),
        "appended entries are readable before the sync"
    );

    drop(closed);
    let log = append
        .await
        .unwrap()
        .expect("append completes after the sync");
    assert!(gate.arrived() > arrived);
    drop(log);
}

#[tokio::test]
async fn a_purge_point_the_log_contradicts_resets_the_log_unless_it_holds_committed_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    log.blocking_append(blanks(1, 0, 0..=5)).await.unwrap();
    log.save_committed(Some(log_id(1, 0, 3))).await.unwrap();

    // Entry 2 has term 1; a purge to (term 3, index 2) says the log after it is another history,
    // but entry 3 is committed: refused, nothing changes.
    assert!(log.purge(log_id(3, 0, 2)).await.is_err());
    assert_eq!(
        log.try_get_log_entries(..).await.unwrap(),
        blanks(1, 0, 0..=5)
    );

    // Past the committed entries the stale suffix goes, and the purge point is the new end.
    log.purge(log_id(3, 0, 4)).await.unwrap();
    let state = LogState {
        last_purged_log_id: Some(log_id(3, 0, 4)),
        last_log_id: Some(log_id(3, 0, 4)),
    };
    let after = assert_survives_reopen(dir.path(), log, state).await;
    assert!(after.entries.is_empty());
    assert_eq!(
        after.committed,
        Some(log_id(3, 0, 4)),
        "committed is at most the purge point"
    );
}

#[tokio::test]
async fn entries_at_or_below_the_purge_point_are_already_covered() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    log.blocking_append(blanks(1, 0, 0..=3)).await.unwrap();
    log.purge(log_id(1, 0, 5)).await.unwrap();

    log.blocking_append(blanks(1, 0, 4..=7)).await.unwrap();

    let state = LogState {
        last_purged_log_id: Some(log_id(1, 0, 5)),
        last_log_id: Some(log_id(1, 0, 7)),
    };
    let after = assert_survives_reopen(dir.path(), log, state).await;
    assert_eq!(after.entries, blanks(1, 0, 6..=7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_a_contiguous_log_while_it_is_appended_and_purged() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = open_log(dir.path());
    let mut reader = log.get_log_reader().await;
    let writing = Arc::new(AtomicBool::new(true));
    let reads = tokio::spawn({
        let writing = Arc::clone(&writing);
        async move {
            let mut reads = 0u64;
            while writing.load(Ordering::Acquire) {
                let entries = reader
                    .try_get_log_entries(..)
                    .await
                    .expect("read during a purge");
                let indexes: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
                let contiguous = indexes.windows(2).all(|w| w[1] == w[0] + 1);
                assert!(contiguous, "a read saw a hole: {indexes:?}");
                reads += 1;
            }
            reads
        }
    });
    for round in 0..40 {
        log.blocking_append(blanks(1, 0, round * 10..round * 10 + 10))
            .await
            .unwrap();
        log.purge(log_id(1, 0, round * 10 + 5)).await.unwrap();
    }
    writing.store(false, Ordering::Release);
    assert!(reads.await.unwrap() > 0);
    assert_eq!(
        log.try_get_log_entries(..).await.unwrap(),
        blanks(1, 0, 396..400)
    );
}

/// Power cuts on the simulated disk (feature `test-util`): what openraft was told is durable
/// survives, and a purge cut anywhere leaves the log whole.
#[cfg(feature = "test-util")]
mod power_cut {
    use super::*;

    use raftwal::fs::sim::{Fill, ImageSpec, SimFs, Survival};

    use openraft_support::open_sim_log;

    /// Entries of about 1 KiB each, so that a 4 KiB segment holds only a few and a purge
    /// removes whole segments.
    fn large(term: u64, index: u64) -> Entry {
        Entry {
            log_id: log_id(term, 1, index),
            payload: EntryPayload::Normal(format!("{index:>1000}")),
        }
    }

    /// Unsynced data lost whole, kept whole (a process crash), or torn and reordered at sector
    /// granularity with stale bytes in the gaps.
    fn specs() -> [ImageSpec; 3] {
        let torn = ImageSpec {
            survival: Survival::Subset,
            fill: Fill::Stale,
            ..ImageSpec::NOTHING
        };
        [ImageSpec::NOTHING, ImageSpec::EVERYTHING, torn]
    }

    #[tokio::test]
    async fn acknowledged_entries_and_vote_survive_a_power_cut() {
        for (seed, spec) in specs().into_iter().enumerate() {
            let fs = SimFs::new(seed as u64);
            let mut log = open_sim_log(fs.clone());
            let entries: Vec<Entry> = (0..=9).map(|i| large(1, i)).collect();
            log.blocking_append(entries[..5].to_vec()).await.unwrap();
            log.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
            log.blocking_append(entries[5..].to_vec()).await.unwrap();

            let mut after = open_sim_log(fs.crash_image(&spec, seed as u64));
            let got = persisted(&mut after).await;
            assert_eq!(got.entries, entries, "{spec:?}");
            assert_eq!(got.vote, Some(Vote::new_committed(1, 1)), "{spec:?}");
        }
    }

    /// Cuts the power before every file-system operation of `purge(upto)` on a log of entries
    /// 0..=10, and once after it returned; each image must hold the log before the purge or
    /// after it, never a mix, and the last must hold it after. Both must be seen, or the cuts
    /// missed the purge.
    async fn cut_during_purge(upto: LogId<u64>) {
        let entries: Vec<Entry> = (0..=10).map(|i| large(1, i)).collect();
        let fs = SimFs::new(11);
        let mut log = open_sim_log(fs.clone());
        log.blocking_append(entries.clone()).await.unwrap();

        fs.capture(Box::new(|_, _| true));
        log.purge(upto).await.unwrap();
        fs.stop_capture();
        let points = fs.take_crash_points();
        let returned = fs.crash_image(&ImageSpec::NOTHING, 0);

        let kept: Vec<Entry> = entries
            .into_iter()
            .filter(|e| e.log_id.index > upto.index)
            .collect();
        let last_log = Some(kept.last().map_or(upto, |e| e.log_id));
        let (mut before, mut purged) = (0, 0);
        for (i, point) in points.iter().enumerate() {
            for spec in specs() {
                let got = persisted(&mut open_sim_log(point.image(&spec, i as u64))).await;
                if got.state.last_purged_log_id.is_none() {
                    assert_eq!(
                        got.entries.len(),
                        11,
                        "purge undone but entries lost at {i}"
                    );
                    before += 1;
                } else {
                    assert_eq!(got.state.last_purged_log_id, Some(upto), "at {i}");
                    assert_eq!(got.state.last_log_id, last_log, "at {i}");
                    assert_eq!(got.entries, kept, "at {i}");
                    purged += 1;
                }
            }
        }
        let got = persisted(&mut open_sim_log(returned)).await;
        assert_eq!(
            got.state.last_purged_log_id,
            Some(upto),
            "a returned purge is durable"
        );
        assert!(
            before > 0 && purged > 0,
            "cuts during the purge showed both outcomes: {before} / {purged}"
        );
    }

    #[tokio::test]
    async fn a_power_cut_anywhere_in_a_purge_inside_the_log_keeps_it_whole() {
        cut_during_purge(log_id(1, 1, 5)).await;
    }

    #[tokio::test]
    async fn a_power_cut_anywhere_in_a_purge_past_the_end_keeps_the_log_whole() {
        cut_during_purge(log_id(2, 1, 20)).await;
    }
}

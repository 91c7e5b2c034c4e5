//! Three raft-rs nodes on raftwal, in one process, over a lossy in-memory network: thousands
//! of proposals, a follower crashed and reopened from its directory, the leader killed, and a
//! follower so far behind a compacted leader that only a snapshot can restore it. Run on both
//! raft-rs persistence loops. See `raft_rs_common` for the harness and its online checks.

mod raft_rs_common;

use raft_rs_common::{Cluster, Mode, Settings};

const MAX_ROUNDS: u64 = 20_000;

/// 5% of messages lost, the rest delayed by up to 3 rounds; a snapshot every 300 entries.
fn lossy(mode: Mode, seed: u64) -> Settings {
    Settings {
        mode,
        seed,
        drop_per_mille: 50,
        max_delay: 3,
        value_size: 16,
        snapshot_every: 300,
        window: 64,
        segment_size: 1 << 20,
    }
}

/// Crashes `victim` with proposals in flight, commits `while_down` values without it, reopens
/// it from its directory, commits `after` more, and checks that everyone agrees.
fn crash_and_recover(c: &mut Cluster, victim: u64, while_down: usize, after: usize) {
    c.crash(victim);
    c.commit(while_down, MAX_ROUNDS);
    c.restart(victim);
    c.commit(after, MAX_ROUNDS);
    c.settle(MAX_ROUNDS);
    c.check_agreement();
}

fn scenario(mode: Mode, seed: u64) {
    let mut c = Cluster::new(lossy(mode, seed));
    c.commit(800, MAX_ROUNDS);

    // A follower crashes (no shutdown), misses entries, and is reopened from its directory.
    let follower = c.follower();
    crash_and_recover(&mut c, follower, 300, 200);
    // The leader dies; the other two elect a new one and go on; the old leader comes back.
    let leader = c.leader().expect("a leader");
    crash_and_recover(&mut c, leader, 300, 100);
    // More crashes in turn, leader and follower alternately.
    for round in 0..4 {
        let victim = match round % 2 {
            0 => c.leader().expect("a leader"),
            _ => c.follower(),
        };
        crash_and_recover(&mut c, victim, 150, 50);
    }

    // A follower is cut off while the others commit, snapshot and compact past its log.
    let lagging = c.follower();
    c.cut_off(lagging, true);
    c.commit(900, MAX_ROUNDS);
    let leader = c.leader().expect("a leader");
    assert!(
        c.first_index(leader) > c.last_index(lagging) + 1,
        "the leader's log must no longer hold what the lagging follower needs"
    );
    let installed = c.peers[(lagging - 1) as usize].snapshots_installed;
    c.cut_off(lagging, false);
    c.commit(100, MAX_ROUNDS);
    c.settle(MAX_ROUNDS);
    assert!(c.peers[(lagging - 1) as usize].snapshots_installed > installed);
    c.check_agreement();

    // Restarting from the installed snapshot (membership from its metadata) works too.
    crash_and_recover(&mut c, lagging, 0, 100);
    assert!(c.committed.len() >= 3_600, "{}", c.committed.len());
}

#[test]
fn sync_loop_survives_drops_crashes_leader_loss_and_a_snapshot_catch_up() {
    scenario(Mode::Sync, 0x5eed_0001);
}

#[test]
fn async_loop_survives_drops_crashes_leader_loss_and_a_snapshot_catch_up() {
    scenario(Mode::Async, 0x5eed_0002);
}

/// Power cuts on simulated disks: a follower is cut off, the leader and the other follower
/// commit without it, then both lose power at once, keeping only what was synced (or that plus
/// torn, reordered pieces of what was not). Whatever they had acknowledged must still be there,
/// or the follower that never saw it would help elect a log without it.
#[cfg(feature = "test-util")]
fn power_cuts(mode: Mode, seed: u64) {
    use raft_rs_common::VOTERS;
    use raftwal::fs::sim::{Fill, ImageSpec, Survival};

    let torn = ImageSpec {
        survival: Survival::Subset,
        fill: Fill::Stale,
        ..ImageSpec::NOTHING
    };
    let mut c = Cluster::simulated(lossy(mode, seed));
    c.commit(200, MAX_ROUNDS);
    for spec in [ImageSpec::NOTHING, torn, ImageSpec::NOTHING, torn] {
        let behind = c.follower();
        c.cut_off(behind, true);
        c.commit(150, MAX_ROUNDS);
        let leader = c.leader().expect("a leader");
        let other = VOTERS.into_iter().find(|&id| id != leader && id != behind);
        let other = other.expect("a third node");
        c.power_cut(leader, &spec);
        c.power_cut(other, &spec);
        c.cut_off(behind, false);
        c.restart(leader);
        c.restart(other);
        c.commit(100, MAX_ROUNDS);
        c.settle(MAX_ROUNDS);
        c.check_agreement();
    }
}

#[cfg(feature = "test-util")]
#[test]
fn sync_loop_loses_nothing_acknowledged_when_the_power_fails() {
    power_cuts(Mode::Sync, 0x5eed_0003);
}

#[cfg(feature = "test-util")]
#[test]
fn async_loop_loses_nothing_acknowledged_when_the_power_fails() {
    power_cuts(Mode::Async, 0x5eed_0004);
}

/// One voter, so every proposal commits as soon as it is durable: 20 proposals, then a
/// restart that must find the commit index raft-rs reached.
fn single_node_commits(mode: Mode) {
    use std::sync::Arc;
    use std::time::Duration;

    use raft::StateRole;
    use raft::prelude::{Config, RawNode};
    use raftwal::adapters::raft_rs::{NoSnapshots, Pipeline, RaftRsStorage, advance_sync};
    use raftwal::{Options, Wal};

    let dir = tempfile::TempDir::new().unwrap();
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let open = || {
        let mut options = Options::default();
        options.segment_size = 64 << 10;
        let (wal, _report) = Wal::open(dir.path(), options).unwrap();
        RaftRsStorage::new(Arc::new(wal), Arc::new(NoSnapshots))
    };
    let storage = open();
    storage
        .initialize_with_conf_state((vec![1], vec![]))
        .unwrap();
    let mut node = RawNode::new(&Config::new(1), storage, &logger).unwrap();
    let mut pipeline = Pipeline::new();
    node.campaign().unwrap();
    let (mut proposed, mut applied) = (0u8, Vec::new());
    while applied.len() < 20 {
        if node.raft.state == StateRole::Leader && proposed < 20 {
            node.propose(vec![], vec![proposed]).unwrap();
            proposed += 1;
        }
        if node.has_ready() {
            let mut rd = node.ready();
            let mut apply = |entries: Vec<raft::prelude::Entry>| {
                applied.extend(entries.into_iter().filter_map(|e| e.data.first().copied()));
            };
            apply(rd.take_committed_entries());
            match mode {
                Mode::Sync => {
                    let mut done = advance_sync(&mut node, rd).unwrap();
                    apply(done.light.take_committed_entries());
                    node.advance_apply();
                }
                Mode::Async => pipeline.submit(&mut node, rd).unwrap(),
            }
        }
        if mode == Mode::Async {
            let _ = pipeline.wait(&mut node, Duration::from_millis(1)).unwrap();
        }
    }
    assert_eq!(applied, (0..20).collect::<Vec<u8>>());
    let committed = node.raft.raft_log.committed;
    let last = node.raft.raft_log.last_index();
    drop(node);

    // The commit index raft-rs reported (in a LightReady on the synchronous loop, in a later
    // Ready's hard state on the asynchronous one) is in the log, and a restart finds it.
    let storage = open();
    let recorded = storage.wal().hard_state().commit;
    assert_eq!((recorded, committed), (last, last));
    let node = RawNode::new(&Config::new(1), storage, &logger).unwrap();
    assert_eq!(node.raft.raft_log.committed, recorded);
    assert_eq!(node.raft.raft_log.last_index(), last);
}

#[test]
fn sync_loop_records_the_commit_index_of_the_light_ready() {
    single_node_commits(Mode::Sync);
}

#[test]
fn async_loop_records_the_commit_index_of_later_readies() {
    single_node_commits(Mode::Async);
}

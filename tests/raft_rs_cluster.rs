//! Three raft-rs nodes on raftwal, in one process, over a lossy in-memory network: thousands
//! of proposals, a follower crashed and reopened from its directory, the leader killed, and a
//! follower so far behind a compacted leader that only a snapshot can restore it. Run on both
//! raft-rs persistence loops. See `raft_rs_common` for the harness and its online checks.

mod raft_rs_common;

use raft_rs_common::{Cluster, Mode, Settings};

const MAX_ROUNDS: u64 = 20_000;

fn scenario(mode: Mode, seed: u64) {
    let mut c = Cluster::new(Settings {
        mode,
        seed,
        drop_per_mille: 50,
        max_delay: 3,
        value_size: 16,
        snapshot_every: 300,
        window: 64,
    });
    c.commit(800, MAX_ROUNDS);

    // A follower crashes (no shutdown), misses entries, and is reopened from its directory.
    let follower = c.follower();
    c.crash(follower);
    c.commit(300, MAX_ROUNDS);
    c.restart(follower);
    c.commit(200, MAX_ROUNDS);
    c.settle(MAX_ROUNDS);
    c.check_agreement();

    // The leader dies; the other two elect a new one and go on; the old leader comes back.
    let old_leader = c.leader().expect("a leader");
    c.crash(old_leader);
    c.commit(300, MAX_ROUNDS);
    assert_ne!(c.leader(), Some(old_leader));
    c.restart(old_leader);
    c.commit(100, MAX_ROUNDS);
    c.settle(MAX_ROUNDS);
    c.check_agreement();

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
    c.crash(lagging);
    c.restart(lagging);
    c.commit(100, MAX_ROUNDS);
    c.settle(MAX_ROUNDS);
    c.check_agreement();
    assert!(c.committed.len() >= 2_800, "{}", c.committed.len());
}

#[test]
fn sync_loop_survives_drops_crashes_leader_loss_and_a_snapshot_catch_up() {
    scenario(Mode::Sync, 0x5eed_0001);
}

#[test]
fn async_loop_survives_drops_crashes_leader_loss_and_a_snapshot_catch_up() {
    scenario(Mode::Async, 0x5eed_0002);
}

//! The lease rules checked on a running three-node cluster.

use std::num::NonZeroU64;

use crate::cluster::{Cluster, Error, NODES};
use crate::command::LeaseId;
use crate::node::EXPIRY_INTERVAL;
use crate::{Tally, run_demo};

fn ttl(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap()
}

/// A cluster with its logs in a temp dir that lives as long as it.
fn start() -> (Cluster, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    (Cluster::start(root.path()).unwrap(), root)
}

/// Whether `lease` exists on every running node.
fn everywhere(c: &Cluster, lease: LeaseId) -> bool {
    NODES
        .iter()
        .filter_map(|&n| c.machine(n))
        .all(|m| m.leases().get(lease).is_some())
}

/// Whether neither `lease` nor `key` exists on any node.
fn gone_everywhere(c: &Cluster, lease: LeaseId, key: &str) -> bool {
    NODES
        .iter()
        .filter_map(|&n| c.machine(n))
        .all(|m| m.leases().get(lease).is_none() && m.get(key).is_none())
}

/// Ticks until `lease` is gone from the leader, asserting it lives on every node before
/// `not_before`. Returns the tick it went at.
fn tick_until_expired(c: &mut Cluster, lease: LeaseId, not_before: u64) -> u64 {
    let give_up = not_before + 4 * EXPIRY_INTERVAL.get();
    while c.leases().unwrap().contains(&lease) {
        assert!(c.now() < give_up, "{lease} still alive at t={}", c.now());
        c.tick().unwrap();
        if c.now() < not_before {
            assert!(everywhere(c, lease), "{lease} gone early at t={}", c.now());
        }
    }
    c.now()
}

#[test]
fn expiry_deletes_the_attached_keys_on_every_node() {
    let (mut c, _root) = start();
    let granted_at = c.now();
    let lease = c.grant(ttl(12)).unwrap();
    c.put("owned", "1", Some(lease)).unwrap();
    c.put("free", "2", None).unwrap();

    let gone_at = tick_until_expired(&mut c, lease, granted_at + 12);
    assert!(
        gone_at < granted_at + 12 + EXPIRY_INTERVAL.get(),
        "late by a bucket or more"
    );
    c.settle().unwrap();
    assert!(gone_everywhere(&c, lease, "owned"));
    for n in NODES {
        let free = c.machine(n).unwrap().get("free").map(|v| v.value.clone());
        assert_eq!(
            free.as_deref(),
            Some("2"),
            "node {n} kept the key without a lease"
        );
    }
    c.check_agreement().unwrap();
}

#[test]
fn keep_alive_prevents_expiry() {
    let (mut c, _root) = start();
    let lease = c.grant(ttl(10)).unwrap();
    c.put("k", "v", Some(lease)).unwrap();
    // Keep-alives every 6 ticks for 60 ticks: six TTLs, never one missed.
    for _ in 0..10 {
        c.run_until(c.now() + 6).unwrap();
        assert!(
            everywhere(&c, lease),
            "expired at t={} despite keep-alives",
            c.now()
        );
        c.keep_alive(lease).unwrap();
    }
    let last_keep_alive = c.now();
    tick_until_expired(&mut c, lease, last_keep_alive + 10);
    c.settle().unwrap();
    assert!(gone_everywhere(&c, lease, "k"));
}

#[test]
fn a_new_leader_rearms_every_lease_with_a_full_ttl() {
    let (mut c, _root) = start();
    let granted_at = c.now();
    let lease = c.grant(ttl(30)).unwrap();
    c.put("k", "v", Some(lease)).unwrap();
    c.run_until(granted_at + 20).unwrap();
    let old = c.leader().unwrap();
    assert!(
        NODES.iter().all(|&n| c.keeps_deadlines(n) == (n == old)),
        "only the leader keeps deadlines"
    );

    c.kill(old);
    let new = c.elect().unwrap();
    let elected_at = c.now();
    assert_ne!(new, old);
    assert!(c.keeps_deadlines(new));
    // The old leader's deadline (granted_at + 30) is before this one: the lease survives it.
    assert!(c.time_to_live(lease).unwrap().remaining >= 30);
    tick_until_expired(&mut c, lease, elected_at + 30);
    c.restart(old).unwrap();
    c.settle().unwrap();
    assert!(gone_everywhere(&c, lease, "k"));
    assert!(!c.keeps_deadlines(old), "the restarted old leader follows");
    c.check_agreement().unwrap();
}

#[test]
fn commands_on_a_missing_lease_fail_and_change_nothing() {
    let (mut c, _root) = start();
    let lease = c.grant(ttl(5)).unwrap();
    c.revoke(lease).unwrap();
    c.settle().unwrap();
    let before: Vec<_> = NODES
        .iter()
        .map(|&n| c.machine(n).unwrap().clone())
        .collect();
    assert!(matches!(c.put("k", "v", Some(lease)), Err(Error::LeaseNotFound(l)) if l == lease));
    assert!(matches!(c.keep_alive(lease), Err(Error::LeaseNotFound(_))));
    assert!(matches!(c.revoke(lease), Err(Error::LeaseNotFound(_))));
    assert!(matches!(
        c.time_to_live(lease),
        Err(Error::LeaseNotFound(_))
    ));
    c.settle().unwrap();
    for (n, before) in NODES.iter().zip(&before) {
        let now = c.machine(*n).unwrap();
        assert_eq!(now.get("k"), None);
        assert_eq!(now.leases(), before.leases(), "node {n}");
    }
}

#[test]
fn the_demo_ends_with_all_nodes_agreeing_after_restarts() {
    let root = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    let (tally, cluster) = run_demo(root.path(), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("killed the follower") && out.contains("killed the leader"),
        "{out}"
    );
    assert_eq!(out.matches("restarted node").count(), 2, "{out}");
    cluster.check_agreement().unwrap();
    // Three leases: one expired, one revoked on request, one expired after the leader change.
    let want = Tally {
        granted: 3,
        expired: 2,
        revoked: 3,
        keys_removed: 4,
        kept_alive: tally.kept_alive,
    };
    assert_eq!(tally, want, "{out}");
    assert!(tally.kept_alive > 0);
    let state = cluster.machine(NODES[0]).unwrap();
    assert_eq!(state.key_count(), 1, "only the key without a lease is left");
    assert_eq!(state.leases().len(), 0);
}

#[test]
fn a_full_restart_rebuilds_every_acknowledged_change_from_the_logs() {
    let (mut c, _root) = start();
    let kept = c.grant(ttl(40)).unwrap();
    let revoked = c.grant(ttl(40)).unwrap();
    c.put("a", "1", Some(kept)).unwrap();
    c.put("b", "2", Some(revoked)).unwrap();
    c.put("c", "3", None).unwrap();
    c.put("a", "1b", Some(kept)).unwrap();
    assert_eq!(c.revoke(revoked).unwrap(), ["b"]);
    c.settle().unwrap();
    let before = c.machine(NODES[0]).unwrap().clone();

    for n in NODES {
        c.kill(n);
    }
    for n in NODES {
        c.restart(n).unwrap();
    }
    c.elect().unwrap();
    let elected_at = c.now();
    c.settle().unwrap();
    c.check_agreement().unwrap();
    let after = c.machine(NODES[0]).unwrap();
    assert_eq!(after.leases(), before.leases());
    assert!(
        after.applied() > before.applied(),
        "the new leader's empty entry is applied too"
    );
    for key in ["a", "b", "c"] {
        assert_eq!(after.get(key), before.get(key), "key {key}");
    }
    assert_eq!(after.key_count(), before.key_count());
    let deadline = c.now() + c.time_to_live(kept).unwrap().remaining;
    assert!(
        deadline >= elected_at + 40,
        "re-armed with a full TTL after the restart"
    );
}

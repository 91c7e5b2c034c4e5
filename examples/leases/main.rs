//! Leases replicated through raft-rs on raftwal: a key-value store with etcd-style leases on
//! three in-process nodes.
//!
//! Every change (grant, put, keep-alive, revoke) is a log entry. Only the leader keeps time: it
//! holds lease deadlines in a bucketed expiry queue and proposes a revoke when a bucket comes
//! due. A new leader re-arms every lease with a full TTL, so no lease ends early when the
//! leader changes. The run kills and restarts a follower, then the leader, and ends by
//! checking that every node holds the same keys and leases.
//!
//! Run it with `cargo run --example leases --features raft-rs`.

mod cluster;
mod command;
mod expiry;
mod kv;
mod lease;
mod node;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::num::NonZeroU64;
use std::path::Path;
use std::process::ExitCode;

use crate::cluster::{Cluster, NODES};
use crate::command::LeaseId;
use crate::kv::Applied;
use crate::node::Event;

/// What the demo run did, for its last lines and for tests.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    granted: usize,
    kept_alive: usize,
    expired: usize,
    revoked: usize,
    keys_removed: usize,
}

/// Failure of the run itself (as opposed to nodes that disagree at the end).
#[derive(Debug, thiserror::Error)]
enum DemoError {
    #[error(transparent)]
    Cluster(#[from] cluster::Error),
    #[error("writing the report: {0}")]
    Io(#[from] io::Error),
    #[error("gave up waiting {ticks} ticks for {what}")]
    Stuck { what: &'static str, ticks: u64 },
}

/// Drives the cluster through the demo scenario, reporting to `out`.
struct Demo<'a> {
    cluster: Cluster,
    out: &'a mut dyn Write,
    tally: Tally,
}

/// TTL of the leases that are kept alive or left to expire, in ticks.
const SHORT_TTL: NonZeroU64 = NonZeroU64::new(20).expect("non-zero");
/// TTL of the lease that lives through the leader change, in ticks.
const LONG_TTL: NonZeroU64 = NonZeroU64::new(60).expect("non-zero");
/// Ticks between keep-alives: well inside [`SHORT_TTL`].
const KEEP_ALIVE_EVERY: u64 = 8;

impl Demo<'_> {
    /// Prints a line stamped with the logical time.
    fn say(&mut self, line: std::fmt::Arguments<'_>) -> io::Result<()> {
        writeln!(self.out, "t={:<4} {line}", self.cluster.now())
    }

    /// Ticks to `until`, reporting what the nodes did and keeping `kept` alive every
    /// `every` ticks while there is a leader to ask.
    fn run_until(
        &mut self,
        until: u64,
        kept: Option<LeaseId>,
        every: u64,
    ) -> Result<(), DemoError> {
        while self.cluster.now() < until {
            self.cluster.tick()?;
            self.report_events()?;
            if let Some(id) = kept.filter(|_| self.cluster.now().is_multiple_of(every)) {
                match self.cluster.keep_alive(id) {
                    Ok(()) => {
                        self.tally.kept_alive += 1;
                        self.say(format_args!("kept {id} alive"))?;
                    }
                    Err(cluster::Error::NoLeader) => {
                        self.say(format_args!("no leader: keep-alive of {id} waits"))?;
                    }
                    Err(e) => return Err(e.into()),
                }
                self.report_events()?;
            }
        }
        Ok(())
    }

    /// Ticks until `done` holds, for at most `ticks` ticks.
    fn wait_for(
        &mut self,
        what: &'static str,
        ticks: u64,
        done: impl Fn(&Cluster) -> bool,
    ) -> Result<(), DemoError> {
        let give_up = self.cluster.now() + ticks;
        while !done(&self.cluster) {
            if self.cluster.now() >= give_up {
                return Err(DemoError::Stuck { what, ticks });
            }
            self.run_until(self.cluster.now() + 1, None, 1)?;
        }
        Ok(())
    }

    fn report_events(&mut self) -> Result<(), DemoError> {
        for event in self.cluster.take_events() {
            match event {
                Event::BecameLeader { node, term, armed } => {
                    self.say(format_args!("node {node} leads (term {term})"))?;
                    for (id, deadline) in armed {
                        self.say(format_args!(
                            "  re-armed {id} with a full TTL: expires at t={deadline}"
                        ))?;
                    }
                }
                Event::Expired { lease } => {
                    self.tally.expired += 1;
                    self.say(format_args!(
                        "{lease} expired on the leader: proposing its revoke"
                    ))?;
                }
                Event::Applied {
                    applied: Applied::Revoked { id, keys },
                    ..
                } => {
                    self.tally.revoked += 1;
                    self.tally.keys_removed += keys.len();
                    self.say(format_args!("{id} revoked: deleted {keys:?}"))?;
                }
                Event::Applied { .. } => {}
            }
        }
        Ok(())
    }

    fn grant(&mut self, ticks: NonZeroU64) -> Result<LeaseId, DemoError> {
        let id = self.cluster.grant(ticks)?;
        self.report_events()?;
        self.tally.granted += 1;
        self.say(format_args!("granted {id} (ttl {ticks})"))?;
        Ok(id)
    }

    fn put(&mut self, key: &str, value: &str, lease: Option<LeaseId>) -> Result<(), DemoError> {
        self.cluster.put(key, value, lease)?;
        self.report_events()?;
        match lease {
            Some(id) => self.say(format_args!("put {key}={value} on {id}"))?,
            None => self.say(format_args!("put {key}={value}"))?,
        }
        Ok(())
    }

    fn kill(&mut self, node: u64, role: &str) -> Result<(), DemoError> {
        self.cluster.kill(node);
        self.say(format_args!("killed the {role}, node {node}"))?;
        Ok(())
    }

    fn restart(&mut self, node: u64) -> Result<(), DemoError> {
        let report = self.cluster.restart(node)?;
        self.say(format_args!(
            "restarted node {node} from its raftwal directory: last index {}, {} segment(s), \
             {} torn bytes dropped",
            report.last_index, report.segments, report.torn_bytes_dropped
        ))?;
        self.cluster.settle()?;
        self.report_events()?;
        let applied = self
            .cluster
            .machine(node)
            .map_or(0, kv::StateMachine::applied);
        self.say(format_args!(
            "node {node} caught up: applied up to {applied}"
        ))?;
        Ok(())
    }

    fn show_ttl(&mut self, id: LeaseId) -> Result<(), DemoError> {
        match self.cluster.time_to_live(id) {
            Ok(t) => self.say(format_args!(
                "{id}: ttl {}, {} ticks left, keys {:?}",
                t.ttl, t.remaining, t.keys
            ))?,
            Err(e) => self.say(format_args!("{id}: {e}"))?,
        }
        Ok(())
    }

    fn follower(&self) -> Result<u64, DemoError> {
        let leader = self.cluster.leader().ok_or(cluster::Error::NoLeader)?;
        Ok(NODES.into_iter().find(|&n| n != leader).unwrap_or(leader))
    }

    /// The scenario: leases kept alive, left to expire and revoked, with a follower and then
    /// the leader killed and restarted along the way.
    fn run(&mut self) -> Result<(), DemoError> {
        self.report_events()?;
        let session = self.grant(SHORT_TTL)?;
        let worker = self.grant(SHORT_TTL)?;
        let lock = self.grant(LONG_TTL)?;
        self.put("session/alice", "online", Some(session))?;
        self.put("worker/7", "busy", Some(worker))?;
        self.put("lock/db", "alice", Some(lock))?;
        self.put("config/mode", "demo", None)?;
        self.say(format_args!(
            "keeping {session} alive; {worker} is left to expire"
        ))?;
        self.run_until(25, Some(session), KEEP_ALIVE_EVERY)?;

        let follower = self.follower()?;
        self.kill(follower, "follower")?;
        self.run_until(30, Some(session), KEEP_ALIVE_EVERY)?;
        self.put("session/bob", "online", Some(session))?;
        self.run_until(35, Some(session), KEEP_ALIVE_EVERY)?;
        self.restart(follower)?;

        self.show_ttl(lock)?;
        let leader = self.cluster.leader().ok_or(cluster::Error::NoLeader)?;
        self.kill(leader, "leader")?;
        self.cluster.elect()?;
        self.report_events()?;
        self.say(format_args!(
            "the new leader counts each TTL afresh: {lock} now outlives the old leader's deadline"
        ))?;
        self.show_ttl(lock)?;
        self.run_until(70, Some(session), KEEP_ALIVE_EVERY)?;
        self.restart(leader)?;
        self.show_ttl(lock)?;

        self.say(format_args!("revoking {session} on request"))?;
        self.cluster.revoke(session)?;
        self.report_events()?;
        self.wait_for("the lock to expire", 2 * LONG_TTL.get(), |c| {
            c.leases().is_ok_and(|ids| !ids.contains(&lock))
        })?;
        self.cluster.settle()?;
        self.report_events()?;
        for key in ["config/mode", "lock/db", "session/bob"] {
            let value = self.cluster.get(key)?.map(|v| v.value);
            self.say(format_args!("get {key} -> {value:?}"))?;
        }
        let t = &self.tally;
        writeln!(
            self.out,
            "done: {} leases granted, {} keep-alives, {} expired, {} revoked, {} keys removed",
            t.granted, t.kept_alive, t.expired, t.revoked, t.keys_removed
        )?;
        Ok(())
    }
}

/// Runs the scenario with the nodes' logs under `root`. Returns the tally and the cluster, for
/// the agreement check.
fn run_demo(root: &Path, out: &mut dyn Write) -> Result<(Tally, Cluster), DemoError> {
    writeln!(out, "three nodes, logs in {}", root.display())?;
    let cluster = Cluster::start(root)?;
    let mut demo = Demo {
        cluster,
        out,
        tally: Tally::default(),
    };
    demo.run()?;
    Ok((demo.tally, demo.cluster))
}

fn main() -> ExitCode {
    let mut stdout = io::stdout().lock();
    let root = match tempfile::tempdir() {
        Ok(root) => root,
        Err(e) => {
            eprintln!("cannot make a temp dir: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (_, cluster) = match run_demo(root.path(), &mut stdout) {
        Ok(done) => done,
        Err(e) => {
            eprintln!("demo failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cluster.check_agreement() {
        Ok(()) => {
            let state = cluster.machine(NODES[0]);
            let applied = state.map_or(0, kv::StateMachine::applied);
            let keys = state.map_or(0, kv::StateMachine::key_count);
            let leases = state.map_or(0, |s| s.leases().len());
            let _ = writeln!(
                stdout,
                "all {} nodes agree: {keys} keys, {leases} leases, applied up to {applied}",
                NODES.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nodes disagree: {e}");
            for id in NODES {
                eprintln!("node {id}: {:?}", cluster.machine(id));
            }
            ExitCode::FAILURE
        }
    }
}

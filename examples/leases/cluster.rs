//! Three nodes in one process: an in-memory transport, one logical clock, and the client API
//! (every write proposed on the leader, every read served from the leader's applied state).

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use raft::eraftpb::Message;
use raftwal::RecoveryReport;

use crate::command::{Command, LeaseId};
use crate::kv::{Applied, StateMachine, Value};
use crate::node::{ELECTION_TICKS, Event, HEARTBEAT_TICKS, Node, Proposal};

/// The node ids.
pub const NODES: [u64; 3] = [1, 2, 3];
/// How many ticks a client waits for its proposal to be applied.
const PROPOSAL_TICKS: u64 = 60;
/// How many ticks [`Cluster::elect`] waits: dozens of election rounds, so that split votes
/// (each round has a fair chance of one) never exhaust it in practice.
const ELECTION_WAIT_TICKS: u64 = 50 * ELECTION_TICKS as u64;

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No running node leads.
    #[error("no leader")]
    NoLeader,
    /// The proposal's entry was replaced by a later leader's.
    #[error("proposal dropped by a leader change")]
    Dropped,
    /// The proposal was not applied in time (no quorum).
    #[error("proposal not applied within {PROPOSAL_TICKS} ticks")]
    Timeout,
    /// The command named a lease that does not exist.
    #[error("{0} not found")]
    LeaseNotFound(LeaseId),
    /// No node has this id, or it is not running.
    #[error("node {0} does not exist or is not running")]
    UnknownNode(u64),
    /// raft-rs failed on a node.
    #[error("node {node}: {source}")]
    Raft {
        /// The node.
        node: u64,
        /// What raft-rs said.
        source: raft::Error,
    },
}

/// What the leader knows of a lease (etcd's `LeaseTimeToLive`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeToLive {
    /// The full TTL.
    pub ttl: NonZeroU64,
    /// Ticks until the lease's bucket expires it.
    pub remaining: u64,
    /// The keys attached.
    pub keys: Vec<String>,
}

/// Two running nodes hold different applied state, or a node is down.
#[derive(Debug, thiserror::Error)]
#[error("node {node} differs from node {reference} (or is not running)")]
pub struct Disagreement {
    /// The node compared against.
    pub reference: u64,
    /// The node that differs.
    pub node: u64,
}

/// Three replicas, a mailbox between them and the clock they share.
pub struct Cluster {
    /// Each node's raftwal directory, which outlives the node's process.
    dirs: BTreeMap<u64, PathBuf>,
    /// The running nodes; a killed node is absent until restarted.
    nodes: BTreeMap<u64, Node>,
    /// The logical clock, in ticks. Only [`Cluster::tick`] moves it.
    now: u64,
    /// Messages sent and not yet delivered.
    mailbox: Vec<Message>,
    /// What happened since the last [`Cluster::take_events`].
    events: Vec<Event>,
}

impl Cluster {
    /// Starts three nodes on new logs in directories under `root` and elects node 1.
    ///
    /// # Errors
    /// A node that fails to start or to persist.
    pub fn start(root: &Path) -> Result<Cluster, Error> {
        let mut cluster = Cluster {
            dirs: NODES
                .iter()
                .map(|&id| (id, root.join(format!("node-{id}"))))
                .collect(),
            nodes: BTreeMap::new(),
            now: 0,
            mailbox: Vec::new(),
            events: Vec::new(),
        };
        for id in NODES {
            cluster.open(id, Some(&NODES))?;
        }
        let first = cluster.node_mut(NODES[0])?;
        first.campaign().map_err(|source| Error::Raft {
            node: NODES[0],
            source,
        })?;
        cluster.pump()?;
        Ok(cluster)
    }

    /// The logical clock.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The running leader's id.
    pub fn leader(&self) -> Option<u64> {
        self.nodes
            .iter()
            .find(|(_, n)| n.is_leader())
            .map(|(&id, _)| id)
    }

    /// The state node `id` has applied, if it runs.
    pub fn machine(&self, id: u64) -> Option<&StateMachine> {
        self.nodes.get(&id).map(Node::machine)
    }

    /// Drains what happened since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Advances the clock one tick on every running node, then delivers every message.
    ///
    /// # Errors
    /// A node that fails to persist.
    pub fn tick(&mut self) -> Result<(), Error> {
        self.now += 1;
        for node in self.nodes.values_mut() {
            node.tick(self.now, &mut self.events);
        }
        self.pump()
    }

    /// Ticks until the clock reads `until`.
    ///
    /// # Errors
    /// As [`Cluster::tick`].
    pub fn run_until(&mut self, until: u64) -> Result<(), Error> {
        while self.now < until {
            self.tick()?;
        }
        Ok(())
    }

    /// Ticks until a running node leads, and returns its id.
    ///
    /// # Errors
    /// [`Error::NoLeader`] if none is elected within a generous number of ticks; as
    /// [`Cluster::tick`].
    pub fn elect(&mut self) -> Result<u64, Error> {
        let give_up = self.now + ELECTION_WAIT_TICKS;
        loop {
            if let Some(leader) = self.leader() {
                return Ok(leader);
            }
            if self.now >= give_up {
                return Err(Error::NoLeader);
            }
            self.tick()?;
        }
    }

    /// Kills node `id` without warning: its process state is gone, its log stays.
    pub fn kill(&mut self, id: u64) {
        self.nodes.remove(&id);
        self.mailbox.retain(|m| m.to != id);
    }

    /// Starts node `id` again from its raftwal directory; it replays the committed entries it
    /// has and catches up from the leader. Returns what the log's recovery found.
    ///
    /// # Errors
    /// The log cannot be opened or raft-rs rejects its state.
    pub fn restart(&mut self, id: u64) -> Result<RecoveryReport, Error> {
        self.open(id, None)
    }

    fn open(&mut self, id: u64, founding_voters: Option<&[u64]>) -> Result<RecoveryReport, Error> {
        let dir = self.dirs.get(&id).ok_or(Error::UnknownNode(id))?;
        let (node, report) = Node::open(id, dir, founding_voters)
            .map_err(|source| Error::Raft { node: id, source })?;
        self.nodes.insert(id, node);
        self.pump()?;
        Ok(report)
    }

    /// Creates a lease of `ttl` ticks (etcd `LeaseGrant`).
    ///
    /// # Errors
    /// See [`Error`].
    pub fn grant(&mut self, ttl: NonZeroU64) -> Result<LeaseId, Error> {
        match self.execute(&Command::LeaseGrant { ttl })? {
            Applied::Granted { id, .. } => Ok(id),
            other => unreachable!("a grant applies as a grant, not {other:?}"),
        }
    }

    /// Sets `key` to `value`, attached to `lease` if given (etcd `Put`).
    ///
    /// # Errors
    /// [`Error::LeaseNotFound`] if `lease` does not exist; see [`Error`].
    pub fn put(&mut self, key: &str, value: &str, lease: Option<LeaseId>) -> Result<(), Error> {
        let command = Command::Put {
            key: key.to_owned(),
            value: value.to_owned(),
            lease,
        };
        self.execute(&command).map(drop)
    }

    /// Restarts the lease's full TTL (etcd `LeaseKeepAlive`).
    ///
    /// # Errors
    /// [`Error::LeaseNotFound`] if it does not exist; see [`Error`].
    pub fn keep_alive(&mut self, id: LeaseId) -> Result<(), Error> {
        self.execute(&Command::LeaseKeepAlive { id }).map(drop)
    }

    /// Deletes the lease and its keys (etcd `LeaseRevoke`). Returns the keys deleted.
    ///
    /// # Errors
    /// [`Error::LeaseNotFound`] if it does not exist; see [`Error`].
    pub fn revoke(&mut self, id: LeaseId) -> Result<Vec<String>, Error> {
        match self.execute(&Command::LeaseRevoke { id })? {
            Applied::Revoked { keys, .. } => Ok(keys),
            other => unreachable!("a revoke applies as a revoke, not {other:?}"),
        }
    }

    /// The lease's TTL, time left and keys, from the leader (etcd `LeaseTimeToLive`).
    ///
    /// # Errors
    /// [`Error::NoLeader`], [`Error::LeaseNotFound`].
    pub fn time_to_live(&self, id: LeaseId) -> Result<TimeToLive, Error> {
        let leader = self.leader_node()?;
        let lease = leader
            .machine()
            .leases()
            .get(id)
            .ok_or(Error::LeaseNotFound(id))?;
        let deadline = leader.deadline(id).unwrap_or(self.now);
        Ok(TimeToLive {
            ttl: lease.ttl,
            remaining: deadline.saturating_sub(self.now),
            keys: lease.keys.iter().cloned().collect(),
        })
    }

    /// Every lease's id, from the leader (etcd `LeaseLeases`).
    ///
    /// # Errors
    /// [`Error::NoLeader`].
    pub fn leases(&self) -> Result<Vec<LeaseId>, Error> {
        Ok(self
            .leader_node()?
            .machine()
            .leases()
            .iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// The value of `key`, from the leader.
    ///
    /// # Errors
    /// [`Error::NoLeader`].
    pub fn get(&self, key: &str) -> Result<Option<Value>, Error> {
        Ok(self.leader_node()?.machine().get(key).cloned())
    }

    /// Ticks through two heartbeats, after which every running node has learned the leader's
    /// commit index (messages arrive at once) and applied up to it.
    ///
    /// # Errors
    /// As [`Cluster::tick`].
    pub fn settle(&mut self) -> Result<(), Error> {
        self.run_until(self.now + 2 * HEARTBEAT_TICKS as u64)
    }

    /// Checks that all three nodes run and hold the same applied state: the same keys, values
    /// and leases, up to the same index.
    ///
    /// # Errors
    /// The first node that differs from node 1 or does not run.
    pub fn check_agreement(&self) -> Result<(), Disagreement> {
        let reference = NODES[0];
        let want = self.machine(reference);
        for node in NODES {
            let differs = Disagreement { reference, node };
            match (want, self.machine(node)) {
                (Some(want), Some(got)) if want == got => {}
                _ => return Err(differs),
            }
        }
        Ok(())
    }

    /// Whether node `id` runs and holds lease deadlines (only a leader may).
    #[cfg(test)]
    pub fn keeps_deadlines(&self, id: u64) -> bool {
        self.nodes.get(&id).is_some_and(Node::keeps_deadlines)
    }

    fn leader_node(&self) -> Result<&Node, Error> {
        let id = self.leader().ok_or(Error::NoLeader)?;
        self.nodes.get(&id).ok_or(Error::NoLeader)
    }

    /// Proposes `command` on the leader and waits, ticking, until the leader applies it.
    fn execute(&mut self, command: &Command) -> Result<Applied, Error> {
        let leader = self.leader().ok_or(Error::NoLeader)?;
        let proposal = self
            .node_mut(leader)?
            .propose(command)
            .map_err(|source| Error::Raft {
                node: leader,
                source,
            })?;
        let deadline = self.now + PROPOSAL_TICKS;
        loop {
            self.pump()?;
            match self.outcome(leader, proposal)? {
                Some(Some(Applied::LeaseNotFound(id))) => return Err(Error::LeaseNotFound(id)),
                Some(Some(applied)) => return Ok(applied),
                Some(None) => return Err(Error::Dropped),
                None if self.now >= deadline => return Err(Error::Timeout),
                None => self.tick()?,
            }
        }
    }

    fn outcome(
        &mut self,
        leader: u64,
        proposal: Proposal,
    ) -> Result<Option<Option<Applied>>, Error> {
        Ok(self.node_mut(leader)?.take_outcome(proposal))
    }

    fn node_mut(&mut self, id: u64) -> Result<&mut Node, Error> {
        self.nodes.get_mut(&id).ok_or(Error::UnknownNode(id))
    }

    /// Runs every node's Ready loop and delivers messages until nothing is left to do.
    fn pump(&mut self) -> Result<(), Error> {
        loop {
            let mut outbox = Vec::new();
            for (&id, node) in &mut self.nodes {
                node.handle_ready(self.now, &mut outbox, &mut self.events)
                    .map_err(|source| Error::Raft { node: id, source })?;
            }
            self.mailbox.append(&mut outbox);
            if self.mailbox.is_empty() && !self.nodes.values().any(Node::has_ready) {
                return Ok(());
            }
            for message in std::mem::take(&mut self.mailbox) {
                let to = message.to;
                if let Some(node) = self.nodes.get_mut(&to) {
                    node.step(message)
                        .map_err(|source| Error::Raft { node: to, source })?;
                }
            }
        }
    }
}

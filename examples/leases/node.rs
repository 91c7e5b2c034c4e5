//! One replica: a raft-rs `RawNode` on its own raftwal log, the replicated state machine, and,
//! while it leads, the lease deadlines.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::Path;
use std::sync::Arc;

use raft::eraftpb::{Entry as RaftEntry, Message};
use raft::{Config, RawNode, StateRole};
use raftwal::adapters::raft_rs::{NoSnapshots, RaftRsStorage, advance_sync};
use raftwal::{Options, RecoveryReport, Wal};

use crate::command::{Command, LeaseId};
use crate::expiry::ExpiryQueue;
use crate::kv::{Applied, StateMachine};

/// Ticks without a heartbeat before a follower campaigns (randomised up to twice this).
pub const ELECTION_TICKS: usize = 10;
/// Ticks between a leader's heartbeats.
pub const HEARTBEAT_TICKS: usize = 2;
/// Size of a log segment: small, as the demo writes little and every node preallocates one.
const SEGMENT_SIZE: u64 = 1 << 20;
/// Width of an expiry bucket in ticks.
pub const EXPIRY_INTERVAL: NonZeroU64 = NonZeroU64::new(5).expect("non-zero");

/// Something a node did that the demo reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The node became leader and armed every lease it holds with a fresh full TTL.
    BecameLeader {
        /// The node.
        node: u64,
        /// Its term.
        term: u64,
        /// The leases armed, with their new bucket deadlines.
        armed: Vec<(LeaseId, u64)>,
    },
    /// The leader found a lease past its deadline and proposed its revocation.
    Expired {
        /// The lease.
        lease: LeaseId,
    },
    /// The leader applied an entry.
    Applied {
        /// The entry's index.
        index: u64,
        /// What it did.
        applied: Applied,
    },
}

/// A proposal's place in the log, to find its outcome once it is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The index the entry was appended at.
    pub index: u64,
    /// The term it was appended in; a committed entry at `index` with another term replaced it.
    pub term: u64,
}

/// One replica.
pub struct Node {
    raw: RawNode<RaftRsStorage>,
    machine: StateMachine,
    /// Lease deadlines on the logical clock.
    /// Invariant: `Some` exactly while this node is leader (checked at every `handle_ready`).
    expiry: Option<ExpiryQueue>,
    /// Proposals made here and not yet applied: index → term.
    pending: HashMap<u64, u64>,
    /// What applying each of this node's proposals did, until [`Node::take_outcome`].
    outcomes: HashMap<u64, Applied>,
}

impl Node {
    /// Opens node `id`'s log in `dir` and starts the node, replaying every committed entry into
    /// a fresh state machine. A founding node's new log is first given the membership `voters`;
    /// a restarted node reads it from its log.
    ///
    /// # Errors
    /// The log cannot be opened or written, or raft-rs rejects its state.
    pub fn open(
        id: u64,
        dir: &Path,
        founding_voters: Option<&[u64]>,
    ) -> raft::Result<(Node, RecoveryReport)> {
        let mut options = Options::default();
        options.segment_size = SEGMENT_SIZE;
        let (wal, report) = Wal::open(dir, options)?;
        let store = RaftRsStorage::new(Arc::new(wal), Arc::new(NoSnapshots));
        if let Some(voters) = founding_voters {
            store.initialize_with_conf_state((voters.to_vec(), vec![]))?;
        }
        let config = Config {
            id,
            election_tick: ELECTION_TICKS,
            heartbeat_tick: HEARTBEAT_TICKS,
            ..Config::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let node = Node {
            raw: RawNode::new(&config, store, &logger)?,
            machine: StateMachine::default(),
            expiry: None,
            pending: HashMap::new(),
            outcomes: HashMap::new(),
        };
        Ok((node, report))
    }

    /// The replicated state this node has applied.
    pub fn machine(&self) -> &StateMachine {
        &self.machine
    }

    /// Whether this node leads.
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    /// The bucket deadline of `lease`, on the leader only.
    pub fn deadline(&self, lease: LeaseId) -> Option<u64> {
        self.expiry.as_ref()?.deadline(lease)
    }

    /// Whether this node holds lease deadlines.
    #[cfg(test)]
    pub fn keeps_deadlines(&self) -> bool {
        self.expiry.is_some()
    }

    /// Starts an election now.
    ///
    /// # Errors
    /// Whatever raft-rs reports.
    pub fn campaign(&mut self) -> raft::Result<()> {
        self.raw.campaign()
    }

    /// Moves the node's clocks to tick `now`: raft's election and heartbeat timers, and on the
    /// leader, lease expiry, which proposes a revoke for every lease whose bucket is due.
    pub fn tick(&mut self, now: u64, events: &mut Vec<Event>) {
        self.raw.tick();
        let Some(expiry) = self.expiry.as_mut() else {
            return;
        };
        for lease in expiry.expire(now) {
            let revoke = Command::LeaseRevoke { id: lease }.encode();
            if self.raw.propose(Vec::new(), revoke).is_ok() {
                events.push(Event::Expired { lease });
            } else if let Some(expiry) = self.expiry.as_mut() {
                // NB: raft refused the proposal (a leader transfer is under way): try again at
                // the next bucket rather than forget the lease.
                expiry.touch(lease, now, EXPIRY_INTERVAL);
            }
        }
    }

    /// Proposes `command` if this node leads.
    ///
    /// # Errors
    /// `raft::Error::ProposalDropped` when not leader.
    pub fn propose(&mut self, command: &Command) -> raft::Result<Proposal> {
        self.raw.propose(Vec::new(), command.encode())?;
        let proposal = Proposal {
            index: self.raw.raft.raft_log.last_index(),
            term: self.raw.raft.term,
        };
        self.pending.insert(proposal.index, proposal.term);
        Ok(proposal)
    }

    /// What applying `proposal` did, once it is applied: `Some(None)` if another entry took
    /// its place; `None` while it is not yet applied.
    pub fn take_outcome(&mut self, proposal: Proposal) -> Option<Option<Applied>> {
        if self.machine.applied() < proposal.index {
            return None;
        }
        Some(self.outcomes.remove(&proposal.index))
    }

    /// Hands a message from a peer to raft.
    ///
    /// # Errors
    /// Whatever raft-rs reports.
    pub fn step(&mut self, message: Message) -> raft::Result<()> {
        self.raw.step(message)
    }

    /// Runs one round of raft-rs's synchronous Ready loop: sends, applies, writes and fsyncs
    /// (through the adapter's [`advance_sync`]), then applies what that committed. Also arms
    /// the lease deadlines when the node has just become leader and drops them when it no
    /// longer leads.
    ///
    /// # Errors
    /// A failed write to the node's log; the node must then be dropped, not advanced.
    pub fn handle_ready(
        &mut self,
        now: u64,
        outbox: &mut Vec<Message>,
        events: &mut Vec<Event>,
    ) -> raft::Result<()> {
        self.sync_role(now, events);
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut rd = self.raw.ready();
        outbox.extend(rd.take_messages());
        self.apply(now, rd.take_committed_entries(), events);
        let mut done = advance_sync(&mut self.raw, rd)?;
        outbox.append(&mut done.messages);
        outbox.extend(done.light.take_messages());
        self.apply(now, done.light.take_committed_entries(), events);
        self.raw.advance_apply();
        Ok(())
    }

    /// Whether a round of [`Node::handle_ready`] has work.
    pub fn has_ready(&self) -> bool {
        self.raw.has_ready()
    }

    /// Keeps the expiry queue in step with leadership. A new leader arms every lease with a
    /// fresh full TTL (etcd and Xline do the same): it cannot know how long the old leader
    /// had left, and counting from now never ends a lease early.
    fn sync_role(&mut self, now: u64, events: &mut Vec<Event>) {
        match (self.is_leader(), self.expiry.is_some()) {
            (true, false) => {
                let mut expiry = ExpiryQueue::new(EXPIRY_INTERVAL, now);
                let armed = self
                    .machine
                    .leases()
                    .iter()
                    .map(|(id, lease)| (id, expiry.touch(id, now, lease.ttl)))
                    .collect();
                self.expiry = Some(expiry);
                events.push(Event::BecameLeader {
                    node: self.raw.raft.id,
                    term: self.raw.raft.term,
                    armed,
                });
            }
            (false, true) => self.expiry = None,
            _ => {}
        }
    }

    fn apply(&mut self, now: u64, entries: Vec<RaftEntry>, events: &mut Vec<Event>) {
        for entry in entries {
            let applied = self.machine.apply(entry.index, &entry.data);
            if let Some(expiry) = self.expiry.as_mut() {
                match applied {
                    Applied::Granted { id, ttl } | Applied::KeptAlive { id, ttl } => {
                        expiry.touch(id, now, ttl);
                    }
                    Applied::Revoked { id, .. } => {
                        expiry.remove(id);
                    }
                    _ => {}
                }
                events.push(Event::Applied {
                    index: entry.index,
                    applied: applied.clone(),
                });
            }
            if self.pending.remove(&entry.index) == Some(entry.term) {
                self.outcomes.insert(entry.index, applied);
            }
        }
    }
}

//! One replica: a raft-rs `RawNode` on its own log, the replicated state machine, and, while it
//! leads, the lease deadlines.

use std::collections::HashMap;
use std::num::NonZeroU64;

use raft::eraftpb::{Entry as RaftEntry, Message};
use raft::{Config, RawNode, StateRole};

use crate::command::{Command, LeaseId};
use crate::expiry::ExpiryQueue;
use crate::kv::{Applied, StateMachine};

/// Ticks without a heartbeat before a follower campaigns (randomised up to twice this).
pub const ELECTION_TICKS: usize = 10;
/// Ticks between a leader's heartbeats.
pub const HEARTBEAT_TICKS: usize = 2;
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
    raw: RawNode<Store>,
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
    /// Starts node `id` on `store`, replaying every committed entry into a fresh state machine.
    ///
    /// # Errors
    /// Whatever raft-rs reports about the stored state.
    pub fn start(id: u64, store: Store) -> raft::Result<Node> {
        let config = Config {
            id,
            election_tick: ELECTION_TICKS,
            heartbeat_tick: HEARTBEAT_TICKS,
            ..Config::default()
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        Ok(Node {
            raw: RawNode::new(&config, store, &logger)?,
            machine: StateMachine::default(),
            expiry: None,
            pending: HashMap::new(),
            outcomes: HashMap::new(),
        })
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

    /// Runs one round of raft-rs's synchronous Ready loop: sends, persists, applies. Also arms
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
        persist(self.raw.store(), &rd)?;
        outbox.extend(rd.take_persisted_messages());
        let mut light = self.raw.advance(rd);
        if let Some(commit) = light.commit_index() {
            persist_commit(self.raw.store(), commit)?;
        }
        outbox.extend(light.take_messages());
        self.apply(now, light.take_committed_entries(), events);
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

/// The log a node keeps its entries and hard state in.
pub type Store = raft::storage::MemStorage;

fn persist(store: &Store, rd: &raft::Ready) -> raft::Result<()> {
    let mut core = store.wl();
    core.append(rd.entries())?;
    if let Some(hs) = rd.hs() {
        core.set_hardstate(hs.clone());
    }
    Ok(())
}

fn persist_commit(store: &Store, commit: u64) -> raft::Result<()> {
    store.wl().mut_hard_state().set_commit(commit);
    Ok(())
}

//! A three-node raft-rs cluster in one process, each node on raftwal in its own temp dir, with
//! an in-memory network that drops and delays messages by a seeded generator. Shared by the
//! cluster test and the cluster bench.
//!
//! Each node's state machine is the sequence of proposal values it applied. Its snapshot
//! images live in [`Images`], which outlives crashes: it stands in for the state machine's own
//! durable store. Every application is checked online against the longest sequence any node
//! applied: a node that applies something else, twice, or out of order fails at once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use raft::eraftpb::{Entry, EntryType, Message, MessageType, SnapshotMetadata};
use raft::prelude::{Config, RawNode};
use raft::{SnapshotStatus, StateRole, Storage as _, StorageError};
use raftwal::adapters::raft_rs::{Pipeline, RaftRsStorage, SnapshotSource, advance_sync};
#[cfg(feature = "test-util")]
use raftwal::fs::sim::{ImageSpec, SimFs};
use raftwal::fs::{Fs, StdFs};
use raftwal::{Options, Wal};
use tempfile::TempDir;

/// Which raft-rs persistence loop the nodes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Write, fsync, `advance_append` inline ([`advance_sync`]).
    Sync,
    /// Write, `advance_append_async`, `on_persist_ready` when the WAL reports ([`Pipeline`]).
    Async,
}

/// How the cluster behaves.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub mode: Mode,
    pub seed: u64,
    /// Messages dropped, per thousand.
    pub drop_per_mille: u64,
    /// Each message is delivered after 0..=max_delay rounds.
    pub max_delay: u64,
    /// Bytes per proposal (at least 8: the value, then padding).
    pub value_size: usize,
    /// A node snapshots and compacts every this many applied entries; 0 = never.
    pub snapshot_every: u64,
    /// The leader keeps at most this many proposals uncommitted.
    pub window: u64,
    /// Each node's WAL segment size.
    pub segment_size: u64,
}

pub const VOTERS: [u64; 3] = [1, 2, 3];

/// splitmix64: small, seeded, good enough to pick drops and delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A state machine's snapshot images by index. Survives node crashes.
#[derive(Default)]
pub struct Images(Mutex<BTreeMap<u64, Bytes>>);

impl Images {
    fn put(&self, index: u64, image: Bytes) {
        self.0.lock().unwrap().insert(index, image);
    }

    fn get(&self, index: u64) -> Option<Bytes> {
        self.0.lock().unwrap().get(&index).cloned()
    }
}

impl SnapshotSource for Images {
    fn snapshot_data(&self, meta: &SnapshotMetadata, _to: u64) -> raft::Result<Bytes> {
        self.get(meta.index).ok_or(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))
    }
}

fn encode_values(values: &[u64]) -> Bytes {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn decode_values(image: &[u8]) -> Vec<u64> {
    image
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// A running node.
struct Live {
    node: RawNode<RaftRsStorage>,
    pipeline: Pipeline,
    /// Values applied, in order.
    applied: Vec<u64>,
    /// Index of the last entry applied (or of the snapshot restored).
    applied_index: u64,
    /// `applied[..checked]` has been compared with the cluster's sequence.
    checked: usize,
    /// Index of the latest snapshot this node took or installed.
    snapshot_index: u64,
}

/// Where a node keeps its log: a temp dir on the real disk, or a directory of an in-memory
/// [`SimFs`] whose power can be cut.
struct Disk {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    /// Removes the directory when the cluster goes (real disks only).
    _temp: Option<TempDir>,
    #[cfg(feature = "test-util")]
    sim: Option<Arc<SimFs>>,
}

impl Disk {
    fn real() -> Self {
        let temp = TempDir::new().unwrap();
        Self {
            fs: Arc::new(StdFs),
            dir: temp.path().to_path_buf(),
            _temp: Some(temp),
            #[cfg(feature = "test-util")]
            sim: None,
        }
    }

    #[cfg(feature = "test-util")]
    fn simulated(sim: SimFs) -> Self {
        let sim = Arc::new(sim);
        Self {
            fs: sim.clone(),
            dir: PathBuf::from("/raft"),
            _temp: None,
            sim: Some(sim),
        }
    }
}

/// One cluster member, running or crashed.
pub struct Peer {
    pub id: u64,
    disk: Disk,
    images: Arc<Images>,
    live: Option<Live>,
    /// Snapshots received from a leader and installed.
    pub snapshots_installed: u64,
    /// What the node had applied each time it crashed.
    crashed_with: Vec<Vec<u64>>,
}

struct InFlight {
    deliver_at: u64,
    message: Message,
}

pub struct Cluster {
    settings: Settings,
    rng: Rng,
    pub peers: Vec<Peer>,
    in_flight: Vec<InFlight>,
    /// Node ids whose messages are all lost, both ways.
    cut_off: Vec<u64>,
    /// The longest sequence of values any node applied: every node's must be a prefix of it.
    pub committed: Vec<u64>,
    next_value: u64,
    round: u64,
}

fn config(id: u64, applied: u64) -> Config {
    Config {
        id,
        applied,
        election_tick: 10,
        heartbeat_tick: 2,
        max_size_per_msg: 1 << 20,
        max_inflight_msgs: 256,
        pre_vote: true,
        ..Config::default()
    }
}

fn start(id: u64, disk: &Disk, images: &Arc<Images>, segment_size: u64) -> Live {
    let mut options = Options::default();
    options.segment_size = segment_size;
    let (wal, _report) = Wal::open_with_fs(disk.fs.clone(), &disk.dir, options).expect("open wal");
    let storage = RaftRsStorage::new(Arc::new(wal), images.clone());
    if !storage.initial_state().unwrap().initialized() {
        storage
            .initialize_with_conf_state((VOTERS.to_vec(), vec![]))
            .unwrap();
    }
    // The state machine restarts from its image of the latest snapshot, and raft-rs replays
    // the committed entries after it.
    let snapshot_index = storage.wal().snapshot_meta().index;
    let applied = match snapshot_index {
        0 => Vec::new(),
        index => decode_values(&images.get(index).expect("image of the snapshot")),
    };
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let node = RawNode::new(&config(id, snapshot_index), storage, &logger).expect("raw node");
    Live {
        node,
        pipeline: Pipeline::new(),
        applied,
        applied_index: snapshot_index,
        checked: 0,
        snapshot_index,
    }
}

impl Cluster {
    /// Three fresh nodes, each in a temp dir; node 1 campaigns.
    pub fn new(settings: Settings) -> Self {
        Self::on_disks(settings, VOTERS.map(|_| Disk::real()))
    }

    /// Three fresh nodes, each on its own [`SimFs`]; node 1 campaigns.
    #[cfg(feature = "test-util")]
    pub fn simulated(settings: Settings) -> Self {
        Self::on_disks(
            settings,
            VOTERS.map(|id| Disk::simulated(SimFs::new(settings.seed + id))),
        )
    }

    fn on_disks(settings: Settings, disks: [Disk; 3]) -> Self {
        let peers: Vec<Peer> = VOTERS
            .into_iter()
            .zip(disks)
            .map(|(id, disk)| {
                let images = Arc::new(Images::default());
                let live = Some(start(id, &disk, &images, settings.segment_size));
                Peer {
                    id,
                    disk,
                    images,
                    live,
                    snapshots_installed: 0,
                    crashed_with: Vec::new(),
                }
            })
            .collect();
        let mut cluster = Self {
            settings,
            rng: Rng(settings.seed),
            peers,
            in_flight: Vec::new(),
            cut_off: Vec::new(),
            committed: Vec::new(),
            next_value: 0,
            round: 0,
        };
        cluster.live_mut(1).node.campaign().unwrap();
        cluster
    }

    fn peer(&self, id: u64) -> &Peer {
        &self.peers[(id - 1) as usize]
    }

    fn live_mut(&mut self, id: u64) -> &mut Live {
        self.peers[(id - 1) as usize]
            .live
            .as_mut()
            .expect("node is running")
    }

    fn node(&self, id: u64) -> Option<&RawNode<RaftRsStorage>> {
        self.peer(id).live.as_ref().map(|l| &l.node)
    }

    /// The running leader of the highest term, if any.
    pub fn leader(&self) -> Option<u64> {
        VOTERS
            .iter()
            .filter_map(|&id| self.node(id).map(|n| (id, n)))
            .filter(|(_, n)| n.raft.state == StateRole::Leader)
            .max_by_key(|(_, n)| n.raft.term)
            .map(|(id, _)| id)
    }

    /// A running node that is not the leader.
    pub fn follower(&self) -> u64 {
        let leader = self.leader();
        VOTERS
            .into_iter()
            .find(|&id| Some(id) != leader && self.node(id).is_some())
            .expect("a running follower")
    }

    /// Entries node `id` applied (`None` while crashed).
    pub fn applied_index(&self, id: u64) -> Option<u64> {
        self.peer(id).live.as_ref().map(|l| l.applied_index)
    }

    pub fn first_index(&self, id: u64) -> u64 {
        self.node(id).unwrap().store().first_index().unwrap()
    }

    pub fn last_index(&self, id: u64) -> u64 {
        self.node(id).unwrap().store().last_index().unwrap()
    }

    /// Drops node `id` without any shutdown: its RawNode, pipeline and WAL handle go away.
    pub fn crash(&mut self, id: u64) {
        let peer = &mut self.peers[(id - 1) as usize];
        let live = peer.live.take().expect("node is running");
        peer.crashed_with.push(live.applied);
    }

    /// Reopens node `id` from its directory.
    pub fn restart(&mut self, id: u64) {
        let segment_size = self.settings.segment_size;
        let peer = &mut self.peers[(id - 1) as usize];
        assert!(peer.live.is_none(), "node {id} is running");
        peer.live = Some(start(id, &peer.disk, &peer.images, segment_size));
    }

    /// Cuts node `id`'s power: of what it wrote, only what `spec` lets survive of the unsynced
    /// part remains. The node is down until [`restart`](Self::restart).
    #[cfg(feature = "test-util")]
    pub fn power_cut(&mut self, id: u64, spec: &ImageSpec) {
        let seed = self.rng.next();
        let peer = &mut self.peers[(id - 1) as usize];
        let sim = peer.disk.sim.as_ref().expect("a simulated disk");
        // NB: the image first: dropping the WAL lets its syncer finish what was queued.
        let image = sim.crash_image(spec, seed);
        self.crash(id);
        self.peers[(id - 1) as usize].disk = Disk::simulated(image);
    }

    /// Cuts node `id` off the network (`true`) or heals it.
    pub fn cut_off(&mut self, id: u64, cut: bool) {
        self.cut_off.retain(|&c| c != id);
        if cut {
            self.cut_off.push(id);
        }
    }

    fn send(&mut self, messages: Vec<Message>) {
        for message in messages {
            let lost = self.rng.below(1000) < self.settings.drop_per_mille
                || self.cut_off.contains(&message.from)
                || self.cut_off.contains(&message.to);
            if lost {
                self.report_snapshot(&message, SnapshotStatus::Failure);
                continue;
            }
            let deliver_at = self.round + self.rng.below(self.settings.max_delay + 1);
            self.in_flight.push(InFlight {
                deliver_at,
                message,
            });
        }
    }

    /// raft-rs must hear how a snapshot it sent fared, or it stops replicating to that peer.
    fn report_snapshot(&mut self, message: &Message, status: SnapshotStatus) {
        if message.get_msg_type() == MessageType::MsgSnapshot
            && let Some(live) = self.peers[(message.from - 1) as usize].live.as_mut()
        {
            live.node.report_snapshot(message.to, status);
        }
    }

    /// One round: tick, deliver due messages, propose (if asked), handle every Ready and
    /// durability report. Returns whether anything happened besides ticking.
    pub fn round(&mut self, propose: bool) -> bool {
        self.round += 1;
        let mut busy = false;
        // Logical time stands still while any write is syncing: a round is far shorter than
        // an fsync, a real tick (~100 ms) far longer. (The synchronous loop syncs in-round.)
        let syncing = self
            .peers
            .iter()
            .any(|p| p.live.as_ref().is_some_and(|l| l.pipeline.in_flight() > 0));
        if !syncing {
            for live in self.peers.iter_mut().filter_map(|p| p.live.as_mut()) {
                live.node.tick();
            }
        }
        let (due, later) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|m| m.deliver_at <= self.round);
        self.in_flight = later;
        for InFlight { message, .. } in due {
            busy = true;
            let to = message.to;
            let delivered = !self.cut_off.contains(&to) && self.peer(to).live.is_some();
            self.report_snapshot(
                &message,
                if delivered {
                    SnapshotStatus::Finish
                } else {
                    SnapshotStatus::Failure
                },
            );
            if delivered {
                // A step can fail for a stale message (e.g. from a removed peer): raft-rs's
                // business, not the log's.
                let _ = self.live_mut(to).node.step(message);
            }
        }
        if propose {
            busy |= self.propose();
        }
        for id in VOTERS {
            busy |= self.handle_ready(id);
        }
        busy
    }

    fn propose(&mut self) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        let (window, size) = (self.settings.window, self.settings.value_size);
        let mut proposed = false;
        loop {
            let value = self.next_value;
            let live = self.live_mut(leader);
            let log = &live.node.raft.raft_log;
            if log.last_index() - log.committed >= window {
                return proposed;
            }
            let mut data = vec![0u8; size.max(8)];
            data[..8].copy_from_slice(&value.to_le_bytes());
            if live.node.propose(vec![], data).is_err() {
                return proposed; // dropped: this node is stepping down
            }
            self.next_value += 1;
            proposed = true;
        }
    }

    fn handle_ready(&mut self, id: u64) -> bool {
        let mode = self.settings.mode;
        let Some(live) = self.peers[(id - 1) as usize].live.as_mut() else {
            return false;
        };
        let mut outbox = Vec::new();
        let mut busy = false;
        if mode == Mode::Async {
            outbox.extend(
                live.pipeline
                    .poll(&mut live.node)
                    .expect("durability report"),
            );
        }
        if live.node.has_ready() {
            busy = true;
            let mut rd = live.node.ready();
            outbox.extend(rd.take_messages());
            let snapshot = rd.snapshot();
            if !snapshot.is_empty() {
                let index = snapshot.get_metadata().index;
                self.peers[(id - 1) as usize]
                    .images
                    .put(index, snapshot.data.clone());
                let peer = &mut self.peers[(id - 1) as usize];
                peer.snapshots_installed += 1;
                let live = peer.live.as_mut().unwrap();
                live.applied = decode_values(&snapshot.data);
                live.applied_index = index;
                live.snapshot_index = index;
                live.checked = 0;
            }
            let live = self.peers[(id - 1) as usize].live.as_mut().unwrap();
            apply(live, rd.take_committed_entries());
            match mode {
                Mode::Sync => {
                    let mut done = advance_sync(&mut live.node, rd).expect("persist ready");
                    outbox.extend(done.messages);
                    outbox.extend(done.light.take_messages());
                    apply(live, done.light.take_committed_entries());
                    live.node.advance_apply();
                }
                Mode::Async => live
                    .pipeline
                    .submit(&mut live.node, rd)
                    .expect("submit ready"),
            }
            self.maybe_snapshot(id);
        }
        self.check_applied(id);
        busy |= !outbox.is_empty();
        self.send(outbox);
        busy
    }

    /// Every `snapshot_every` applied entries: save an image, record the snapshot, and compact
    /// the log to half an interval behind it.
    fn maybe_snapshot(&mut self, id: u64) {
        let every = self.settings.snapshot_every;
        let peer = &mut self.peers[(id - 1) as usize];
        let live = peer.live.as_mut().unwrap();
        if every == 0 || live.applied_index < live.snapshot_index + every {
            return;
        }
        let index = live.applied_index;
        peer.images.put(index, encode_values(&live.applied));
        let conf_state = live.node.raft.prs().conf().to_conf_state();
        let store = live.node.store();
        store
            .create_snapshot(index, &conf_state)
            .expect("create snapshot");
        store.compact(index - every / 2 + 1).expect("compact");
        live.snapshot_index = index;
    }

    /// Compares what node `id` applied since the last check with the cluster's sequence.
    fn check_applied(&mut self, id: u64) {
        let Some(live) = self.peers[(id - 1) as usize].live.as_mut() else {
            return;
        };
        for (k, &value) in live.applied.iter().enumerate().skip(live.checked) {
            match self.committed.get(k) {
                Some(&agreed) => assert_eq!(value, agreed, "node {id} applied #{k} differently"),
                None => self.committed.push(value),
            }
        }
        live.checked = live.applied.len();
    }

    /// Runs rounds until `done` holds; panics after `max_rounds`.
    pub fn run_until(
        &mut self,
        what: &str,
        max_rounds: u64,
        propose: bool,
        done: impl Fn(&Cluster) -> bool,
    ) {
        for _ in 0..max_rounds {
            if done(self) {
                return;
            }
            if !self.round(propose) {
                self.wait_for_sync();
            }
        }
        panic!(
            "{what}: not reached in {max_rounds} rounds; {}",
            self.status()
        );
    }

    /// Nothing else to do: waits (briefly) for a node's writes to become durable, so that
    /// rounds measure progress rather than spinning.
    fn wait_for_sync(&mut self) {
        let syncing = self.peers.iter_mut().filter_map(|p| p.live.as_mut());
        let Some(live) = syncing.into_iter().find(|l| l.pipeline.in_flight() > 0) else {
            return;
        };
        let released = live
            .pipeline
            .wait(&mut live.node, Duration::from_millis(10))
            .expect("durability report");
        self.send(released);
    }

    /// Commits `n` more values, proposing at whichever node leads.
    pub fn commit(&mut self, n: usize, max_rounds: u64) {
        let target = self.committed.len() + n;
        self.run_until("commit", max_rounds, true, |c| c.committed.len() >= target);
    }

    /// Stops proposing and runs until every running node applied everything committed.
    pub fn settle(&mut self, max_rounds: u64) {
        self.run_until("settle", max_rounds, false, |c| {
            let Some(leader) = c.leader() else {
                return false;
            };
            let commit = c.node(leader).unwrap().raft.raft_log.committed;
            VOTERS
                .iter()
                .all(|&id| c.applied_index(id).is_none_or(|a| a == commit))
        });
    }

    /// Every running node applied exactly the committed sequence; every value at most once;
    /// and what each node had applied when it crashed is a prefix of it.
    pub fn check_agreement(&self) {
        for peer in &self.peers {
            if let Some(live) = &peer.live {
                assert_eq!(live.applied, self.committed, "node {} diverged", peer.id);
            }
            for before in &peer.crashed_with {
                assert!(
                    self.committed.starts_with(before),
                    "node {} lost entries",
                    peer.id
                );
            }
        }
        let mut sorted = self.committed.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            self.committed.len(),
            "a value was applied twice"
        );
    }

    fn status(&self) -> String {
        let nodes: Vec<String> = self
            .peers
            .iter()
            .map(|p| match &p.live {
                Some(l) => format!(
                    "{}: {:?} term {} commit {} applied {} log [{}, {}]",
                    p.id,
                    l.node.raft.state,
                    l.node.raft.term,
                    l.node.raft.raft_log.committed,
                    l.applied_index,
                    l.node.store().first_index().unwrap(),
                    l.node.store().last_index().unwrap(),
                ),
                None => format!("{}: down", p.id),
            })
            .collect();
        format!(
            "committed {} values; {}",
            self.committed.len(),
            nodes.join("; ")
        )
    }
}

/// Applies committed entries in order: each must follow the last one applied.
fn apply(live: &mut Live, entries: Vec<Entry>) {
    for entry in entries {
        assert_eq!(
            entry.index,
            live.applied_index + 1,
            "entries applied out of order"
        );
        live.applied_index = entry.index;
        assert_eq!(entry.get_entry_type(), EntryType::EntryNormal);
        if let Some(value) = entry.data.get(..8) {
            live.applied
                .push(u64::from_le_bytes(value.try_into().unwrap()));
        }
    }
}

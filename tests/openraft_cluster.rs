//! Three openraft nodes in one process, each logging to its own raftwal directory, talking over
//! an in-memory network: writes commit, one follower restarts from its directory, more writes
//! commit while it is down, and it catches up with nothing lost.

mod openraft_support;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::RaftLogStorage;
use openraft::{BasicNode, Raft, RaftNetwork, RaftNetworkFactory, SnapshotPolicy};
use tempfile::TempDir;

use openraft_support::{Config, MemStateMachine, open_log};
use raftwal::adapters::openraft::OpenraftLog;

type NodeId = u64;

/// How long any one wait for the cluster may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// The in-memory network: delivers each RPC by calling the target node's `Raft` directly.
#[derive(Clone, Default)]
struct Router {
    /// The nodes that are up. Invariant: a stopped node is removed before it shuts down.
    nodes: Arc<Mutex<BTreeMap<NodeId, Raft<Config>>>>,
}

impl Router {
    fn node(&self, id: NodeId) -> Option<Raft<Config>> {
        self.nodes.lock().unwrap().get(&id).cloned()
    }

    fn add(&self, id: NodeId, raft: Raft<Config>) {
        self.nodes.lock().unwrap().insert(id, raft);
    }

    fn remove(&self, id: NodeId) -> Raft<Config> {
        self.nodes.lock().unwrap().remove(&id).expect("node is up")
    }
}

/// A connection from one node to `target`.
struct Connection {
    router: Router,
    target: NodeId,
}

impl Connection {
    /// The target's `Raft`, or `Unreachable` while it is down.
    #[expect(clippy::result_large_err, reason = "openraft's RPC error type")]
    fn target<E: std::error::Error>(&self) -> Result<Raft<Config>, RPCError<NodeId, BasicNode, E>> {
        self.router.node(self.target).ok_or_else(|| {
            RPCError::Unreachable(Unreachable::new(&io::Error::other("node is down")))
        })
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl RaftNetworkFactory<Config> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            router: self.clone(),
            target,
        }
    }
}

impl RaftNetwork<Config> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Config>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.target()?;
        raft.append_entries(rpc).await.map_err(|e| self.remote(e))
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<Config>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        let raft = self.target()?;
        raft.install_snapshot(rpc).await.map_err(|e| self.remote(e))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let raft = self.target()?;
        raft.vote(rpc).await.map_err(|e| self.remote(e))
    }
}

/// Starts node `id` on `log` (new or left by an earlier run) with an empty in-memory state
/// machine, which openraft refills from the log up to the saved committed id.
async fn start_node(router: &Router, id: NodeId, log: OpenraftLog<Config>) -> MemStateMachine {
    let config = openraft::Config {
        heartbeat_interval: 50,
        election_timeout_min: 200,
        election_timeout_max: 400,
        // The state machine lives in memory: the log must keep everything it is rebuilt from.
        snapshot_policy: SnapshotPolicy::Never,
        ..Default::default()
    };
    let sm = MemStateMachine::default();
    let raft = Raft::new(
        id,
        Arc::new(config.validate().unwrap()),
        router.clone(),
        log,
        sm.clone(),
    )
    .await
    .unwrap();
    router.add(id, raft);
    sm
}

/// Waits until node `id` has applied the log up to `index`.
async fn wait_applied(router: &Router, id: NodeId, index: u64) {
    router
        .node(id)
        .unwrap()
        .wait(Some(PATIENCE))
        .applied_index_at_least(Some(index), format!("node {id} applies {index}"))
        .await
        .unwrap();
}

/// Proposes five requests named `prefix0..prefix4` on `leader`; returns them and the index of
/// the last one once all are committed.
async fn write(router: &Router, leader: NodeId, prefix: &str) -> (Vec<String>, u64) {
    let raft = router.node(leader).unwrap();
    let requests: Vec<String> = (0..5).map(|i| format!("{prefix}{i}")).collect();
    let mut last = 0;
    for r in &requests {
        last = raft.client_write(r.clone()).await.unwrap().log_id.index;
    }
    (requests, last)
}

/// Starts nodes 1-3 on `logs` as one cluster; returns their state machines and the leader.
async fn start_cluster(
    router: &Router,
    logs: BTreeMap<NodeId, OpenraftLog<Config>>,
) -> (BTreeMap<NodeId, MemStateMachine>, NodeId) {
    let mut machines = BTreeMap::new();
    for (id, log) in logs {
        machines.insert(id, start_node(router, id, log).await);
    }
    let members: BTreeMap<NodeId, BasicNode> = machines
        .keys()
        .map(|&id| (id, BasicNode::new(format!("node-{id}"))))
        .collect();
    let node = router.node(1).unwrap();
    node.initialize(members).await.unwrap();
    let leader = node
        .wait(Some(PATIENCE))
        .metrics(|m| m.current_leader.is_some(), "a leader is elected")
        .await
        .unwrap()
        .current_leader
        .unwrap();
    (machines, leader)
}

/// Waits until every node has applied the log up to `index`.
async fn wait_all_applied(router: &Router, index: u64) {
    for id in 1..=3 {
        wait_applied(router, id, index).await;
    }
}

/// Checks every state machine applied exactly `want`, in order, then stops every node.
async fn assert_applied_and_stop(
    router: &Router,
    machines: &BTreeMap<NodeId, MemStateMachine>,
    want: &[String],
) {
    for (id, sm) in machines {
        assert_eq!(
            sm.applied(),
            want,
            "node {id} applied every write once, in order"
        );
    }
    for id in 1..=3 {
        router.remove(id).shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_across_a_follower_restart() {
    let router = Router::default();
    let dirs: BTreeMap<NodeId, TempDir> = (1..=3)
        .map(|id| (id, tempfile::tempdir().unwrap()))
        .collect();
    let logs = dirs.iter().map(|(&id, dir)| (id, open_log(dir.path())));
    let (mut machines, leader) = start_cluster(&router, logs.collect()).await;
    let (first, first_index) = write(&router, leader, "a").await;
    wait_all_applied(&router, first_index).await;

    // Stop a follower; the other two still make a quorum.
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    router.remove(follower).shutdown().await.unwrap();
    let (second, last_index) = write(&router, leader, "b").await;

    // Its directory holds the writes, its vote and how far they were committed; with no
    // snapshots, its restarted state machine can get the first writes only by re-applying them
    // from there.
    let mut log = open_log(dirs[&follower].path());
    let state = log.get_log_state().await.unwrap();
    assert!(state.last_log_id.unwrap().index >= first_index);
    assert!(log.read_committed().await.unwrap().unwrap().index >= first_index);
    let vote = log.read_vote().await.unwrap().unwrap();
    assert_eq!(vote.leader_id.node_id, leader);

    machines.insert(follower, start_node(&router, follower, log).await);
    wait_all_applied(&router, last_index).await;
    let want: Vec<String> = first.into_iter().chain(second).collect();
    assert_applied_and_stop(&router, &machines, &want).await;
}

/// As above, but the follower loses power (simulated disk, feature `test-util`): only what it
/// had synced survives, and the cluster still ends with every write applied everywhere.
#[cfg(feature = "test-util")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_across_a_power_cut_under_a_follower() {
    use raftwal::fs::sim::{ImageSpec, SimFs};

    use openraft_support::open_sim_log;

    let router = Router::default();
    let disks: BTreeMap<NodeId, SimFs> = (1..=3).map(|id| (id, SimFs::new(id))).collect();
    let logs = disks.iter().map(|(&id, fs)| (id, open_sim_log(fs.clone())));
    let (mut machines, leader) = start_cluster(&router, logs.collect()).await;
    let (first, first_index) = write(&router, leader, "a").await;
    wait_all_applied(&router, first_index).await;

    // Cut the follower off the network, then its power: the image is what its disk kept.
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let raft = router.remove(follower);
    let vote = raft.metrics().borrow().vote;
    let image = disks[&follower].crash_image(&ImageSpec::NOTHING, 7);
    raft.shutdown().await.unwrap();
    let (second, last_index) = write(&router, leader, "b").await;

    let mut log = open_sim_log(image);
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(vote),
        "a saved vote is durable"
    );
    machines.insert(follower, start_node(&router, follower, log).await);
    wait_all_applied(&router, last_index).await;
    let want: Vec<String> = first.into_iter().chain(second).collect();
    assert_applied_and_stop(&router, &machines, &want).await;
}

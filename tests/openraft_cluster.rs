//! Three openraft nodes in one process, each logging to its own raftwal directory, talking over
//! an in-memory network: writes commit, one follower restarts from its directory, more writes
//! commit while it is down, and it catches up with nothing lost.

mod openraft_support;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
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

/// Starts node `id` on the raftwal log in `dir` (new or left by an earlier run) with an empty
/// in-memory state machine, which openraft refills from the log up to the saved committed id.
async fn start_node(router: &Router, id: NodeId, dir: &Path) -> MemStateMachine {
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
        open_log(dir),
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

/// Proposes `requests` on `leader`; returns the index of the last one.
async fn write(router: &Router, leader: NodeId, requests: &[String]) -> u64 {
    let raft = router.node(leader).unwrap();
    let mut last = 0;
    for r in requests {
        last = raft.client_write(r.clone()).await.unwrap().log_id.index;
    }
    last
}

fn requests(prefix: &str) -> Vec<String> {
    (0..5).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_commit_across_a_follower_restart() {
    let router = Router::default();
    let dirs: BTreeMap<NodeId, TempDir> = (1..=3)
        .map(|id| (id, tempfile::tempdir().unwrap()))
        .collect();
    let mut machines = BTreeMap::new();
    for (&id, dir) in &dirs {
        machines.insert(id, start_node(&router, id, dir.path()).await);
    }
    let members: BTreeMap<NodeId, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("node-{id}"))))
        .collect();
    router.node(1).unwrap().initialize(members).await.unwrap();
    let leader = router
        .node(1)
        .unwrap()
        .wait(Some(PATIENCE))
        .metrics(|m| m.current_leader.is_some(), "a leader is elected")
        .await
        .unwrap()
        .current_leader
        .unwrap();

    let first = requests("a");
    let first_index = write(&router, leader, &first).await;
    for id in 1..=3 {
        wait_applied(&router, id, first_index).await;
    }

    // Stop a follower; the other two still make a quorum.
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    router.remove(follower).shutdown().await.unwrap();
    let second = requests("b");
    let last_index = write(&router, leader, &second).await;

    // Its directory holds everything it had acknowledged before it stopped.
    let mut log = open_log(dirs[&follower].path());
    let state = log.get_log_state().await.unwrap();
    assert!(state.last_log_id.unwrap().index >= first_index);
    drop(log);

    machines.insert(
        follower,
        start_node(&router, follower, dirs[&follower].path()).await,
    );
    for id in 1..=3 {
        wait_applied(&router, id, last_index).await;
    }
    let want: Vec<String> = first.into_iter().chain(second).collect();
    for (id, sm) in &machines {
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

//! What the openraft tests share: a type config with its log codec, a small in-memory state
//! machine, and a log opened on a directory.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use raftwal::adapters::openraft::{LogCodec, OpenraftLog, decode_basic_node, encode_basic_node};
use raftwal::{DecodeError, Options};

openraft::declare_raft_types!(
    /// Requests and responses are strings; node ids are u64; nodes carry an address.
    pub Config: D = String, R = String
);

impl LogCodec for Config {
    fn encode_data(data: &String, out: &mut Vec<u8>) {
        out.extend_from_slice(data.as_bytes());
    }

    fn decode_data(bytes: &[u8]) -> Result<String, DecodeError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Malformed { what: "request" })
    }

    fn encode_node(node: &BasicNode, out: &mut Vec<u8>) {
        encode_basic_node(node, out);
    }

    fn decode_node(bytes: &[u8]) -> Result<BasicNode, DecodeError> {
        decode_basic_node(bytes)
    }
}

/// Options with small segments, so tests cross segment boundaries and purges remove segments.
fn small_segments() -> Options {
    let mut options = Options::default();
    options.segment_size = 4 << 10;
    options
}

/// Opens the openraft log in `dir`.
pub fn open_log(dir: &Path) -> OpenraftLog<Config> {
    OpenraftLog::open(dir, small_segments())
        .expect("open the openraft log")
        .0
}

/// Opens the openraft log in `/log` on a simulated disk.
#[cfg(feature = "test-util")]
pub fn open_sim_log(fs: raftwal::fs::sim::SimFs) -> OpenraftLog<Config> {
    let (wal, _) = raftwal::Wal::open_with_fs(Arc::new(fs), "/log", small_segments())
        .expect("open the openraft log");
    OpenraftLog::new(wal).expect("finish an interrupted purge")
}

/// A state machine that keeps every applied request in order. Clones share it, so a clone serves
/// as the snapshot builder.
#[derive(Clone, Debug, Default)]
pub struct MemStateMachine {
    inner: Arc<Mutex<SmState>>,
}

#[derive(Debug, Default)]
struct SmState {
    last_applied: Option<LogId<u64>>,
    last_membership: StoredMembership<u64, BasicNode>,
    /// The applied requests, in log order.
    applied: Vec<String>,
    /// The latest snapshot: its metadata and encoded `applied`.
    snapshot: Option<(SnapshotMeta<u64, BasicNode>, Vec<u8>)>,
    /// How many snapshots were built, for unique snapshot ids.
    built: u64,
}

impl MemStateMachine {
    fn state(&self) -> MutexGuard<'_, SmState> {
        self.inner.lock().expect("state machine lock")
    }

    /// The requests applied so far, in order.
    pub fn applied(&self) -> Vec<String> {
        self.state().applied.clone()
    }
}

/// Requests as length-prefixed strings: u32 LE length, then the bytes.
fn encode_requests(requests: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in requests {
        out.extend_from_slice(&u32::try_from(r.len()).expect("short request").to_le_bytes());
        out.extend_from_slice(r.as_bytes());
    }
    out
}

fn decode_requests(mut bytes: &[u8]) -> Result<Vec<String>, DecodeError> {
    let bad = DecodeError::Malformed { what: "snapshot" };
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_at_checked(4).ok_or(bad)?;
        let len = u32::from_le_bytes(len.try_into().map_err(|_| bad)?) as usize;
        let (s, rest) = rest.split_at_checked(len).ok_or(bad)?;
        out.push(String::from_utf8(s.to_vec()).map_err(|_| bad)?);
        bytes = rest;
    }
    Ok(out)
}

fn snapshot_of(meta: SnapshotMeta<u64, BasicNode>, data: Vec<u8>) -> Snapshot<Config> {
    Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(data)),
    }
}

impl RaftSnapshotBuilder<Config> for MemStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Config>, StorageError<u64>> {
        let mut st = self.state();
        st.built += 1;
        let meta = SnapshotMeta {
            last_log_id: st.last_applied,
            last_membership: st.last_membership.clone(),
            snapshot_id: format!("snapshot-{}", st.built),
        };
        let data = encode_requests(&st.applied);
        st.snapshot = Some((meta.clone(), data.clone()));
        Ok(snapshot_of(meta, data))
    }
}

impl RaftStateMachine<Config> for MemStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let st = self.state();
        Ok((st.last_applied, st.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<String>, StorageError<u64>>
    where
        I: IntoIterator<Item = openraft::Entry<Config>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut st = self.state();
        let mut replies = Vec::new();
        for entry in entries {
            st.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => replies.push(String::new()),
                EntryPayload::Normal(request) => {
                    st.applied.push(request.clone());
                    replies.push(request);
                }
                EntryPayload::Membership(m) => {
                    st.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    replies.push(String::new());
                }
            }
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        let applied = decode_requests(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let mut st = self.state();
        st.applied = applied;
        st.last_applied = meta.last_log_id;
        st.last_membership = meta.last_membership.clone();
        st.snapshot = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<Config>>, StorageError<u64>> {
        Ok(self
            .state()
            .snapshot
            .clone()
            .map(|(meta, data)| snapshot_of(meta, data)))
    }
}

//! How openraft's values are laid out inside raftwal's: an entry's bytes, the vote in the hard
//! state, and the last purged log id's leader in the snapshot metadata. Pure: no I/O.
//!
//! An openraft entry becomes one raftwal [`Entry`]: openraft index `i` is raftwal index `i + 1`
//! (raftwal keeps index 0 as the empty log's position), the leader's term is the entry's term,
//! and `Entry.data` holds the rest:
//!
//! | offset | size | field                                              |
//! |--------|------|----------------------------------------------------|
//! | 0      | 8    | leader node id of the entry's log id (u64 LE)      |
//! | 8      | 1    | payload kind: 0 blank, 1 normal, 2 membership      |
//! | 9      | rest | payload                                            |
//!
//! A normal payload is the application's data as [`LogCodec::encode_data`] wrote it, to the end.
//! A membership payload is:
//!
//! | size | field                                                                       |
//! |------|-----------------------------------------------------------------------------|
//! | 4    | number of configs (u32 LE); per config: 4 bytes voter count, 8 bytes per id |
//! | 4    | number of nodes (u32 LE); per node: 8 bytes id, 4 bytes length, node bytes  |
//!
//! The record checksum around `Entry.data` is the WAL's; this layer only checks structure.

#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes};
use openraft::{BasicNode, EntryPayload, LeaderId, LogId, Membership, RaftTypeConfig, Vote};

use crate::error::DecodeError;
use crate::types::{Entry, HardState, SnapshotMeta};

/// How an application's own openraft types become bytes in the log.
///
/// Implemented on the application's type config (the type `declare_raft_types!` makes). The
/// adapter stores log ids, payload kinds and memberships itself; it needs the application only for
/// its request type `D` and its node type `Node`. Node ids are `u64`, openraft's default.
///
/// # Example
///
/// ```
/// use std::io::Cursor; // `declare_raft_types!` names it unqualified
///
/// use raftwal::DecodeError;
/// use raftwal::adapters::openraft::{LogCodec, decode_basic_node, encode_basic_node};
///
/// openraft::declare_raft_types!(pub Config: D = String, R = String);
///
/// impl LogCodec for Config {
///     fn encode_data(data: &String, out: &mut Vec<u8>) {
///         out.extend_from_slice(data.as_bytes());
///     }
///     fn decode_data(bytes: &[u8]) -> Result<String, DecodeError> {
///         String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Malformed { what: "request" })
///     }
///     fn encode_node(node: &openraft::BasicNode, out: &mut Vec<u8>) {
///         encode_basic_node(node, out);
///     }
///     fn decode_node(bytes: &[u8]) -> Result<openraft::BasicNode, DecodeError> {
///         decode_basic_node(bytes)
///     }
/// }
/// ```
pub trait LogCodec: RaftTypeConfig<NodeId = u64, Entry = openraft::Entry<Self>> {
    /// Appends the bytes of `data` to `out`.
    fn encode_data(data: &Self::D, out: &mut Vec<u8>);

    /// Rebuilds the data from exactly the bytes [`Self::encode_data`] wrote.
    ///
    /// # Errors
    /// A [`DecodeError`] for bytes that are not a valid encoding; never a panic.
    fn decode_data(bytes: &[u8]) -> Result<Self::D, DecodeError>;

    /// Appends the bytes of `node` to `out`.
    fn encode_node(node: &Self::Node, out: &mut Vec<u8>);

    /// Rebuilds a node from exactly the bytes [`Self::encode_node`] wrote.
    ///
    /// # Errors
    /// A [`DecodeError`] for bytes that are not a valid encoding; never a panic.
    fn decode_node(bytes: &[u8]) -> Result<Self::Node, DecodeError>;
}

/// [`LogCodec::encode_node`] for openraft's [`BasicNode`]: its address as UTF-8.
pub fn encode_basic_node(node: &BasicNode, out: &mut Vec<u8>) {
    out.extend_from_slice(node.addr.as_bytes());
}

/// [`LogCodec::decode_node`] for openraft's [`BasicNode`].
///
/// # Errors
/// [`DecodeError::Malformed`] if the address is not UTF-8.
pub fn decode_basic_node(bytes: &[u8]) -> Result<BasicNode, DecodeError> {
    let addr = std::str::from_utf8(bytes).map_err(|_| DecodeError::Malformed {
        what: "node address is not UTF-8",
    })?;
    Ok(BasicNode::new(addr))
}

/// Bytes before the payload: the leader node id and the payload kind.
const HEADER_LEN: usize = 8 + 1;

const KIND_BLANK: u8 = 0;
const KIND_NORMAL: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;

/// The raftwal index of openraft index `index`.
///
/// # Errors
/// For `u64::MAX`, which has no raftwal index.
pub(super) fn wal_index(index: u64) -> Result<u64, Unrepresentable> {
    index
        .checked_add(1)
        .ok_or(Unrepresentable("index u64::MAX"))
}

/// Encodes an openraft entry as a raftwal entry (layout in the module docs).
///
/// # Errors
/// What cannot be represented: index `u64::MAX` (no raftwal index), or a membership with more
/// than `u32::MAX` configs, voters or nodes, or a node encoding over 4 GiB.
pub(super) fn encode_entry<C: LogCodec>(
    entry: &openraft::Entry<C>,
) -> Result<Entry, Unrepresentable> {
    let index = wal_index(entry.log_id.index)?;
    let mut data = Vec::with_capacity(HEADER_LEN + 32);
    data.put_u64_le(entry.log_id.leader_id.node_id);
    match &entry.payload {
        EntryPayload::Blank => data.put_u8(KIND_BLANK),
        EntryPayload::Normal(d) => {
            data.put_u8(KIND_NORMAL);
            C::encode_data(d, &mut data);
        }
        EntryPayload::Membership(m) => {
            data.put_u8(KIND_MEMBERSHIP);
            encode_membership::<C>(m, &mut data)?;
        }
    }
    Ok(Entry::new(index, entry.log_id.leader_id.term, data))
}

/// Why an openraft value has no encoding (see [`encode_entry`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Unrepresentable(pub(super) &'static str);

fn encode_membership<C: LogCodec>(
    m: &Membership<u64, C::Node>,
    out: &mut Vec<u8>,
) -> Result<(), Unrepresentable> {
    let configs = m.get_joint_config();
    put_len(out, configs.len())?;
    for config in configs {
        put_len(out, config.len())?;
        for id in config {
            out.put_u64_le(*id);
        }
    }
    let nodes: Vec<_> = m.nodes().collect();
    put_len(out, nodes.len())?;
    let mut node_bytes = Vec::new();
    for (id, node) in nodes {
        out.put_u64_le(*id);
        node_bytes.clear();
        C::encode_node(node, &mut node_bytes);
        put_len(out, node_bytes.len())?;
        out.extend_from_slice(&node_bytes);
    }
    Ok(())
}

/// Writes a count or length as u32 LE.
fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), Unrepresentable> {
    let len = u32::try_from(len).map_err(|_| Unrepresentable("membership count over u32"))?;
    out.put_u32_le(len);
    Ok(())
}

/// The openraft log id of a raftwal entry, reading only the fixed header.
pub(super) fn decode_log_id(entry: &Entry) -> Result<LogId<u64>, DecodeError> {
    decode_header(entry).map(|(log_id, _)| log_id)
}

/// The log id and a reader positioned at the payload kind.
fn decode_header(entry: &Entry) -> Result<(LogId<u64>, Reader<'_>), DecodeError> {
    let index = entry.index.checked_sub(1).ok_or(DecodeError::Malformed {
        what: "openraft entry at raftwal index 0",
    })?;
    let mut r = Reader::new(&entry.data);
    let node_id = r.u64()?;
    Ok((LogId::new(LeaderId::new(entry.term, node_id), index), r))
}

/// Decodes a raftwal entry back into the openraft entry [`encode_entry`] made.
pub(super) fn decode_entry<C: LogCodec>(entry: &Entry) -> Result<openraft::Entry<C>, DecodeError> {
    let (log_id, mut r) = decode_header(entry)?;
    let payload = match r.u8()? {
        KIND_BLANK => EntryPayload::Blank,
        KIND_NORMAL => EntryPayload::Normal(C::decode_data(r.take_rest())?),
        KIND_MEMBERSHIP => EntryPayload::Membership(decode_membership::<C>(&mut r)?),
        _ => {
            return Err(DecodeError::Malformed {
                what: "openraft payload kind",
            });
        }
    };
    if !r.rest().is_empty() {
        return Err(DecodeError::Malformed {
            what: "bytes after an openraft payload",
        });
    }
    Ok(openraft::Entry { log_id, payload })
}

fn decode_membership<C: LogCodec>(
    r: &mut Reader<'_>,
) -> Result<Membership<u64, C::Node>, DecodeError> {
    let config_count = r.u32()?;
    let mut configs = Vec::new();
    for _ in 0..config_count {
        let voter_count = r.u32()?;
        let mut voters = BTreeSet::new();
        for _ in 0..voter_count {
            voters.insert(r.u64()?);
        }
        configs.push(voters);
    }
    let node_count = r.u32()?;
    let mut nodes = BTreeMap::new();
    for _ in 0..node_count {
        let id = r.u64()?;
        let len = r.u32()?;
        let node = C::decode_node(r.take(len as usize)?)?;
        nodes.insert(id, node);
    }
    Ok(Membership::new(configs, nodes))
}

/// Bit 0 of [`HardState::vote`]: the vote is committed (granted by a quorum).
const VOTE_COMMITTED_BIT: u64 = 1;

/// The largest node id a vote can name: the hard state's `vote` field keeps the committed flag
/// in its low bit.
pub(super) const MAX_VOTE_NODE_ID: u64 = u64::MAX >> 1;

/// `hs` with the vote set to `vote`: `term` is the vote's term and `vote` is
/// `node_id << 1 | committed`; `commit` is kept.
///
/// # Errors
/// A node id above [`MAX_VOTE_NODE_ID`].
pub(super) fn vote_into_hard_state(
    vote: &Vote<u64>,
    hs: HardState,
) -> Result<HardState, Unrepresentable> {
    let node_id = vote.leader_id.node_id;
    if node_id > MAX_VOTE_NODE_ID {
        return Err(Unrepresentable("vote for a node id over 2^63 - 1"));
    }
    Ok(HardState {
        term: vote.leader_id.term,
        vote: node_id << 1 | u64::from(vote.committed),
        commit: hs.commit,
    })
}

/// The vote [`vote_into_hard_state`] stored, or `None` if none was (term and vote both 0: the
/// default vote, which openraft also starts from when there is none).
pub(super) fn vote_from_hard_state(hs: &HardState) -> Option<Vote<u64>> {
    if hs.term == 0 && hs.vote == 0 {
        return None;
    }
    Some(Vote {
        leader_id: LeaderId::new(hs.term, hs.vote >> 1),
        committed: hs.vote & VOTE_COMMITTED_BIT != 0,
    })
}

/// The snapshot metadata that records `purged` as the last purged log id: position and term are
/// raftwal's, `conf_state` holds the leader node id (u64 LE).
pub(super) fn purged_meta(purged: &LogId<u64>) -> Result<SnapshotMeta, Unrepresentable> {
    Ok(SnapshotMeta {
        index: wal_index(purged.index)?,
        term: purged.leader_id.term,
        conf_state: Bytes::copy_from_slice(&purged.leader_id.node_id.to_le_bytes()),
    })
}

/// The last purged log id [`purged_meta`] recorded, or `None` if no purge was recorded.
pub(super) fn purged_from_meta(meta: &SnapshotMeta) -> Result<Option<LogId<u64>>, DecodeError> {
    if meta.index == 0 {
        return Ok(None);
    }
    let node_id = Reader::new(&meta.conf_state).u64()?;
    let index = meta.index - 1;
    Ok(Some(LogId::new(LeaderId::new(meta.term, node_id), index)))
}

/// A cursor over bytes from disk: every read is bounds-checked and fails with
/// [`DecodeError::Truncated`] instead of panicking.
struct Reader<'a> {
    /// The bytes not read yet.
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(DecodeError::Truncated {
                needed: n as u64,
                available: self.rest.len() as u64,
            })?;
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn rest(&self) -> &'a [u8] {
        self.rest
    }

    fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Cursor; // named unqualified by `declare_raft_types!`

    openraft::declare_raft_types!(Config: D = u64, R = ());

    impl LogCodec for Config {
        fn encode_data(data: &u64, out: &mut Vec<u8>) {
            out.extend_from_slice(&data.to_le_bytes());
        }
        fn decode_data(bytes: &[u8]) -> Result<u64, DecodeError> {
            Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| {
                DecodeError::BadLength {
                    len: bytes.len() as u64,
                    max: 8,
                }
            })?))
        }
        fn encode_node(node: &BasicNode, out: &mut Vec<u8>) {
            encode_basic_node(node, out);
        }
        fn decode_node(bytes: &[u8]) -> Result<BasicNode, DecodeError> {
            decode_basic_node(bytes)
        }
    }

    fn log_id(term: u64, node_id: u64, index: u64) -> LogId<u64> {
        LogId::new(LeaderId::new(term, node_id), index)
    }

    fn entry(id: LogId<u64>, payload: EntryPayload<Config>) -> openraft::Entry<Config> {
        openraft::Entry {
            log_id: id,
            payload,
        }
    }

    fn joint_membership() -> Membership<u64, BasicNode> {
        let nodes = BTreeMap::from([
            (1, BasicNode::new("a:1")),
            (2, BasicNode::new("b:2")),
            (3, BasicNode::new("")),
            (9, BasicNode::new("learner:9")),
        ]);
        Membership::new(vec![BTreeSet::from([1, 2]), BTreeSet::from([2, 3])], nodes)
    }

    #[test]
    fn entries_round_trip_with_their_leader_node_id() {
        let cases = [
            entry(log_id(0, 0, 0), EntryPayload::Blank),
            entry(log_id(7, 3, 41), EntryPayload::Normal(0x1122_3344)),
            entry(log_id(2, u64::MAX, 5), EntryPayload::Normal(u64::MAX)),
            entry(
                log_id(9, 1, 1 << 40),
                EntryPayload::Membership(joint_membership()),
            ),
        ];
        for want in cases {
            let stored = encode_entry(&want).unwrap();
            assert_eq!(
                stored.index,
                want.log_id.index + 1,
                "index maps to raftwal's"
            );
            assert_eq!(stored.term, want.log_id.leader_id.term);
            assert_eq!(decode_log_id(&stored).unwrap(), want.log_id);
            assert_eq!(decode_entry::<Config>(&stored).unwrap(), want);
        }
    }

    #[test]
    fn index_u64_max_is_unrepresentable() {
        let e = entry(log_id(1, 1, u64::MAX), EntryPayload::Blank);
        assert_eq!(encode_entry(&e), Err(Unrepresentable("index u64::MAX")));
    }

    #[test]
    fn malformed_entries_are_errors_not_panics() {
        let good = encode_entry(&entry(
            log_id(3, 1, 4),
            EntryPayload::Membership(joint_membership()),
        ))
        .unwrap();
        let with_data = |data: Vec<u8>| Entry::new(5, 3, data);
        let mut unknown_kind = good.data.to_vec();
        unknown_kind[8] = 7;
        let mut trailing = good.data.to_vec();
        trailing.push(0);
        let cases: [(&str, Entry, DecodeError); 5] = [
            (
                "short header",
                with_data(vec![1, 2, 3]),
                DecodeError::Truncated {
                    needed: 8,
                    available: 3,
                },
            ),
            (
                "no kind",
                with_data(vec![0; 8]),
                DecodeError::Truncated {
                    needed: 1,
                    available: 0,
                },
            ),
            (
                "unknown kind",
                with_data(unknown_kind),
                DecodeError::Malformed {
                    what: "openraft payload kind",
                },
            ),
            (
                "trailing bytes",
                with_data(trailing),
                DecodeError::Malformed {
                    what: "bytes after an openraft payload",
                },
            ),
            (
                "raftwal index 0",
                Entry::new(0, 3, good.data.clone()),
                DecodeError::Malformed {
                    what: "openraft entry at raftwal index 0",
                },
            ),
        ];
        for (name, stored, want) in cases {
            assert_eq!(decode_entry::<Config>(&stored).unwrap_err(), want, "{name}");
        }
        // Every cut of a membership entry fails cleanly.
        for len in 0..good.data.len() {
            let cut = with_data(good.data.slice(..len).to_vec());
            assert!(decode_entry::<Config>(&cut).is_err(), "cut at {len}");
        }
    }

    #[test]
    fn votes_round_trip_through_the_hard_state_and_keep_commit() {
        let kept = HardState {
            term: 1,
            vote: 0,
            commit: 17,
        };
        let cases = [
            Vote::new(1, 0),
            Vote::new(5, 3),
            Vote::new_committed(5, 3),
            Vote::new_committed(u64::MAX, MAX_VOTE_NODE_ID),
        ];
        for vote in cases {
            let hs = vote_into_hard_state(&vote, kept).unwrap();
            assert_eq!(hs.commit, 17);
            assert_eq!(vote_from_hard_state(&hs), Some(vote));
        }
        assert_eq!(vote_from_hard_state(&HardState::default()), None);
        assert_eq!(
            vote_into_hard_state(&Vote::new(1, MAX_VOTE_NODE_ID + 1), kept),
            Err(Unrepresentable("vote for a node id over 2^63 - 1"))
        );
    }

    #[test]
    fn purged_ids_round_trip_through_the_snapshot_meta() {
        for id in [log_id(0, 0, 0), log_id(4, 2, 20), log_id(1, u64::MAX, 7)] {
            let meta = purged_meta(&id).unwrap();
            assert_eq!(meta.index, id.index + 1);
            assert_eq!(purged_from_meta(&meta), Ok(Some(id)));
        }
        assert_eq!(purged_from_meta(&SnapshotMeta::default()), Ok(None));
        let short = SnapshotMeta {
            index: 3,
            term: 1,
            conf_state: Bytes::from_static(&[1, 2]),
        };
        assert_eq!(
            purged_from_meta(&short),
            Err(DecodeError::Truncated {
                needed: 8,
                available: 2
            })
        );
    }
}

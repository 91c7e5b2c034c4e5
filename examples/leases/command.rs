//! The commands that change the replicated state, and their encoding as log entry payloads.
//!
//! Every state change goes through the log as one of these. Reads (`Get`, `LeaseTimeToLive`,
//! `LeaseLeases`) change nothing and are served from the leader's applied state instead.
//!
//! Encoding (all integers little-endian):
//!
//! | command          | tag | body                                                    |
//! | ---------------- | --- | ------------------------------------------------------- |
//! | `LeaseGrant`     | 1   | ttl: u64 (ticks, non-zero)                              |
//! | `Put`            | 2   | lease: u64 (0 = none), key_len: u64, key, val_len: u64, value |
//! | `LeaseKeepAlive` | 3   | id: u64                                                 |
//! | `LeaseRevoke`    | 4   | id: u64                                                 |
//!
//! Keys and values are UTF-8. A payload must be consumed exactly: trailing bytes are an error.

use std::fmt;
use std::num::NonZeroU64;

const TAG_GRANT: u8 = 1;
const TAG_PUT: u8 = 2;
const TAG_KEEP_ALIVE: u8 = 3;
const TAG_REVOKE: u8 = 4;

/// A lease's id: the log index of the `LeaseGrant` entry that created it, so every node derives
/// the same id without coordination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(pub NonZeroU64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lease#{}", self.0)
    }
}

/// One replicated state change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Creates a lease that lives `ttl` ticks unless kept alive; its id is the entry's index.
    LeaseGrant {
        /// Time to live in ticks.
        ttl: NonZeroU64,
    },
    /// Sets `key` to `value`, attached to `lease` (deleted with it) if given.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The lease the key lives and dies with.
        lease: Option<LeaseId>,
    },
    /// Restarts the lease's full TTL on the leader.
    LeaseKeepAlive {
        /// The lease.
        id: LeaseId,
    },
    /// Deletes the lease and every key attached to it.
    LeaseRevoke {
        /// The lease.
        id: LeaseId,
    },
}

/// Why a payload is not a [`Command`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload ends before a field does.
    #[error("command truncated: needed {needed} bytes, {available} available")]
    Truncated {
        /// Bytes the next field needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// The first byte names no command.
    #[error("unknown command tag {0}")]
    UnknownTag(u8),
    /// A grant with a TTL of zero.
    #[error("lease TTL of zero")]
    ZeroTtl,
    /// A keep-alive or revoke of lease id 0, which no grant can create.
    #[error("lease id zero")]
    ZeroLeaseId,
    /// A key or value that is not UTF-8.
    #[error("key or value is not UTF-8")]
    NotUtf8,
    /// Bytes after the command's last field.
    #[error("{0} trailing bytes after the command")]
    TrailingBytes(usize),
}

impl Command {
    /// Encodes the command as a log entry payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Command::LeaseGrant { ttl } => {
                out.push(TAG_GRANT);
                out.extend_from_slice(&ttl.get().to_le_bytes());
            }
            Command::Put { key, value, lease } => {
                out.push(TAG_PUT);
                let lease = lease.map_or(0, |id| id.0.get());
                out.extend_from_slice(&lease.to_le_bytes());
                put_str(&mut out, key);
                put_str(&mut out, value);
            }
            Command::LeaseKeepAlive { id } => {
                out.push(TAG_KEEP_ALIVE);
                out.extend_from_slice(&id.0.get().to_le_bytes());
            }
            Command::LeaseRevoke { id } => {
                out.push(TAG_REVOKE);
                out.extend_from_slice(&id.0.get().to_le_bytes());
            }
        }
        out
    }

    /// Decodes a payload written by [`Command::encode`].
    ///
    /// # Errors
    /// A [`DecodeError`] for any payload `encode` cannot produce; never panics.
    pub fn decode(payload: &[u8]) -> Result<Command, DecodeError> {
        let mut r = Reader(payload);
        let command = match r.u8()? {
            TAG_GRANT => Command::LeaseGrant {
                ttl: NonZeroU64::new(r.u64()?).ok_or(DecodeError::ZeroTtl)?,
            },
            TAG_PUT => {
                let lease = NonZeroU64::new(r.u64()?).map(LeaseId);
                let key = r.str()?;
                let value = r.str()?;
                Command::Put { key, value, lease }
            }
            TAG_KEEP_ALIVE => Command::LeaseKeepAlive { id: r.lease_id()? },
            TAG_REVOKE => Command::LeaseRevoke { id: r.lease_id()? },
            tag => return Err(DecodeError::UnknownTag(tag)),
        };
        match r.0.len() {
            0 => Ok(command),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A cursor over a payload that fails with [`DecodeError::Truncated`] instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn truncated(&self, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            needed,
            available: self.0.len(),
        }
    }

    fn take(&mut self, needed: usize) -> Result<&'a [u8], DecodeError> {
        let (head, rest) = self
            .0
            .split_at_checked(needed)
            .ok_or_else(|| self.truncated(needed))?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| self.truncated(N))?;
        self.0 = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn lease_id(&mut self) -> Result<LeaseId, DecodeError> {
        NonZeroU64::new(self.u64()?)
            .map(LeaseId)
            .ok_or(DecodeError::ZeroLeaseId)
    }

    fn str(&mut self) -> Result<String, DecodeError> {
        let len = u64::from_le_bytes(self.array()?);
        let bytes = self.take(usize::try_from(len).unwrap_or(usize::MAX))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> LeaseId {
        LeaseId(NonZeroU64::new(n).unwrap())
    }

    #[test]
    fn every_command_round_trips() {
        let commands = [
            Command::LeaseGrant {
                ttl: NonZeroU64::new(30).unwrap(),
            },
            Command::Put {
                key: "k".into(),
                value: "välue".into(),
                lease: Some(id(7)),
            },
            Command::Put {
                key: String::new(),
                value: String::new(),
                lease: None,
            },
            Command::LeaseKeepAlive { id: id(u64::MAX) },
            Command::LeaseRevoke { id: id(1) },
        ];
        for c in commands {
            assert_eq!(Command::decode(&c.encode()), Ok(c.clone()), "{c:?}");
        }
    }

    #[test]
    fn malformed_payloads_are_typed_errors() {
        let put = Command::Put {
            key: "key".into(),
            value: "value".into(),
            lease: None,
        }
        .encode();
        let mut trailing = Command::LeaseRevoke { id: id(3) }.encode();
        trailing.push(0);
        let mut bad_utf8 = put.clone();
        let key_at = 1 + 8 + 8;
        bad_utf8[key_at] = 0xff;
        // (payload, expected error)
        let cases: [(&[u8], DecodeError); 8] = [
            (
                &[],
                DecodeError::Truncated {
                    needed: 1,
                    available: 0,
                },
            ),
            (&[9], DecodeError::UnknownTag(9)),
            (&[TAG_GRANT, 0, 0, 0, 0, 0, 0, 0, 0], DecodeError::ZeroTtl),
            (
                &[TAG_REVOKE, 0, 0, 0, 0, 0, 0, 0, 0],
                DecodeError::ZeroLeaseId,
            ),
            (
                &[TAG_KEEP_ALIVE, 1, 0],
                DecodeError::Truncated {
                    needed: 8,
                    available: 2,
                },
            ),
            (
                &put[..put.len() - 1],
                DecodeError::Truncated {
                    needed: 5,
                    available: 4,
                },
            ),
            (&bad_utf8, DecodeError::NotUtf8),
            (&trailing, DecodeError::TrailingBytes(1)),
        ];
        for (payload, want) in cases {
            assert_eq!(Command::decode(payload), Err(want), "{payload:?}");
        }
    }

    #[test]
    fn no_prefix_of_a_command_decodes() {
        let put = Command::Put {
            key: "abc".into(),
            value: "xyz".into(),
            lease: Some(id(2)),
        }
        .encode();
        for cut in 0..put.len() {
            assert!(
                Command::decode(&put[..cut]).is_err(),
                "prefix of {cut} bytes"
            );
        }
    }
}

//! The replicated state machine: a key-value map whose keys may live and die with a lease.
//!
//! Every node applies the same committed entries in the same order and so holds the same
//! state. Applying is deterministic and total: a payload that is not a command, or a command
//! naming a lease that does not exist, is skipped the same way on every node.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use crate::command::{Command, DecodeError, LeaseId};
use crate::lease::{Lease, LeaseTable};

/// A key's value and the lease it is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The value.
    pub value: String,
    /// The lease whose revocation deletes the key.
    pub lease: Option<LeaseId>,
}

/// What applying one entry did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// An empty entry (a new leader's first entry): nothing to do.
    Empty,
    /// A lease was created.
    Granted {
        /// Its id (the entry's index).
        id: LeaseId,
        /// Its TTL.
        ttl: NonZeroU64,
    },
    /// A key was set.
    Put {
        /// The key.
        key: String,
        /// The lease it is now attached to.
        lease: Option<LeaseId>,
    },
    /// A lease's TTL was restarted.
    KeptAlive {
        /// The lease.
        id: LeaseId,
        /// Its full TTL.
        ttl: NonZeroU64,
    },
    /// A lease and its keys were deleted.
    Revoked {
        /// The lease.
        id: LeaseId,
        /// The keys deleted with it, in order.
        keys: Vec<String>,
    },
    /// The command named a lease that does not exist (never granted, or already revoked).
    LeaseNotFound(LeaseId),
    /// The payload is not a command.
    Malformed(DecodeError),
}

/// The key-value map and the lease table, kept consistent with each other.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    /// Keys and values.
    /// Invariant: a key has `lease: Some(id)` exactly when `leases[id].keys` contains it.
    kv: BTreeMap<String, Value>,
    /// Every live lease.
    leases: LeaseTable,
    /// Index of the last applied entry; 0 before the first.
    applied: u64,
}

impl StateMachine {
    /// Applies the entry at `index` carrying `payload`.
    ///
    /// # Panics
    /// In debug builds, if `index` is not `applied + 1` (the consensus loop's bug, not input).
    pub fn apply(&mut self, index: u64, payload: &[u8]) -> Applied {
        debug_assert_eq!(index, self.applied + 1, "entries are applied in order");
        self.applied = index;
        if payload.is_empty() {
            return Applied::Empty;
        }
        let applied = match Command::decode(payload) {
            Ok(command) => self.apply_command(index, command),
            Err(e) => Applied::Malformed(e),
        };
        self.check_invariants();
        applied
    }

    fn apply_command(&mut self, index: u64, command: Command) -> Applied {
        match command {
            Command::LeaseGrant { ttl } => {
                let id =
                    LeaseId(NonZeroU64::new(index).expect("apply checked index > applied >= 0"));
                self.leases.grant(id, ttl);
                Applied::Granted { id, ttl }
            }
            Command::Put { key, value, lease } => {
                if let Some(id) = lease
                    && !self.leases.attach(id, &key)
                {
                    return Applied::LeaseNotFound(id);
                }
                let old = self.kv.insert(key.clone(), Value { value, lease });
                if let Some(old_lease) = old.and_then(|v| v.lease).filter(|&l| Some(l) != lease) {
                    self.leases.detach(old_lease, &key);
                }
                Applied::Put { key, lease }
            }
            Command::LeaseKeepAlive { id } => match self.leases.get(id) {
                Some(lease) => Applied::KeptAlive { id, ttl: lease.ttl },
                None => Applied::LeaseNotFound(id),
            },
            Command::LeaseRevoke { id } => match self.leases.revoke(id) {
                Some(Lease { keys, .. }) => {
                    for key in &keys {
                        self.kv.remove(key);
                    }
                    let keys = keys.into_iter().collect();
                    Applied::Revoked { id, keys }
                }
                None => Applied::LeaseNotFound(id),
            },
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kv.get(key)
    }

    /// The lease table.
    pub fn leases(&self) -> &LeaseTable {
        &self.leases
    }

    /// Index of the last applied entry.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// How many keys there are.
    pub fn key_count(&self) -> usize {
        self.kv.len()
    }

    fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            for (key, value) in &self.kv {
                if let Some(id) = value.lease {
                    let lease = self.leases.get(id).expect("a key's lease exists");
                    assert!(lease.keys.contains(key), "{id} does not list {key}");
                }
            }
            for (id, lease) in self.leases.iter() {
                for key in &lease.keys {
                    let lease_of_key = self.kv.get(key).and_then(|v| v.lease);
                    assert_eq!(lease_of_key, Some(id), "{id} lists {key}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttl(n: u64) -> NonZeroU64 {
        NonZeroU64::new(n).unwrap()
    }

    /// Applies `commands` as entries 1, 2, ... and returns what each did.
    fn run(sm: &mut StateMachine, commands: &[Command]) -> Vec<Applied> {
        commands
            .iter()
            .map(|c| sm.apply(sm.applied() + 1, &c.encode()))
            .collect()
    }

    fn grant(n: u64) -> Command {
        Command::LeaseGrant { ttl: ttl(n) }
    }

    fn put(key: &str, lease: Option<LeaseId>) -> Command {
        Command::Put {
            key: key.into(),
            value: format!("v-{key}"),
            lease,
        }
    }

    fn lease(index: u64) -> LeaseId {
        LeaseId(NonZeroU64::new(index).unwrap())
    }

    #[test]
    fn a_lease_id_is_its_grant_entry_index() {
        let mut sm = StateMachine::default();
        let out = run(&mut sm, &[put("a", None), grant(10), grant(20)]);
        assert_eq!(
            out[1],
            Applied::Granted {
                id: lease(2),
                ttl: ttl(10)
            }
        );
        assert_eq!(
            out[2],
            Applied::Granted {
                id: lease(3),
                ttl: ttl(20)
            }
        );
        assert_eq!(sm.leases().get(lease(3)).map(|l| l.ttl), Some(ttl(20)));
    }

    #[test]
    fn revoke_deletes_exactly_the_attached_keys() {
        let mut sm = StateMachine::default();
        let l1 = lease(1);
        let l2 = lease(2);
        let out = run(
            &mut sm,
            &[
                grant(10),
                grant(10),
                put("a", Some(l1)),
                put("b", Some(l1)),
                put("c", Some(l2)),
                put("d", None),
                Command::LeaseRevoke { id: l1 },
            ],
        );
        let keys = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(out[6], Applied::Revoked { id: l1, keys });
        assert!(sm.get("a").is_none() && sm.get("b").is_none());
        assert_eq!(sm.get("c").map(|v| v.lease), Some(Some(l2)));
        assert_eq!(sm.get("d").map(|v| v.lease), Some(None));
        assert!(sm.leases().get(l1).is_none());
        assert_eq!(sm.key_count(), 2);
    }

    #[test]
    fn a_put_moves_its_key_to_the_new_lease() {
        let mut sm = StateMachine::default();
        let (l1, l2) = (lease(1), lease(2));
        run(
            &mut sm,
            &[grant(5), grant(5), put("k", Some(l1)), put("k", Some(l2))],
        );
        assert!(sm.leases().get(l1).unwrap().keys.is_empty());
        run(&mut sm, &[Command::LeaseRevoke { id: l1 }]);
        assert!(
            sm.get("k").is_some(),
            "revoking the old lease keeps the key"
        );
        run(&mut sm, &[put("k", None), Command::LeaseRevoke { id: l2 }]);
        assert!(
            sm.get("k").is_some(),
            "a put without a lease detaches the key"
        );
    }

    #[test]
    fn commands_on_a_missing_lease_change_nothing_but_the_applied_index() {
        let mut sm = StateMachine::default();
        run(&mut sm, &[grant(5), put("k", Some(lease(1)))]);
        let before = sm.clone();
        let ghost = lease(99);
        let out = run(
            &mut sm,
            &[
                put("k", Some(ghost)),
                put("new", Some(ghost)),
                Command::LeaseKeepAlive { id: ghost },
                Command::LeaseRevoke { id: ghost },
            ],
        );
        assert!(
            out.iter().all(|a| *a == Applied::LeaseNotFound(ghost)),
            "{out:?}"
        );
        assert_eq!(sm.applied(), before.applied() + 4);
        assert_eq!((&sm.kv, &sm.leases), (&before.kv, &before.leases));
    }

    #[test]
    fn malformed_and_empty_entries_are_skipped_in_order() {
        let mut sm = StateMachine::default();
        assert_eq!(sm.apply(1, &[]), Applied::Empty);
        assert_eq!(
            sm.apply(2, &[42]),
            Applied::Malformed(DecodeError::UnknownTag(42))
        );
        assert_eq!(sm.applied(), 2);
        assert_eq!(sm.key_count() + sm.leases().len(), 0);
    }

    #[test]
    fn keep_alive_reports_the_full_ttl() {
        let mut sm = StateMachine::default();
        let out = run(
            &mut sm,
            &[grant(7), Command::LeaseKeepAlive { id: lease(1) }],
        );
        assert_eq!(
            out[1],
            Applied::KeptAlive {
                id: lease(1),
                ttl: ttl(7)
            }
        );
    }
}

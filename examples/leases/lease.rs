//! The replicated lease table: every node holds every lease, without deadlines.

use std::collections::{BTreeMap, BTreeSet};
use std::num::NonZeroU64;

use crate::command::LeaseId;

/// One lease as every node holds it. The deadline is not here: only the leader tracks time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The full time to live in ticks, restarted by each keep-alive.
    pub ttl: NonZeroU64,
    /// The keys deleted with the lease.
    pub keys: BTreeSet<String>,
}

/// Leases by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseTable {
    leases: BTreeMap<LeaseId, Lease>,
}

impl LeaseTable {
    /// Adds a lease with no keys. Returns false, changing nothing, if `id` exists.
    pub fn grant(&mut self, id: LeaseId, ttl: NonZeroU64) -> bool {
        if self.leases.contains_key(&id) {
            return false;
        }
        let lease = Lease {
            ttl,
            keys: BTreeSet::new(),
        };
        self.leases.insert(id, lease);
        true
    }

    /// The lease `id`.
    pub fn get(&self, id: LeaseId) -> Option<&Lease> {
        self.leases.get(&id)
    }

    /// Attaches `key` to lease `id`. Returns false if there is no such lease.
    pub fn attach(&mut self, id: LeaseId, key: &str) -> bool {
        let Some(lease) = self.leases.get_mut(&id) else {
            return false;
        };
        lease.keys.insert(key.to_owned());
        true
    }

    /// Detaches `key` from lease `id`, if both exist.
    pub fn detach(&mut self, id: LeaseId, key: &str) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.remove(key);
        }
    }

    /// Removes lease `id` and returns it.
    pub fn revoke(&mut self, id: LeaseId) -> Option<Lease> {
        self.leases.remove(&id)
    }

    /// Every lease, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (LeaseId, &Lease)> {
        self.leases.iter().map(|(&id, lease)| (id, lease))
    }

    /// How many leases there are.
    pub fn len(&self) -> usize {
        self.leases.len()
    }
}

//! The leader's lease deadlines, in ZooKeeper's bucketed expiry queue.
//!
//! A deadline is rounded up to the next multiple of the bucket interval, so all the leases
//! that end within one interval share a bucket: a keep-alive moves a lease between two buckets in
//! O(1), and one tick expires a whole bucket at once. Rounding up means a lease never ends
//! early; it may outlive its TTL by at most `interval - 1` ticks.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU64;

use crate::command::LeaseId;

/// Lease deadlines in buckets of `interval` ticks. Time is a logical tick count that only grows.
#[derive(Debug)]
pub struct ExpiryQueue {
    /// Width of a bucket in ticks.
    interval: NonZeroU64,
    /// Bucket deadline → the leases that expire at it.
    /// Invariant: every key is a multiple of `interval`, `>= next`, and its set is not empty.
    buckets: HashMap<u64, HashSet<LeaseId>>,
    /// Each queued lease's bucket deadline.
    /// Invariant: `id` is in `buckets[deadline_of[id]]` and in no other bucket.
    deadline_of: HashMap<LeaseId, u64>,
    /// The earliest bucket [`ExpiryQueue::expire`] has not yet emptied. Moved only by `expire`.
    /// Invariant: a multiple of `interval`, greater than the last `now` passed to `expire` (until
    /// the clock reaches its last bucket).
    next: u64,
}

impl ExpiryQueue {
    /// An empty queue with buckets `interval` ticks wide, starting at tick `now`.
    pub fn new(interval: NonZeroU64, now: u64) -> Self {
        Self {
            interval,
            buckets: HashMap::new(),
            deadline_of: HashMap::new(),
            next: round_up(now.saturating_add(1), interval),
        }
    }

    /// Sets `id` to expire `ttl` ticks after `now` (rounded up to its bucket), moving it out of
    /// any bucket it was in. Returns the bucket deadline.
    pub fn touch(&mut self, id: LeaseId, now: u64, ttl: NonZeroU64) -> u64 {
        // NB: `max` keeps a caller that passes a stale `now` from filing into an emptied bucket.
        let deadline = round_up(now.saturating_add(ttl.get()), self.interval).max(self.next);
        if let Some(old) = self.deadline_of.insert(id, deadline) {
            self.take_from_bucket(id, old);
        }
        self.buckets.entry(deadline).or_default().insert(id);
        self.check_invariants();
        deadline
    }

    /// Forgets `id` (revoked). Returns whether it was queued.
    pub fn remove(&mut self, id: LeaseId) -> bool {
        let queued = match self.deadline_of.remove(&id) {
            Some(deadline) => {
                self.take_from_bucket(id, deadline);
                true
            }
            None => false,
        };
        self.check_invariants();
        queued
    }

    /// Removes and returns, sorted, every lease whose bucket deadline is at or before `now`.
    ///
    /// Cost: one step per bucket interval since the previous call, plus the expired leases.
    pub fn expire(&mut self, now: u64) -> Vec<LeaseId> {
        let mut expired = Vec::new();
        while self.next <= now && !self.buckets.is_empty() {
            if let Some(bucket) = self.buckets.remove(&self.next) {
                for id in &bucket {
                    self.deadline_of.remove(id);
                }
                expired.extend(bucket);
            }
            match self.next.checked_add(self.interval.get()) {
                Some(next) => self.next = next,
                None => break, // the last bucket of the clock's range
            }
        }
        if self.next <= now {
            // Nothing is queued: skip the empty buckets in one step.
            self.next = round_up(now.saturating_add(1), self.interval);
        }
        expired.sort_unstable();
        self.check_invariants();
        expired
    }

    /// The bucket deadline of `id`, if it is queued.
    pub fn deadline(&self, id: LeaseId) -> Option<u64> {
        self.deadline_of.get(&id).copied()
    }

    fn take_from_bucket(&mut self, id: LeaseId, deadline: u64) {
        if let Some(bucket) = self.buckets.get_mut(&deadline) {
            bucket.remove(&id);
            if bucket.is_empty() {
                self.buckets.remove(&deadline);
            }
        }
    }

    fn check_invariants(&self) {
        if cfg!(debug_assertions) {
            let step = self.interval.get();
            assert_eq!(self.next % step, 0, "next bucket off the grid");
            for (&deadline, bucket) in &self.buckets {
                assert!(deadline % step == 0 && deadline >= self.next && !bucket.is_empty());
                assert!(
                    bucket
                        .iter()
                        .all(|id| self.deadline_of.get(id) == Some(&deadline))
                );
            }
            let queued: usize = self.buckets.values().map(HashSet::len).sum();
            assert_eq!(
                queued,
                self.deadline_of.len(),
                "a lease in two buckets or none"
            );
        }
    }
}

/// The smallest multiple of `interval` that is `>= t`, or the largest multiple there is.
fn round_up(t: u64, interval: NonZeroU64) -> u64 {
    let step = interval.get();
    t.div_ceil(step)
        .checked_mul(step)
        .unwrap_or(u64::MAX / step * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> LeaseId {
        LeaseId(NonZeroU64::new(n).unwrap())
    }

    fn nz(n: u64) -> NonZeroU64 {
        NonZeroU64::new(n).unwrap()
    }

    #[test]
    fn deadlines_round_up_to_the_bucket_grid() {
        // (interval, now, ttl, bucket deadline)
        let cases = [
            (5, 0, 1, 5),
            (5, 0, 5, 5),
            (5, 0, 6, 10),
            (5, 3, 2, 5),
            (5, 3, 3, 10),
            (5, 9, 1, 10),
            (1, 7, 3, 10),
            (10, 0, 95, 100),
            (10, u64::MAX - 2, 10, u64::MAX / 10 * 10),
        ];
        for (interval, now, ttl, want) in cases {
            let mut q = ExpiryQueue::new(nz(interval), now);
            assert_eq!(
                q.touch(id(1), now, nz(ttl)),
                want,
                "interval {interval} now {now} ttl {ttl}"
            );
            assert_eq!(q.deadline(id(1)), Some(want));
        }
    }

    #[test]
    fn touch_moves_a_lease_to_its_new_bucket() {
        let mut q = ExpiryQueue::new(nz(5), 0);
        assert_eq!(q.touch(id(1), 0, nz(5)), 5);
        assert_eq!(q.touch(id(1), 3, nz(5)), 10);
        assert_eq!(q.buckets.len(), 1, "the old bucket is gone");
        assert_eq!(
            q.expire(5),
            Vec::<LeaseId>::new(),
            "no longer in the old bucket"
        );
        assert_eq!(q.expire(9), Vec::<LeaseId>::new());
        assert_eq!(q.expire(10), vec![id(1)]);
        assert_eq!(q.deadline(id(1)), None);
    }

    #[test]
    fn one_tick_expires_a_whole_bucket() {
        let mut q = ExpiryQueue::new(nz(5), 0);
        for (lease, ttl) in [(1, 6), (2, 7), (3, 10), (4, 11)] {
            q.touch(id(lease), 0, nz(ttl));
        }
        // (tick, expired at that tick)
        let cases = [
            (9, vec![]),
            (10, vec![id(1), id(2), id(3)]),
            (14, vec![]),
            (15, vec![id(4)]),
        ];
        for (now, want) in cases {
            assert_eq!(q.expire(now), want, "tick {now}");
        }
    }

    #[test]
    fn a_late_tick_expires_every_bucket_it_passed() {
        let mut q = ExpiryQueue::new(nz(4), 0);
        for (lease, ttl) in [(3, 30), (1, 2), (2, 13), (4, 100)] {
            q.touch(id(lease), 0, nz(ttl));
        }
        assert_eq!(q.expire(50), vec![id(1), id(2), id(3)]);
        assert_eq!(q.deadline(id(4)), Some(100));
        assert_eq!(q.expire(1000), vec![id(4)]);
        // An idle queue jumps ahead: a lease touched now still gets a future bucket.
        assert_eq!(q.touch(id(5), 1000, nz(1)), 1004);
        assert_eq!(q.expire(1003), Vec::<LeaseId>::new());
        assert_eq!(q.expire(1004), vec![id(5)]);
    }

    #[test]
    fn removed_leases_never_expire() {
        let mut q = ExpiryQueue::new(nz(5), 0);
        q.touch(id(1), 0, nz(5));
        q.touch(id(2), 0, nz(5));
        assert!(q.remove(id(1)));
        assert!(!q.remove(id(1)), "removing twice reports it was not queued");
        assert_eq!(q.expire(5), vec![id(2)]);
        assert!(!q.remove(id(2)), "expired leases are no longer queued");
    }

    #[test]
    fn a_stale_now_never_files_into_an_emptied_bucket() {
        let mut q = ExpiryQueue::new(nz(5), 0);
        assert_eq!(q.expire(12), Vec::<LeaseId>::new());
        assert_eq!(q.touch(id(1), 2, nz(1)), 15);
        assert_eq!(q.expire(15), vec![id(1)]);
    }
}

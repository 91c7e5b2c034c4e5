//! A model-based driver for the log layer: random (or fuzzer-chosen) sequences of append,
//! maybe_append, term change, commit, Ready/accept/submit, durability, delayed and reordered
//! acks, apply, restore and compaction, run against a naive model of what the log must hold.
//! Shared by `tests/log_model.rs` and the `log_model` fuzz target.

use std::collections::VecDeque;
use std::sync::Arc;

use std::path::Path;

use raftwal::{
    DiskStorage, Entry, EntryId, LogConfig, LogWriter, MemStorage, Options, PersistAck, Pipeline,
    RaftLog, Storage, Wal, entries_size,
};

use super::{HeldWriter, snap};

/// A deterministic pseudo-random byte source (SplitMix64), so a failing seed replays.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
}

impl Iterator for SplitMix {
    type Item = u8;
    fn next(&mut self) -> Option<u8> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Some((z ^ (z >> 31)) as u8)
    }
}

/// What the log must hold: the log from the last snapshot on, and the commit index.
#[derive(Debug, Default)]
struct Model {
    /// The last snapshot restored (0@0 at the start).
    snap: EntryId,
    /// `terms[k]` is the term of entry `snap.index + 1 + k`.
    terms: Vec<u64>,
    committed: u64,
    /// The last index handed out for applying (or covered by a durable snapshot).
    applied_upto: u64,
}

impl Model {
    fn last(&self) -> u64 {
        self.snap.index + self.terms.len() as u64
    }

    fn term(&self, index: u64) -> Option<u64> {
        match index.checked_sub(self.snap.index) {
            Some(0) => Some(self.snap.term),
            Some(k) => self.terms.get(k as usize - 1).copied(),
            None => None,
        }
    }

    /// A follower's append: entries that match are kept, from the first mismatch on the
    /// tail is replaced.
    fn merge(&mut self, ents: &[Entry]) {
        for (k, e) in ents.iter().enumerate() {
            if self.term(e.index) != Some(e.term) {
                self.terms
                    .truncate((e.index - self.snap.index - 1) as usize);
                self.terms.extend(ents[k..].iter().map(|e| e.term));
                return;
            }
        }
    }
}

/// Makes the oldest `n` writes durable (a no-op for writers that sync on their own).
pub type Release<W> = Box<dyn Fn(&W, usize)>;
/// Compacts the storage up to an index.
pub type Compact<S> = Box<dyn Fn(&S, u64)>;

/// The log under test with its pipeline, and the model it must agree with.
pub struct Harness<S: Storage, W: LogWriter> {
    log: RaftLog<S>,
    pipeline: Pipeline<W>,
    /// Makes the oldest `n` writes durable (a no-op for writers that sync on their own).
    release: Release<W>,
    /// Compacts the storage up to an index (optional per backend).
    compact: Compact<S>,
    model: Model,
    /// Acks taken from the pipeline and not yet delivered: delivered in any order.
    held: Vec<PersistAck>,
    /// Apply batches handed out and not yet acknowledged: (last index, bytes).
    applying: VecDeque<(u64, u64)>,
    steps: usize,
}

/// Asynchronous writes, and an apply budget small enough to page committed entries.
const CONFIG: LogConfig = LogConfig {
    max_applying_size: 4 * 1024,
    async_storage_writes: true,
};

/// A harness over `MemStorage` whose durability the driver controls.
pub fn mem_harness() -> Harness<MemStorage, HeldWriter> {
    let storage = MemStorage::new();
    Harness::new(
        RaftLog::with_config(storage.clone(), CONFIG).unwrap(),
        Pipeline::new(Arc::new(HeldWriter::new(storage))),
        Box::new(|w: &HeldWriter, n| {
            w.release(n);
        }),
        Box::new(|s: &MemStorage, index| {
            // Compaction below the compaction point is a typed error; the driver ignores it.
            let _ = s.compact(index);
        }),
    )
}

/// A harness over a real WAL in `dir`: writes sync in the background, so acks arrive when
/// they will; the driver still delays and reorders their delivery.
pub fn disk_harness(dir: &Path) -> Harness<DiskStorage, Wal> {
    let mut options = Options::default();
    options.segment_size = 64 << 10; // rotate often
    let wal = Arc::new(Wal::open(dir, options).unwrap().0);
    Harness::new(
        RaftLog::with_config(DiskStorage::new(Arc::clone(&wal)), CONFIG).unwrap(),
        Pipeline::new(wal),
        Box::new(|_: &Wal, _| {}),
        Box::new(|s: &DiskStorage, index| {
            if index >= s.first_index().unwrap()
                && let Ok(term) = s.term(index)
            {
                s.wal().purge_to(EntryId::new(term, index)).unwrap();
            }
        }),
    )
}

impl<S: Storage, W: LogWriter> Harness<S, W> {
    pub fn new(
        log: RaftLog<S>,
        pipeline: Pipeline<W>,
        release: Release<W>,
        compact: Compact<S>,
    ) -> Self {
        let mut model = Model::default();
        model.snap = EntryId::new(
            log.term(log.first_index().unwrap() - 1).unwrap(),
            log.first_index().unwrap() - 1,
        );
        model.terms = (model.snap.index + 1..=log.last_index().unwrap())
            .map(|i| log.term(i).unwrap())
            .collect();
        model.committed = log.committed();
        model.applied_upto = log.applying();
        Self {
            log,
            pipeline,
            release,
            compact,
            model,
            held: Vec::new(),
            applying: VecDeque::new(),
            steps: 0,
        }
    }

    /// Runs the operations `bytes` encode, checking after each, then drains everything and
    /// checks that storage holds exactly the model's log. Returns the final applied index.
    pub fn run(&mut self, bytes: impl IntoIterator<Item = u8>) -> u64 {
        let mut bytes = bytes.into_iter();
        while let (Some(op), Some(arg)) = (bytes.next(), bytes.next()) {
            self.step(op, arg);
            self.check();
        }
        self.quiesce();
        self.log.applied()
    }

    fn term(&self) -> u64 {
        self.log.hard_state().term
    }

    fn step(&mut self, op: u8, arg: u8) {
        self.steps += 1;
        let arg = u64::from(arg);
        if std::env::var("MODEL_TRACE").is_ok() {
            let u = self.log.unstable();
            eprintln!(
                "step {} op {} arg {arg} u=({},{},{},{:?},{}) committed {} term {} held {:?} st_last {}",
                self.steps,
                op % 11,
                u.offset(),
                u.offset_in_progress(),
                u.entries().len(),
                u.snapshot().map(|s| s.meta.index),
                u.snapshot_in_progress(),
                self.log.committed(),
                self.term(),
                self.held,
                self.log.storage().last_index().unwrap()
            );
        }
        let last = self.model.last();
        match op % 11 {
            0 | 1 => {
                // Leader append at the current term.
                if self.term() == 0 {
                    self.log.set_term_vote(1, 1).unwrap();
                }
                let t = self.term();
                let ents: Vec<Entry> = (last + 1..=last + 1 + arg % 3)
                    .map(|i| Entry::new(i, t, vec![0u8; (arg as usize * 37) % 1500]))
                    .collect();
                assert_eq!(self.log.append(&ents).unwrap(), ents.last().unwrap().index);
                self.model.merge(&ents);
            }
            2 | 3 => {
                // Follower append after a prefix at or above the commit index.
                if self.term() == 0 {
                    self.log.set_term_vote(1, 0).unwrap();
                }
                let c = self.model.committed;
                let p = c + arg % (last - c + 1);
                let prev = EntryId::new(self.model.term(p).unwrap(), p);
                let mut t = self.term();
                let n = (arg / 3) % 3;
                // Raft: only a leader of a higher term replaces entries. If these would
                // replace an entry of the current term, they come from the next term's leader.
                let conflicts = (p + 1..=(p + n).min(last)).any(|i| self.model.term(i) != Some(t));
                if n > 0 && p < last && conflicts {
                    t += 1;
                    self.log.set_term_vote(t, 0).unwrap();
                }
                let ents: Vec<Entry> = (p + 1..p + 1 + n).map(|i| Entry::new(i, t, "x")).collect();
                let commit = p + arg % 4;
                let got = self.log.maybe_append(prev, commit, &ents).unwrap();
                assert_eq!(got, Some(p + ents.len() as u64));
                self.model.merge(&ents);
                self.model.committed = self.model.committed.max(commit.min(p + ents.len() as u64));
            }
            4 => {
                let (t, vote) = (self.term() + 1, arg % 3);
                self.log.set_term_vote(t, vote).unwrap();
            }
            5 => {
                let c = self.model.committed;
                let to = c + arg % (last - c + 1);
                self.log.commit_to(to).unwrap();
                self.model.committed = to;
            }
            6 => self.issue(),
            7 => {
                (self.release)(self.pipeline.writer(), 1 + arg as usize % 3);
                self.held.extend(self.pipeline.completed().unwrap());
            }
            8 => {
                if !self.held.is_empty() {
                    let ack = self.held.remove(arg as usize % self.held.len());
                    self.deliver(&ack);
                }
            }
            9 => {
                if let Some((index, size)) = self.applying.pop_front() {
                    let index = index.max(self.log.applied());
                    self.log.applied_to(index, size).unwrap();
                }
                let applied = self.log.applied();
                if arg % 2 == 0 && applied > 0 {
                    (self.compact)(self.log.storage(), applied.saturating_sub(arg % 3));
                }
            }
            _ => {
                // A snapshot from the leader beyond the commit index.
                let index = (last + arg % 3).max(self.model.committed + 1);
                let t = self.term().max(1);
                self.log.set_term_vote(t, 0).ok();
                self.log.restore(snap(index, t)).unwrap();
                self.model.snap = EntryId::new(t, index);
                self.model.terms.clear();
                self.model.committed = index;
            }
        }
    }

    /// Takes, checks, accepts and submits the next Ready.
    fn issue(&mut self) {
        if !self.log.has_ready() {
            return;
        }
        let rd = self.log.ready_without_accept().unwrap();
        let committed = rd.committed_entries();
        if let Some(first) = committed.first() {
            assert_eq!(
                first.index,
                self.model.applied_upto + 1,
                "applies continue, no gap"
            );
            for e in committed {
                assert_eq!(
                    Some(e.term),
                    self.model.term(e.index),
                    "applies the model's entry"
                );
                assert!(
                    e.index <= self.model.committed,
                    "applies only committed entries"
                );
                assert!(
                    e.index < self.log.unstable().offset(),
                    "applies only durable entries"
                );
            }
            let last = committed.last().unwrap().index;
            self.model.applied_upto = last;
            self.applying.push_back((last, entries_size(committed)));
        }
        self.log.accept_ready(&rd).unwrap();
        self.pipeline.submit(rd.persist_part()).unwrap();
    }

    fn deliver(&mut self, ack: &PersistAck) {
        self.log.on_persisted(ack).unwrap();
        if let Some(s) = ack.snapshot {
            self.model.applied_upto = self.model.applied_upto.max(s.index);
        }
    }

    /// The invariants and the log's view against the model.
    fn check(&self) {
        let (log, u) = (&self.log, self.log.unstable());
        let last = log.last_index().unwrap();
        assert!(log.applied() <= log.applying(), "step {}", self.steps);
        assert!(log.applying() <= log.committed(), "step {}", self.steps);
        assert!(log.committed() <= last, "step {}", self.steps);
        let end = u.offset() + u.entries().len() as u64;
        assert!(u.offset() <= u.offset_in_progress() && u.offset_in_progress() <= end);
        assert_eq!(
            (last, log.committed()),
            (self.model.last(), self.model.committed),
            "step {}",
            self.steps
        );
        for i in log.first_index().unwrap() - 1..=last {
            assert_eq!(
                Some(log.term(i).unwrap()),
                self.model.term(i),
                "term({i}) at step {}",
                self.steps
            );
        }
    }

    /// Issues, syncs and delivers everything, then checks nothing is left in memory only and
    /// the storage holds exactly the model's log.
    fn quiesce(&mut self) {
        // Each round hands out at least one committed entry, so this many rounds are enough.
        let rounds = self.model.last() - self.log.applied() + 8;
        for _ in 0..rounds {
            self.issue();
            (self.release)(self.pipeline.writer(), usize::MAX);
            while self.pipeline.in_flight() > 0 {
                self.held.extend(self.pipeline.wait_completed().unwrap());
            }
            self.held.extend(self.pipeline.completed().unwrap());
            for ack in std::mem::take(&mut self.held) {
                self.deliver(&ack);
            }
            while let Some((index, size)) = self.applying.pop_front() {
                let index = index.max(self.log.applied());
                self.log.applied_to(index, size).unwrap();
            }
            self.check();
            if !self.log.has_ready() {
                break;
            }
        }
        let u = self.log.unstable();
        assert!(
            u.entries().is_empty() && u.snapshot().is_none(),
            "everything became stable"
        );
        assert_eq!(
            self.log.applied(),
            self.model.committed,
            "everything committed is applied"
        );
        let storage = self.log.storage();
        assert_eq!(storage.last_index().unwrap(), self.model.last());
        for i in storage.first_index().unwrap() - 1..=self.model.last() {
            assert_eq!(
                Some(storage.term(i).unwrap()),
                self.model.term(i),
                "stored term({i})"
            );
        }
    }
}

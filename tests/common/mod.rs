//! Shared by the crash, corruption, fault and fuzz targets: a reference model of the log, a
//! seeded generator of valid workloads, a history of what was issued and acknowledged, and the
//! oracle that judges a recovered log against it.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use raftwal::fs::SimFs;
use raftwal::fs::sim::{Fault, FaultError, ImageSpec, OpKind, SimRng};
use raftwal::{Batch, Entry, EntryId, HardState, Lsn, Options, RecoveryReport, SnapshotMeta, Wal};

/// Where every simulated log lives.
pub const DIR: &str = "/log";

/// The log directory as a path.
pub fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

/// Options with tiny segments, so workloads rotate, purge and preallocate often.
pub fn small_options() -> Options {
    let mut options = Options::default();
    options.segment_size = 16 << 10;
    options.max_entry_size = 4 << 10;
    options
}

/// Options with segments so small that a workload's purges free one every few ops, and each
/// is soon recycled as a new segment.
pub fn recycling_options() -> Options {
    let mut options = small_options();
    options.segment_size = 4 << 10;
    options.max_entry_size = 1 << 10;
    options
}

/// Opens the log in [`DIR`] on `fs`.
pub fn open(fs: &SimFs, options: &Options) -> raftwal::Result<Wal> {
    open_report(fs, options).map(|(wal, _)| wal)
}

/// Opens the log in [`DIR`] on `fs`, with what recovery found.
pub fn open_report(fs: &SimFs, options: &Options) -> raftwal::Result<(Wal, RecoveryReport)> {
    Wal::open_with_fs(Arc::new(fs.clone()), DIR, options.clone())
}

/// Everything a reader can see of a log: the model the oracle compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogState {
    /// First readable index. Invariant: `entries[i].index == first_index + i`.
    pub first_index: u64,
    /// Term of `first_index - 1`, the compaction point (0 for a new log).
    pub compact_term: u64,
    /// Entries `[first_index, first_index + len)`.
    pub entries: Vec<Entry>,
    /// The last recorded hard state.
    pub hard_state: HardState,
    /// The last recorded snapshot metadata.
    pub snapshot: SnapshotMeta,
}

impl Default for LogState {
    fn default() -> Self {
        Self {
            first_index: 1,
            compact_term: 0,
            entries: Vec::new(),
            hard_state: HardState::default(),
            snapshot: SnapshotMeta::default(),
        }
    }
}

impl LogState {
    /// Reads the whole visible state of `wal` through its public API.
    pub fn read(wal: &Wal) -> raftwal::Result<Self> {
        let first_index = wal.first_index();
        let last_index = wal.last_index();
        Ok(Self {
            first_index,
            compact_term: wal.term(first_index - 1)?,
            entries: wal.entries(first_index, last_index + 1, u64::MAX)?,
            hard_state: wal.hard_state(),
            snapshot: wal.snapshot_meta(),
        })
    }

    /// Index of the last entry (the compaction point when there is none).
    pub fn last_index(&self) -> u64 {
        self.first_index + self.entries.len() as u64 - 1
    }

    /// Term of `index`, for `index` in `[first_index - 1, last_index]`.
    pub fn term(&self, index: u64) -> u64 {
        if index + 1 == self.first_index {
            return self.compact_term;
        }
        self.entries[(index - self.first_index) as usize].term
    }

    /// The last entry's term (the compaction term for an empty log).
    pub fn last_term(&self) -> u64 {
        self.term(self.last_index())
    }

    /// The state after `op`, as the WAL contract defines it.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Append(batch) => {
                if let Some(snap) = &batch.snapshot {
                    self.first_index = snap.index + 1;
                    self.compact_term = snap.term;
                    self.entries.clear();
                    self.snapshot = snap.clone();
                }
                if let Some(first) = batch.entries.first() {
                    self.truncate_after(first.index - 1);
                    self.entries.extend(batch.entries.iter().cloned());
                }
                if let Some(hs) = batch.hard_state {
                    self.hard_state = hs;
                }
            }
            Op::TruncateAfter(index) => self.truncate_after(*index),
            Op::PurgeTo(id) => {
                let drop = (id.index + 1).saturating_sub(self.first_index) as usize;
                self.entries.drain(..drop.min(self.entries.len()));
                self.first_index = id.index + 1;
                self.compact_term = id.term;
            }
            Op::SaveSnapshotMeta(meta) => self.snapshot = meta.clone(),
        }
    }

    fn truncate_after(&mut self, index: u64) {
        let keep = (index + 1).saturating_sub(self.first_index) as usize;
        self.entries.truncate(keep);
    }
}

/// One call on the WAL's write API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// [`Wal::append`].
    Append(Batch),
    /// [`Wal::truncate_after`].
    TruncateAfter(u64),
    /// [`Wal::purge_to`].
    PurgeTo(EntryId),
    /// [`Wal::save_snapshot_meta`].
    SaveSnapshotMeta(SnapshotMeta),
}

impl Op {
    /// Issues the call.
    pub fn run(&self, wal: &Wal) -> raftwal::Result<Lsn> {
        match self {
            Op::Append(batch) => wal.append(batch),
            Op::TruncateAfter(index) => wal.truncate_after(*index),
            Op::PurgeTo(id) => wal.purge_to(*id),
            Op::SaveSnapshotMeta(meta) => wal.save_snapshot_meta(meta.clone()),
        }
    }
}

/// Generates valid operations, as a Raft node would issue them: appends (some overwriting an
/// uncommitted suffix), hard states, truncations, purges, snapshot metadata and installs.
pub struct Workload {
    pub rng: SimRng,
    /// The state once every generated op is applied.
    pub state: LogState,
    /// Largest payload generated.
    pub max_payload: usize,
    /// Whether purges and snapshot installs (which drop segments) are generated.
    pub compaction: bool,
}

impl Workload {
    /// A workload fixed by `seed`.
    pub fn new(seed: u64, max_payload: usize) -> Self {
        Self {
            rng: SimRng::new(seed),
            state: LogState::default(),
            max_payload,
            compaction: true,
        }
    }

    fn payload(&mut self) -> Bytes {
        let len = match self.rng.below(20) {
            0 => self.rng.range(600, self.max_payload as u64),
            1..=5 => self.rng.range(64, 600),
            _ => self.rng.below(64),
        } as usize;
        let mut data = vec![0; len.min(self.max_payload)];
        self.rng.fill(&mut data);
        Bytes::from(data)
    }

    fn commit(&self) -> u64 {
        self.state.hard_state.commit
    }

    /// A hard state in the current term that commits up to somewhere in `[commit, last]`.
    fn hard_state(&mut self, last: u64, new_term: bool) -> HardState {
        let hs = self.state.hard_state;
        let term = hs.term.max(self.state.last_term()) + u64::from(new_term);
        HardState {
            term,
            vote: if term == hs.term {
                hs.vote
            } else {
                self.rng.range(1, 5)
            },
            commit: self.rng.range(hs.commit, last.max(hs.commit)),
        }
    }

    /// The next operation; the model is updated as if it succeeded.
    pub fn next_op(&mut self) -> Op {
        let op = self.pick();
        self.state.apply(&op);
        op
    }

    fn pick(&mut self) -> Op {
        let s = &self.state;
        let (first, last, commit) = (s.first_index, s.last_index(), self.commit());
        let roll = self.rng.below(100);
        if roll < 8 && commit < last {
            return Op::TruncateAfter(self.rng.range(commit.max(first - 1), last));
        }
        if roll < 16 && first <= commit && self.compaction {
            let index = self.rng.range(first, commit);
            return Op::PurgeTo(EntryId::new(self.state.term(index), index));
        }
        if roll < 21 && self.state.snapshot.index < commit && first <= commit {
            let index = self
                .rng
                .range(self.state.snapshot.index.max(first - 1) + 1, commit);
            let mut conf = vec![0; self.rng.below(24) as usize];
            self.rng.fill(&mut conf);
            return Op::SaveSnapshotMeta(SnapshotMeta {
                index,
                term: self.state.term(index),
                conf_state: conf.into(),
            });
        }
        let mut batch = Batch::default();
        let mut start = last + 1;
        if roll < 24 && self.compaction {
            let index = last + self.rng.range(1, 8);
            let term = self.state.hard_state.term.max(self.state.last_term()) + 1;
            batch.snapshot = Some(SnapshotMeta {
                index,
                term,
                conf_state: Bytes::from_static(b"voters:1,2,3"),
            });
            batch.hard_state = Some(HardState {
                term,
                vote: 0,
                commit: index,
            });
            start = index + 1;
        } else if roll < 32 {
            let new_term = self.rng.one_in(3);
            let hs = self.hard_state(last, new_term);
            return Op::Append(Batch {
                hard_state: Some(hs),
                ..Batch::default()
            });
        }
        let overwrite = roll < 40 && batch.snapshot.is_none() && commit.max(first) < last;
        if overwrite {
            start = self.rng.range(commit.max(first) + 1, last);
        }
        let prev_term = match &batch.snapshot {
            Some(snap) => snap.term,
            None => self.state.term(start - 1),
        };
        let term = prev_term.max(self.state.hard_state.term) + u64::from(overwrite);
        for index in start..start + self.rng.range(1, 4) {
            let data = self.payload();
            batch.entries.push(Entry::new(index, term, data));
        }
        if batch.hard_state.is_none() && self.rng.one_in(3) {
            let new_last = start + batch.entries.len() as u64 - 1;
            let mut hs = self.hard_state(new_last, false);
            hs.term = hs.term.max(term);
            batch.hard_state = Some(hs);
        }
        Op::Append(batch)
    }
}

/// What was issued and acknowledged, in operation numbers of the file system.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// `states[m]`: the log after the first `m` ops.
    pub states: Vec<LogState>,
    /// Per op: the file-system operation count when it was issued.
    pub issued_at: Vec<u64>,
    /// Per op: the count when a sync covering it returned Ok.
    pub acked_at: Vec<Option<u64>>,
    /// Per op: its ticket.
    pub lsns: Vec<Lsn>,
}

impl History {
    /// A history that starts from the empty log.
    pub fn new() -> Self {
        Self {
            states: vec![LogState::default()],
            ..Self::default()
        }
    }

    /// Records an op issued at `seq` that returned `lsn`, leaving the model at `state`.
    pub fn issued(&mut self, seq: u64, lsn: Lsn, state: &LogState) {
        self.issued_at.push(seq);
        self.acked_at.push(None);
        self.lsns.push(lsn);
        self.states.push(state.clone());
    }

    /// A sync of `lsn` returned Ok when the file system had done `seq` operations.
    pub fn synced(&mut self, lsn: Lsn, seq: u64) {
        for (acked, _) in self
            .acked_at
            .iter_mut()
            .zip(&self.lsns)
            .filter(|(a, l)| a.is_none() && **l <= lsn)
        {
            *acked = Some(seq);
        }
    }

    /// The states a crash before file-system operation `seq` may legally recover to: every
    /// acknowledged op applied, no op issued after the crash, each op whole or not at all.
    pub fn legal_after_crash_at(&self, seq: u64) -> &[LogState] {
        let acked = self
            .acked_at
            .iter()
            .rposition(|a| a.is_some_and(|at| at <= seq))
            .map_or(0, |m| m + 1);
        let started = self.issued_at.iter().take_while(|&&at| at < seq).count();
        &self.states[acked..=started.max(acked)]
    }
}

/// Judges a log opened from a crash image: `Ok` if it recovered to one of `legal`, else a
/// description of what is wrong.
pub fn judge(image: &SimFs, options: &Options, legal: &[LogState]) -> Result<LogState, String> {
    let wal = open(image, options).map_err(|e| format!("open failed: {e:?}"))?;
    let got = LogState::read(&wal).map_err(|e| format!("read failed: {e:?}"))?;
    if legal.contains(&got) {
        return Ok(got);
    }
    Err(describe_mismatch(&got, legal))
}

/// A short account of how `got` differs from the nearest legal state.
pub fn describe_mismatch(got: &LogState, legal: &[LogState]) -> String {
    let nearest = legal.last().expect("at least one legal state");
    let first_diff = got
        .entries
        .iter()
        .zip(&nearest.entries)
        .position(|(a, b)| a != b);
    format!(
        "recovered first {} last {} hs {:?} snap {:?} compact_term {}; legal {} states, the \
         newest: first {} last {} hs {:?} snap {:?} compact_term {}; first differing entry \
         position {first_diff:?}",
        got.first_index,
        got.last_index(),
        got.hard_state,
        got.snapshot.id(),
        got.compact_term,
        legal.len(),
        nearest.first_index,
        nearest.last_index(),
        nearest.hard_state,
        nearest.snapshot.id(),
        nearest.compact_term,
    )
}

/// A workload running against a log: issues ops, syncs every few, and records it all.
pub struct Driver {
    pub wal: Wal,
    pub workload: Workload,
    pub history: History,
    /// The newest ticket not yet synced.
    unsynced: Option<Lsn>,
}

impl Driver {
    /// Opens a new log on `fs` for workload `seed`.
    pub fn open(fs: &SimFs, options: &Options, seed: u64) -> raftwal::Result<Self> {
        Ok(Self {
            wal: open(fs, options)?,
            workload: Workload::new(seed, (options.max_entry_size as usize).min(3000)),
            history: History::new(),
            unsynced: None,
        })
    }

    /// Reopens the log on `fs`, which must hold `state`, to continue workload `seed` from it.
    pub fn resume(
        fs: &SimFs,
        options: &Options,
        seed: u64,
        state: LogState,
    ) -> raftwal::Result<Self> {
        let mut driver = Self::open(fs, options, seed)?;
        driver.history.states = vec![state.clone()];
        driver.workload.state = state;
        Ok(driver)
    }

    /// Issues the next op and, one time in three, syncs. An op that fails is recorded as issued
    /// (it may or may not survive a crash) and never acknowledged.
    pub fn step(&mut self, fs: &SimFs) -> raftwal::Result<()> {
        let op = self.workload.next_op();
        let seq = fs.op_count();
        let result = op.run(&self.wal);
        let lsn = *result.as_ref().unwrap_or(&Lsn(u64::MAX));
        self.history.issued(seq, lsn, &self.workload.state);
        self.unsynced = Some(result?);
        if self.workload.rng.one_in(3) {
            self.sync(fs)?;
        }
        Ok(())
    }

    /// After a failed op: the model takes what the log says it holds (a failed op is whole or
    /// absent), so that the workload can go on.
    pub fn resync(&mut self) -> raftwal::Result<()> {
        let state = LogState::read(&self.wal)?;
        if let Some(last) = self.history.states.last_mut() {
            *last = state.clone();
        }
        self.workload.state = state;
        Ok(())
    }

    /// Closes the log ([`Wal::close`]) and hands back the history: every op acknowledged if
    /// the close succeeded.
    pub fn close(self, fs: &SimFs) -> History {
        let Driver {
            wal,
            mut history,
            unsynced,
            ..
        } = self;
        if wal.close().is_ok()
            && let Some(lsn) = unsynced
        {
            history.synced(lsn, fs.op_count());
        }
        history
    }

    /// Drops the log (no close: as a killed process leaves it) and hands back the history.
    pub fn into_history(self) -> History {
        self.history
    }

    /// Syncs everything issued and acknowledges it.
    pub fn sync(&mut self, fs: &SimFs) -> raftwal::Result<()> {
        if let Some(lsn) = self.unsynced {
            self.wal.sync(lsn)?;
            self.history.synced(lsn, fs.op_count());
            self.unsynced = None;
        }
        Ok(())
    }
}

/// Runs `ops` operations of workload `seed` on a fresh log on `fs`, then syncs. Stops at the
/// first error and returns it with the history so far.
pub fn drive(
    fs: &SimFs,
    options: &Options,
    seed: u64,
    ops: usize,
) -> (History, Option<raftwal::Error>) {
    let mut driver = match Driver::open(fs, options, seed) {
        Ok(driver) => driver,
        Err(e) => return (History::new(), Some(e)),
    };
    let result = (0..ops)
        .try_for_each(|_| driver.step(fs))
        .and_then(|()| driver.sync(fs));
    (driver.history, result.err())
}

/// The files in the log directory, as full paths, sorted.
pub fn log_files(fs: &SimFs) -> Vec<PathBuf> {
    use raftwal::fs::Fs;
    let mut names = fs.list_dir(Path::new(DIR)).expect("list the log dir");
    names.sort();
    names.into_iter().map(|n| dir().join(n)).collect()
}

/// A `u64` from the environment, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs a `wal_model` fuzz script (fuzz/fuzz_targets/wal_model.rs): the first byte picks the
/// seed and the options, each later byte a workload step, a sync, an armed fault, a power cut
/// or a restart (after a close for 0x17, 0x37, ..., 0xf7). After every cut or restart the log must hold every acknowledged op and
/// nothing issued later. Panics with the byte that broke it.
pub fn run_wal_script(input: &[u8]) {
    let mut fs = SimFs::new(0);
    let seed = input.first().copied().map_or(0, u64::from);
    // Odd seeds run in 4 KiB segments, where purges recycle segments every few steps.
    let options = if seed % 2 == 0 {
        small_options()
    } else {
        recycling_options()
    };
    let Ok(mut driver) = Driver::open(&fs, &options, seed) else {
        return;
    };
    let mut broken = false;
    for &byte in input.iter().skip(1) {
        match byte % 8 {
            0..=3 if !broken => broken = driver.step(&fs).is_err(),
            4 if !broken => broken = driver.sync(&fs).is_err(),
            5 => {
                let kinds = [
                    OpKind::Write,
                    OpKind::SyncData,
                    OpKind::SyncDir,
                    OpKind::Allocate,
                    OpKind::Create,
                ];
                let op = kinds[usize::from(byte >> 3) % kinds.len()];
                let error = if byte & 0x80 == 0 {
                    FaultError::Eio
                } else {
                    FaultError::NoSpace
                };
                fs.inject(Fault::nth(op, u64::from(byte >> 4), error));
            }
            6 | 7 => {
                // A power cut (6) or a process restart (7), then recovery is judged. NB: after a
                // failed sync a restart still sees, in the page cache, frames the disk never
                // got; a later power cut must not take anything acknowledged after it.
                let history = if byte % 8 == 7 && (byte >> 3) % 4 == 2 {
                    driver.close(&fs)
                } else {
                    driver.into_history()
                };
                let legal = history.legal_after_crash_at(fs.op_count()).to_vec();
                fs.clear_faults();
                let image = if byte % 8 == 6 {
                    let mut rng = SimRng::new(u64::from(byte));
                    fs.crash_image(&ImageSpec::random(&mut rng), u64::from(byte))
                } else {
                    fs.clone()
                };
                let state: LogState = judge(&image, &options, &legal)
                    .unwrap_or_else(|e| panic!("recovery after byte {byte:#x}: {e}"));
                fs = image;
                driver = Driver::resume(&fs, &options, u64::from(byte), state)
                    .expect("a recovered log reopens");
                broken = false;
            }
            _ => {}
        }
    }
}

//! What may survive a power cut: the choice of which unsynced changes reach the durable image
//! (research/reliability.md §3.3), applied to one file's bytes or one directory's entries.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::SimRng;

/// Which unsynced changes survive in a crash image. Synced state always survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Survival {
    /// Nothing unsynced survives: a power cut right after the last barriers.
    Nothing,
    /// The whole page cache survives: a process crash while the kernel lives on.
    Everything,
    /// Each file keeps a random prefix of its unsynced chunks and size changes, each directory
    /// a random prefix of its entry changes.
    Prefix,
    /// Each unsynced chunk and size change survives or not on its own coin: torn and reordered
    /// writes, a hole followed by later data.
    Subset,
    /// Everything survives except one random change per file and directory: a single hole.
    AllButOne,
}

/// What the bytes of a file read as where its length grew but no surviving write covers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Zeros (ext4 `data=ordered`, XFS).
    Zeros,
    /// Random bytes (writeback modes, devices without power-loss protection).
    Garbage,
    /// Old bytes: what the block held before a truncation, or the bytes at the same offset of
    /// another file (a recycled block). The worst case for a log: stale records.
    Stale,
}

/// How directory changes since the last directory sync survive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirOrder {
    /// A prefix of each directory's changes (journaling file systems commit metadata in order).
    Prefix,
    /// Any subset, except that a change never survives without the earlier changes to the same
    /// names (a rename stays atomic: the old name or the new one).
    AnySubset,
}

/// The recipe for one crash image; with a seed it fixes the image completely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// Which unsynced changes survive.
    pub survival: Survival,
    /// What uncovered bytes read as.
    pub fill: Fill,
    /// How directory changes survive.
    pub dir_order: DirOrder,
    /// Writes tear at multiples of this many bytes (512 = a sector, 4096 = a page). Never 0.
    pub granularity: u64,
}

impl ImageSpec {
    /// A power cut that keeps only what was synced.
    pub const NOTHING: ImageSpec = ImageSpec {
        survival: Survival::Nothing,
        fill: Fill::Zeros,
        dir_order: DirOrder::Prefix,
        granularity: 512,
    };

    /// A process crash: every write the kernel accepted survives.
    pub const EVERYTHING: ImageSpec = ImageSpec {
        survival: Survival::Everything,
        ..ImageSpec::NOTHING
    };

    /// A spec drawn from `rng`, covering every mode: the torn modes most often, each fill and
    /// directory order, sector and page granularity.
    pub fn random(rng: &mut SimRng) -> Self {
        let survival = match rng.below(8) {
            0 => Survival::Nothing,
            1 => Survival::Everything,
            2 | 3 => Survival::Prefix,
            4 | 5 => Survival::Subset,
            _ => Survival::AllButOne,
        };
        let fill = match rng.below(3) {
            0 => Fill::Zeros,
            1 => Fill::Garbage,
            _ => Fill::Stale,
        };
        let dir_order = if rng.coin() {
            DirOrder::Prefix
        } else {
            DirOrder::AnySubset
        };
        let granularity = if rng.one_in(4) { 4096 } else { 512 };
        Self {
            survival,
            fill,
            dir_order,
            granularity,
        }
    }
}

/// One unsynced change to a file, in the order it was made.
#[derive(Clone, Debug)]
pub(super) enum Pending {
    /// Bytes written at an offset (may extend the file).
    Write {
        /// Where the bytes start.
        offset: u64,
        /// The bytes.
        data: Bytes,
    },
    /// A length set by `set_len`.
    SetLen(u64),
}

/// One unsynced change to a directory's entries.
#[derive(Clone, Debug)]
pub(super) enum DirOp {
    /// A new name for an inode (create).
    Link { name: String, ino: u64 },
    /// A removed name.
    Unlink { name: String },
    /// `from` moved to `to`, replacing it.
    Rename { from: String, to: String },
}

/// The smallest piece of a file change that reaches the disk on its own: a write splits into a
/// size change and granularity-aligned chunks (ALICE's micro-operations).
enum Micro<'a> {
    /// The length grows to at least this (the size half of a write).
    Extend(u64),
    /// Bytes of one aligned chunk.
    Chunk { offset: usize, data: &'a [u8] },
    /// The length becomes exactly this.
    SetLen(u64),
}

fn micro_ops(pending: &[Pending], granularity: u64) -> Vec<Micro<'_>> {
    let mut ops = Vec::new();
    for change in pending {
        match change {
            Pending::SetLen(len) => ops.push(Micro::SetLen(*len)),
            Pending::Write { offset, data } => {
                ops.push(Micro::Extend(offset + data.len() as u64));
                let mut at = *offset;
                let mut rest: &[u8] = data;
                while !rest.is_empty() {
                    let to_boundary = granularity - at % granularity;
                    let (chunk, tail) = rest.split_at(rest.len().min(to_boundary as usize));
                    ops.push(Micro::Chunk {
                        offset: at as usize,
                        data: chunk,
                    });
                    at += chunk.len() as u64;
                    rest = tail;
                }
            }
        }
    }
    ops
}

/// Decides, change by change, which of `n` unsynced changes survive.
struct Chooser {
    survival: Survival,
    /// Prefix length for [`Survival::Prefix`], the hole's position for [`Survival::AllButOne`].
    k: u64,
}

impl Chooser {
    fn new(survival: Survival, n: usize, rng: &mut SimRng) -> Self {
        let n = n as u64;
        let k = match survival {
            Survival::Prefix => rng.range(0, n),
            Survival::AllButOne => rng.below(n),
            _ => 0,
        };
        Self { survival, k }
    }

    fn keeps(&self, i: usize, rng: &mut SimRng) -> bool {
        let i = i as u64;
        match self.survival {
            Survival::Nothing => false,
            Survival::Everything => true,
            Survival::Prefix => i < self.k,
            Survival::Subset => rng.coin(),
            Survival::AllButOne => i != self.k,
        }
    }
}

/// The bytes a file holds after a crash: `base` (its durable bytes) with the surviving part of
/// `pending` applied in order. `stale` supplies old bytes for [`Fill::Stale`].
pub(super) fn file_after_crash(
    base: &[u8],
    pending: &[Pending],
    spec: &ImageSpec,
    stale: &[u8],
    rng: &mut SimRng,
) -> Vec<u8> {
    let ops = micro_ops(pending, spec.granularity.max(1));
    let chooser = Chooser::new(spec.survival, ops.len(), rng);
    // `blocks` is what the device holds, `len` what the inode says; they move independently.
    let mut blocks = base.to_vec();
    let mut len = base.len();
    let reach = ops
        .iter()
        .map(|op| match op {
            Micro::Extend(n) | Micro::SetLen(n) => *n as usize,
            Micro::Chunk { offset, data } => offset + data.len(),
        })
        .max()
        .unwrap_or(0);
    if reach > blocks.len() {
        let old = blocks.len();
        resize_zeroed(&mut blocks, reach);
        fill(&mut blocks[old..], old, spec.fill, stale, rng);
    }
    for (i, op) in ops.iter().enumerate() {
        if !chooser.keeps(i, rng) {
            continue;
        }
        match *op {
            Micro::Extend(n) => len = len.max(n as usize),
            Micro::SetLen(n) => {
                let n = n as usize;
                if n < len && spec.fill != Fill::Stale {
                    // A truncation frees the blocks; growing again later shows fresh fill.
                    let end = len.min(blocks.len());
                    fill(&mut blocks[n..end], n, spec.fill, stale, rng);
                }
                len = n;
            }
            Micro::Chunk { offset, data } => {
                blocks[offset..offset + data.len()].copy_from_slice(data);
            }
        }
    }
    resize_zeroed(&mut blocks, len);
    blocks
}

/// `bytes.resize(len, 0)`, but by whole-page copies: the element-wise fill is the hot spot of
/// crash-image building in unoptimised test builds.
pub(super) fn resize_zeroed(bytes: &mut Vec<u8>, len: usize) {
    const ZERO_PAGE: [u8; 4096] = [0; 4096];
    if len <= bytes.len() {
        bytes.truncate(len);
        return;
    }
    bytes.reserve(len - bytes.len());
    while bytes.len() < len {
        let n = (len - bytes.len()).min(ZERO_PAGE.len());
        bytes.extend_from_slice(&ZERO_PAGE[..n]);
    }
}

/// Fills `region`, which starts at file offset `at`, as `mode` says.
fn fill(region: &mut [u8], at: usize, mode: Fill, stale: &[u8], rng: &mut SimRng) {
    match mode {
        Fill::Zeros => region.fill(0),
        Fill::Garbage => rng.fill(region),
        Fill::Stale => {
            region.fill(0);
            let old = stale.get(at..).unwrap_or_default();
            let n = old.len().min(region.len());
            region[..n].copy_from_slice(&old[..n]);
        }
    }
}

/// A directory's entries after a crash: `base` (its durable entries) with the surviving part of
/// `pending` applied in order.
pub(super) fn dir_after_crash(
    base: &BTreeMap<String, u64>,
    pending: &[DirOp],
    spec: &ImageSpec,
    rng: &mut SimRng,
) -> BTreeMap<String, u64> {
    let survival = match (spec.survival, spec.dir_order) {
        (Survival::Nothing | Survival::Everything, _) => spec.survival,
        (_, DirOrder::Prefix) => Survival::Prefix,
        (survival, DirOrder::AnySubset) => survival,
    };
    let chooser = Chooser::new(survival, pending.len(), rng);
    let mut entries = base.clone();
    // Names touched by a dropped change: later changes to them depend on it and drop too.
    let mut tainted = BTreeSet::new();
    for (i, op) in pending.iter().enumerate() {
        let names: &[&String] = match op {
            DirOp::Link { name, .. } | DirOp::Unlink { name } => &[name],
            DirOp::Rename { from, to } => &[from, to],
        };
        let depends = names.iter().any(|n| tainted.contains(*n));
        if depends || !chooser.keeps(i, rng) {
            tainted.extend(names.iter().map(|n| (*n).clone()));
            continue;
        }
        apply_dir_op(&mut entries, op);
    }
    entries
}

/// Applies one directory change to a name table.
pub(super) fn apply_dir_op(entries: &mut BTreeMap<String, u64>, op: &DirOp) {
    match op {
        DirOp::Link { name, ino } => {
            entries.insert(name.clone(), *ino);
        }
        DirOp::Unlink { name } => {
            entries.remove(name);
        }
        DirOp::Rename { from, to } => {
            if let Some(ino) = entries.remove(from) {
                entries.insert(to.clone(), ino);
            }
        }
    }
}

//! Opening a log: replay every segment in order, decide whether the frames stop at a torn
//! tail (cut it off and say so) or at damaged acknowledged data (refuse to open), and hand the
//! writer a clean place to continue.
//!
//! The rules, in the order they are applied:
//! 1. Segments are numbered without gaps; each begins with a valid header and a checkpoint,
//!    and a sealed segment names its successor's sequence number and salt.
//! 2. The frames of the log stop at most once. Past the stop, a valid frame whose durability
//!    proof (`synced_lsn`) covers the first lost frame means an acknowledged frame is damaged:
//!    [`Error::Corrupt`]. Without such proof the stop is a torn tail: the bytes are zeroed and
//!    reported, and any segment after it (a rotation that never finished) is removed. In a
//!    recycled segment the bytes past the stop are stale, not zero: only what this segment's
//!    writer left there is zeroed (its frames, and at a stop that is not the zeros of a
//!    frame's end marker, the marker's slot: a damaged newest frame is never dropped
//!    unreported).
//! 3. A sealed segment is never the last: its successor was durable before the seal was.
//! 4. Frames no later frame proves durable are written again and synced before the log is
//!    used: after a failed sync the page cache may show frames the disk never got, and a
//!    sync finds nothing dirty to write.

use std::collections::{BTreeMap, VecDeque};
use std::num::NonZero;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread;

use bytes::Bytes;

use super::state::{Loc, LogState, Slot};
use super::writer::{Active, SegmentInfo};
use super::{Batch, Options, RecoveryReport};
use crate::error::{DecodeError, Error, IoOp, Result};
use crate::fs::{File, Fs, OpenMode};
use crate::record::{END_MARKER_LEN, FRAME_ALIGN, Frame, Record};
use crate::segment::{
    self, Decoded, FileName, HEADER_LEN, Header, Readers, Stop, find_proof, io_err, leftovers_end,
    torn_end, torn_plausible,
};

/// A segment the read side can serve entries from.
#[derive(Clone, Debug)]
pub(crate) struct SegmentFile {
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn File>,
    /// Counts this handle's clones and the maps of the file: the file is recycled only when
    /// no reader is left.
    pub(crate) readers: Readers,
    /// The file's first bytes, mapped (counted by `readers`): a sealed segment whole, the
    /// active one up to where replay left it. `None` without maps.
    pub(crate) map: Option<Bytes>,
}

impl SegmentFile {
    /// This handle without its map, for a read of the file itself.
    pub(crate) fn unmapped(&self) -> Self {
        Self {
            map: None,
            ..self.clone()
        }
    }
}

/// Where a replayed frame is.
#[derive(Clone, Copy, Debug)]
struct FrameAt {
    seq: u64,
    offset: u64,
    lsn: u64,
}

impl FrameAt {
    /// The part of segment `seq`, whose frames end at `end`, that lies at or after this frame.
    /// A segment whose checkpoint is included is taken whole: its header is as new as the
    /// checkpoint.
    fn range_in(&self, seq: u64, end: u64) -> Option<Range<u64>> {
        match seq.cmp(&self.seq) {
            std::cmp::Ordering::Less => None,
            std::cmp::Ordering::Equal if self.offset > HEADER_LEN as u64 => Some(self.offset..end),
            _ => Some(0..end),
        }
    }
}

/// Writes bytes `range` of `file` again, with what reads of it return: from `replayed` (the
/// file's bytes as replay read them) if it holds them, else read once more.
///
/// After a failed fdatasync, Linux marks the pages it could not write clean: reads still show
/// them, but no later sync writes them. Writing the same bytes dirties them again, so the
/// caller's next sync really makes them durable.
///
/// # Errors
/// [`Error::Io`] if the read or the write fails.
fn rewrite(file: &dyn File, path: &Path, range: Range<u64>, replayed: &[u8]) -> Result<()> {
    let write = |bytes: &[u8]| {
        file.write_all_at(bytes, range.start)
            .map_err(io_err(IoOp::Write, path))
    };
    let held = usize::try_from(range.start)
        .ok()
        .zip(usize::try_from(range.end).ok())
        .and_then(|(start, end)| replayed.get(start..end));
    match held {
        Some(bytes) => write(bytes),
        None => write(&segment::read_at(
            file,
            path,
            range.start,
            range.end - range.start,
        )?),
    }
}

/// Everything open found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) log: LogState,
    pub(crate) files: BTreeMap<u64, SegmentFile>,
    pub(crate) active: Active,
    pub(crate) next_lsn: u64,
    pub(crate) segments: VecDeque<SegmentInfo>,
    pub(crate) report: RecoveryReport,
}

/// A segment read during replay.
struct Scanned {
    seq: u64,
    header: Header,
    path: PathBuf,
    file: Arc<dyn File>,
    buf: Bytes,
    /// Where its frames end (the seal's end, or the stop).
    end: u64,
    /// Every byte of `buf` from here on is zero.
    zeros_from: u64,
    /// Who still reads the file's bytes: `buf` and every entry payload sliced from it.
    readers: Readers,
}

impl Scanned {
    /// Lists the segment for the read side (serving its entries from `map`) and the writer.
    fn register(
        &self,
        files: &mut BTreeMap<u64, SegmentFile>,
        segments: &mut VecDeque<SegmentInfo>,
        map: Option<Bytes>,
    ) {
        let (seq, path) = (self.seq, self.path.clone());
        files.insert(
            seq,
            SegmentFile {
                path: path.clone(),
                file: Arc::clone(&self.file),
                readers: self.readers.clone(),
                map,
            },
        );
        segments.push_back(SegmentInfo {
            seq,
            first_index: self.header.first_index,
            path,
        });
    }
}

/// Where the frames of the log stop.
struct Stopped {
    /// The segment they stop in.
    path: PathBuf,
    stop: Stop,
    /// The Lsn the first missing frame would have had.
    lost_lsn: u64,
}

impl Stopped {
    /// The error for a stop proven to be damage.
    fn damage(&self) -> Error {
        let source = self.stop.error.unwrap_or(DecodeError::Malformed {
            what: "acknowledged frames were erased",
        });
        corrupt(&self.path, self.stop.offset)(source)
    }
}

fn corrupt(path: &Path, offset: u64) -> impl FnOnce(DecodeError) -> Error + '_ {
    move |source| Error::Corrupt {
        segment: path.to_path_buf(),
        offset,
        source,
    }
}

fn malformed(path: &Path, offset: u64, what: &'static str) -> Error {
    corrupt(path, offset)(DecodeError::Malformed { what })
}

/// Sequence numbers of the segments in `dir`, ascending, and the half-built and free files to
/// remove.
pub(crate) fn list_segments(fs: &dyn Fs, dir: &Path) -> Result<(Vec<u64>, Vec<PathBuf>)> {
    let names = fs.list_dir(dir).map_err(io_err(IoOp::List, dir))?;
    let mut seqs = Vec::new();
    let mut temps = Vec::new();
    for name in names {
        match segment::parse_name(&name) {
            FileName::Segment(seq) => seqs.push(seq),
            // NB: free files too, never reused after a reopen: a free name may be one that a
            // failed directory sync forgot, so the disk may still hold the file as the purged
            // segment, and writing over it would corrupt what a power cut brings back.
            FileName::Temp | FileName::Free(_) => temps.push(dir.join(&name)),
            FileName::Other => {}
        }
    }
    seqs.sort_unstable();
    Ok((seqs, temps))
}

/// Replays the log in `dir`, creating it if there is none, and leaves the directory ready
/// for writing: a torn tail zeroed, leftovers removed, everything kept synced.
///
/// # Errors
/// [`Error::Corrupt`] for damaged acknowledged data, [`Error::Io`] for failed file calls.
pub(crate) fn recover(fs: &dyn Fs, dir: &Path, options: &Options) -> Result<Recovered> {
    let replayed = match replay(fs, dir, options)? {
        Some(replayed) => replayed,
        None => {
            super::create::first_segment(fs, dir, options)?;
            replay(fs, dir, options)?.ok_or(Error::InvalidCall("a new log has a segment"))?
        }
    };
    replayed.apply(fs, dir, options)
}

/// Replays the log in `dir` without changing anything on disk; `None` if it holds no segment.
///
/// # Errors
/// As [`recover`].
pub(crate) fn replay(fs: &dyn Fs, dir: &Path, options: &Options) -> Result<Option<Replayed>> {
    let (seqs, mut leftovers) = list_segments(fs, dir)?;
    if seqs.is_empty() {
        return Ok(None);
    }
    // Segments before a gap are purged ones whose removal a crash half undid: replay starts
    // after the last gap, and if it needed them after all, their entries show up missing.
    let start = seqs
        .windows(2)
        .rposition(|w| w.first().and_then(|p| p.checked_add(1)) != w.get(1).copied())
        .map_or(0, |gap| gap + 1);
    let (stale, seqs) = seqs.split_at(start);
    leftovers.extend(
        stale
            .iter()
            .map(|&seq| dir.join(segment::segment_name(seq))),
    );
    let mut replay = Replay {
        keep_maps: options.use_mmap,
        segments_left: seqs.len(),
        ..Replay::default()
    };
    load_in_order(fs, dir, seqs, options, |loaded| {
        let Some(stopped) = &replay.stopped else {
            return replay.segment(loaded);
        };
        // Past the end of the log: a rotation that never finished, unless it proves the stop
        // was damage.
        let Loaded {
            seq,
            path,
            buf,
            decoded,
            unused_preparation,
            ..
        } = loaded;
        if let Ok((h, frames)) = decoded
            && find_proof(
                &buf,
                h.salt,
                HEADER_LEN as u64,
                stopped.lost_lsn,
                frames.zeros_from(),
            )
            .is_some()
        {
            return Err(stopped.damage());
        }
        // NB: an unused preparation is never used after a reopen (after a failed directory
        // sync in the same boot, its name may be one the disk never got). The tail's
        // successor is left in place, off the open path, for the next preparation to replace
        // by its rename; any other would leave a gap in the numbering: removed.
        let successor = replay.scanned.last().map(|tail| tail.seq + 1);
        if !(unused_preparation && successor == Some(seq)) {
            leftovers.push(path);
        }
        Ok(())
    })?;
    replay.finish(leftovers).map(Some)
}

/// A segment file opened and read, its frames decoded.
struct Loaded {
    seq: u64,
    path: PathBuf,
    file: Arc<dyn File>,
    /// The whole file (nothing if it has no header: no one reads it again), counted by
    /// `readers` with every payload sliced from it.
    buf: Bytes,
    readers: Readers,
    /// Its header and frames, or why the header is not one. Their batches hold no entries:
    /// those are in `batches`.
    decoded: Result<(Header, Decoded), DecodeError>,
    /// The entries of each batch frame, in order.
    batches: std::vec::IntoIter<BatchSlots>,
    /// Its header region is zeros: a segment prepared ahead and never used (its first use
    /// writes a header, synced before anything depends on it).
    unused_preparation: bool,
}

/// A batch's entries as the log keeps them, made on the thread that loads their segment, so
/// that replay, in order on one thread, only moves them.
struct BatchSlots {
    /// The first entry's index; `None` without entries.
    first: Option<u64>,
    slots: Vec<Slot>,
}

impl BatchSlots {
    /// Takes the entries out of `batch`, decoded from segment `seq` read into `buf`.
    fn take(batch: &mut Batch, seq: u64, buf: &Bytes) -> Self {
        let entries = std::mem::take(&mut batch.entries);
        let base = buf.as_ptr() as usize;
        // Decoded payloads are slices of `buf`: their distance from its start is their offset
        // in the file.
        let slots = entries.iter().map(|e| Slot {
            term: e.term,
            loc: Loc::Stored {
                seg: seq,
                offset: if e.data.is_empty() {
                    0
                } else {
                    (e.data.as_ptr() as usize).wrapping_sub(base) as u64
                },
                len: u32::try_from(e.data.len()).unwrap_or(u32::MAX),
            },
        });
        Self {
            first: entries.first().map(|e| e.index),
            slots: slots.collect(),
        }
    }
}

/// A segment file opened, not read yet.
struct Opened {
    seq: u64,
    path: PathBuf,
    file: Arc<dyn File>,
    /// The file's length.
    len: u64,
}

impl Opened {
    /// Opens segment `seq` of `dir` and measures it.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be opened or measured.
    fn open(fs: &dyn Fs, dir: &Path, seq: u64) -> Result<Self> {
        let path = dir.join(segment::segment_name(seq));
        let file = segment::open(fs, &path, OpenMode::ReadOnly)?;
        let len = file.len().map_err(io_err(IoOp::Read, &path))?;
        Ok(Self {
            seq,
            path,
            file,
            len,
        })
    }

    /// Reads (or maps) the whole file and decodes it.
    ///
    /// Cost: the file's bytes read or mapped and scanned once, with a checksum over every
    /// frame.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be mapped or read.
    fn load(self, options: &Options) -> Result<Loaded> {
        let Opened {
            seq,
            path,
            file,
            len,
        } = self;
        let readers = Readers::default();
        let read = segment::read_prefix(file.as_ref(), &path, len, options.use_mmap)?;
        let mut buf = readers.track(read);
        let mut decoded = Header::decode(&buf)
            .map(|header| (header, Decoded::new(&buf, header.salt, HEADER_LEN as u64)));
        let batches = match &mut decoded {
            Ok((_, frames)) => frames
                .batches_mut()
                .map(|batch| BatchSlots::take(batch, seq, &buf))
                .collect(),
            Err(_) => Vec::new(),
        };
        let unused_preparation =
            decoded.is_err() && buf.get(..HEADER_LEN).is_some_and(crate::record::is_zero);
        if decoded.is_err() {
            // NB: dropped here, so the calling thread never pays for unmapping it.
            buf = Bytes::new();
        }
        Ok(Loaded {
            seq,
            path,
            file,
            decoded,
            batches: batches.into_iter(),
            unused_preparation,
            buf,
            readers,
        })
    }
}

/// Opens, reads (or maps) and decodes segment `seq` of `dir`.
///
/// # Errors
/// As [`Opened::open`] and [`Opened::load`].
fn load(fs: &dyn Fs, dir: &Path, seq: u64, options: &Options) -> Result<Loaded> {
    Opened::open(fs, dir, seq)?.load(options)
}

/// Segments at least this long are worth loading on threads of their own: their checksums
/// (about 0.1 ms a MiB) outweigh starting a thread (tens of microseconds).
const PARALLEL_MIN_LEN: u64 = 512 << 10;

/// Loads segments `seqs` of `dir` and hands each to `each`, in order, on the calling thread.
///
/// Checksums are most of the cost of opening a log, and each segment's are independent of
/// the others': if the first segment is long enough to be worth it, one thread per core
/// loads and decodes the others (thread `k` of `n` takes the `k`-th, the `k + n`-th, ...),
/// each at most one segment ahead of `each`, while the calling thread loads the first.
/// Whatever crosses segments stays with `each`, in order. After an error of `each`, the
/// threads stop at their next segment.
///
/// # Errors
/// The first error of [`load`] or of `each`, in segment order.
fn load_in_order(
    fs: &dyn Fs,
    dir: &Path,
    seqs: &[u64],
    options: &Options,
    mut each: impl FnMut(Loaded) -> Result<()>,
) -> Result<()> {
    let Some((&first, seqs)) = seqs.split_first() else {
        return Ok(());
    };
    let first = Opened::open(fs, dir, first)?;
    let threads = thread::available_parallelism()
        .map_or(1, NonZero::get)
        .min(seqs.len());
    if threads <= 1 || first.len < PARALLEL_MIN_LEN {
        each(first.load(options)?)?;
        return seqs
            .iter()
            .try_for_each(|&seq| each(load(fs, dir, seq, options)?));
    }
    thread::scope(|scope| {
        let loaders: Vec<_> = (0..threads)
            .map(|k| {
                // Rendezvous: a loader holds one finished segment until `each` takes it.
                let (sender, receiver) = mpsc::sync_channel(0);
                scope.spawn(move || {
                    for &seq in seqs.iter().skip(k).step_by(threads) {
                        if sender.send(load(fs, dir, seq, options)).is_err() {
                            break;
                        }
                    }
                });
                receiver
            })
            .collect();
        each(first.load(options)?)?;
        for loader in loaders.iter().cycle().take(seqs.len()) {
            // NB: a loader hangs up early only by panicking, and the scope re-raises that
            // panic as it returns: this error is never seen.
            let loaded = loader
                .recv()
                .map_err(|_| Error::InvalidCall("a segment loader panicked"))?;
            each(loaded?)?;
        }
        Ok(())
    })
}

/// What replay found, before anything is changed on disk.
pub(crate) struct Replayed {
    log: LogState,
    /// The Lsn the next frame gets.
    next_lsn: u64,
    /// Sealed segments, oldest first.
    sealed: Vec<Scanned>,
    /// The segment the frames stop in: the one to continue writing.
    tail: Scanned,
    /// End of whatever a torn write left after the tail's frames (`tail.end` if nothing).
    torn_end: u64,
    /// The oldest frame no frame's proof covers; it and everything after it may exist only in
    /// the page cache.
    unproven: Option<FrameAt>,
    /// Files to remove: half-built, purged, or from a rotation that never finished.
    leftovers: Vec<PathBuf>,
}

impl Replayed {
    /// What recovery reports (and, for a read-only check, would do).
    pub(crate) fn report(&self) -> RecoveryReport {
        let torn = self.torn_end - self.tail.end;
        let rewritten = self
            .sealed
            .iter()
            .chain([&self.tail])
            .filter_map(|s| self.unproven_range(s))
            .map(|r| r.end - r.start)
            .sum();
        RecoveryReport {
            torn_bytes_dropped: torn,
            torn_segment: (torn > 0).then(|| self.tail.path.clone()),
            last_index: self.log.last_index(),
            segments: self.sealed.len() + 1,
            unproven_bytes_rewritten: rewritten,
        }
    }

    /// The bytes of `segment` that recovery writes again and syncs.
    fn unproven_range(&self, segment: &Scanned) -> Option<Range<u64>> {
        self.unproven?.range_in(segment.seq, segment.end)
    }

    /// Makes the directory ready for writing and hands over what the log needs.
    fn apply(self, fs: &dyn Fs, dir: &Path, options: &Options) -> Result<Recovered> {
        let report = self.report();
        let unproven = self.unproven;
        let Replayed {
            log,
            next_lsn,
            sealed,
            tail,
            torn_end,
            leftovers,
            ..
        } = self;
        let mut files = BTreeMap::new();
        let mut segments = VecDeque::new();
        for s in sealed {
            // In practice only the newest sealed segment, and only while its successor holds
            // nothing but a checkpoint: the first frame after a rotation proves the seal.
            if let Some(range) = unproven.and_then(|u| u.range_in(s.seq, s.end)) {
                let file = segment::open(fs, &s.path, OpenMode::ReadWrite)?;
                rewrite(file.as_ref(), &s.path, range, &s.buf)?;
                file.sync_data().map_err(io_err(IoOp::SyncData, &s.path))?;
            }
            let map = options.use_mmap.then(|| s.buf.clone());
            s.register(&mut files, &mut segments, map);
        }
        // The writer continues in the tail: the read side serves it through the same handle.
        let file = segment::open(fs, &tail.path, OpenMode::ReadWrite)?;
        let tail = Scanned {
            file: Arc::clone(&file),
            ..tail
        };
        tail.register(&mut files, &mut segments, None);
        let Scanned {
            seq,
            header,
            path,
            buf,
            end,
            readers,
            ..
        } = tail;
        // Every frame lies in space written and synced before use: the file's length.
        let capacity = buf.len() as u64;
        if let Some(range) = unproven.and_then(|u| u.range_in(seq, end)) {
            rewrite(file.as_ref(), &path, range, &buf)?;
        }
        // NB: no map may see the torn bytes change: replay's is the only one.
        drop(buf);
        // The torn bytes go, and the end marker's slot is zeros on disk too (the page cache may
        // show zeros a failed sync never wrote): until the writer's next frame is durable, the
        // marker is what says the log ends here.
        let zero_end = torn_end.max(end.saturating_add(END_MARKER_LEN as u64).min(capacity));
        segment::write_zeros(file.as_ref(), &path, end..zero_end)?;
        // What replay read may have been in the page cache only (a killed process, or a failed
        // sync, whose pages the rewrite above dirtied again): make it durable before anything
        // new is built on it.
        file.sync_data().map_err(io_err(IoOp::SyncData, &path))?;
        for leftover in &leftovers {
            fs.remove_file(leftover)
                .map_err(io_err(IoOp::Remove, leftover))?;
        }
        segment::sync_dir(fs, dir)?;
        if options.use_mmap
            && let Some(tail) = files.get_mut(&seq)
        {
            let map = segment::read_prefix(file.as_ref(), &path, end, true)?;
            tail.map = Some(readers.track(map));
        }
        let active = Active {
            seq,
            salt: header.salt,
            path,
            file,
            offset: end,
            capacity,
        };
        Ok(Recovered {
            log,
            files,
            active,
            next_lsn,
            segments,
            report,
        })
    }
}

/// The state replay carries from one segment to the next.
#[derive(Default)]
struct Replay {
    log: Option<LogState>,
    /// The Lsn the next frame must have (unknown before the first checkpoint).
    next_lsn: Option<u64>,
    /// The successor the last segment's seal named: `(seq, salt)`.
    expect: Option<(u64, u64)>,
    /// Segments not replayed yet.
    segments_left: usize,
    /// Segments replayed so far. Only the last keeps its buffer, unless `keep_maps`.
    scanned: Vec<Scanned>,
    stopped: Option<Stopped>,
    /// Buffers are maps, which sealed segments keep to serve reads (plain reads kept would
    /// hold the whole log in memory).
    keep_maps: bool,
    /// Highest `synced_lsn` of a replayed frame: every frame up to it reached the disk
    /// through a sync that succeeded before that frame was written.
    proven: u64,
    /// Replayed frames above `proven`, oldest first. Invariant: none has `lsn <= proven`.
    /// Few: after any sync, the next frame's proof covers all before it.
    unproven: VecDeque<FrameAt>,
}

impl Replay {
    /// Notes a replayed frame, and what its durability proof covers.
    fn replayed(&mut self, at: FrameAt, synced_lsn: u64) {
        self.proven = self.proven.max(synced_lsn);
        self.unproven.push_back(at);
        while self.unproven.front().is_some_and(|f| f.lsn <= self.proven) {
            self.unproven.pop_front();
        }
    }

    fn segment(&mut self, loaded: Loaded) -> Result<()> {
        let Loaded {
            seq,
            path,
            file,
            buf,
            readers,
            decoded,
            mut batches,
            ..
        } = loaded;
        self.segments_left = self.segments_left.saturating_sub(1);
        // Every segment's header and checkpoint were durable before anything could follow
        // them, and the first segment replay meets is never one that was left unfinished.
        let (header, frames) = decoded.map_err(corrupt(&path, 0))?;
        if header.seq != seq {
            return Err(malformed(
                &path,
                0,
                "header's sequence number differs from the name",
            ));
        }
        if self.expect.is_some_and(|e| e != (header.seq, header.salt)) {
            return Err(malformed(
                &path,
                0,
                "header differs from what the previous seal named",
            ));
        }
        self.expect = None;
        let mut frames = frames.expect_first(self.next_lsn);
        let zeros_from = frames.zeros_from();
        self.checkpoint(seq, &path, &mut frames)?;
        if let Some(log) = &mut self.log {
            // Segments are mostly alike: as many entries again in each one still to come.
            log.reserve(frames.entries().saturating_mul(1 + self.segments_left));
        }
        let mut end = frames.position();
        let mut stopped = None;
        for item in frames.by_ref() {
            match item {
                Ok((offset, frame)) => {
                    self.next_lsn = frame.lsn.checked_add(1);
                    end = offset + frame.len;
                    let at = FrameAt {
                        seq,
                        offset,
                        lsn: frame.lsn,
                    };
                    self.replayed(at, frame.synced_lsn);
                    if let Record::Seal {
                        next_seq,
                        next_salt,
                    } = frame.record
                    {
                        self.expect = Some((next_seq, next_salt));
                        break;
                    }
                    let log = self
                        .log
                        .as_mut()
                        .ok_or_else(|| malformed(&path, offset, "no checkpoint"))?;
                    apply(log, frame.record, &mut batches).map_err(corrupt(&path, offset))?;
                }
                Err(stop) => {
                    end = stop.offset;
                    stopped = Some(stop);
                }
            }
        }
        let next_lsn = self.next_lsn.unwrap_or(u64::MAX);
        if self.expect.is_some() && leftovers_end(&header, &buf, end, next_lsn, zeros_from) != end {
            return Err(malformed(&path, end, "bytes after the seal"));
        }
        if let Some(stop) = stopped {
            // Without later proof a stop is a torn tail, if a power cut could have made it.
            // In a recycled segment any stop could be: stale bytes fill every sector.
            let lost_lsn = next_lsn;
            let from = stop.offset + FRAME_ALIGN;
            let proven = find_proof(&buf, header.salt, from, lost_lsn, zeros_from).is_some();
            let torn = header.recycled
                || stop.error.is_none()
                || torn_plausible(&buf, stop.offset, header.salt);
            let stopped = Stopped {
                path: path.clone(),
                stop,
                lost_lsn,
            };
            if proven || !torn {
                return Err(stopped.damage());
            }
            self.stopped = Some(stopped);
        }
        // Replay reads only the last segment again; the read side keeps the maps of the others.
        if let Some(previous) = self.scanned.last_mut()
            && !self.keep_maps
        {
            previous.buf = Bytes::new();
        }
        self.scanned.push(Scanned {
            seq,
            header,
            path,
            file,
            buf,
            end,
            zeros_from,
            readers,
        });
        Ok(())
    }

    /// Replays the checkpoint that must open segment `seq`: it starts the log, or must agree
    /// with the log replayed so far.
    fn checkpoint(&mut self, seq: u64, path: &Path, frames: &mut Decoded) -> Result<()> {
        let at = HEADER_LEN as u64;
        let (c, lsn, synced_lsn) = match frames.next() {
            Some(Ok((
                _,
                Frame {
                    record: Record::Checkpoint(c),
                    lsn,
                    synced_lsn,
                    ..
                },
            ))) => (c, lsn, synced_lsn),
            Some(Ok(_)) => {
                let what = "segment does not begin with a checkpoint";
                return Err(malformed(path, at, what));
            }
            Some(Err(stop)) => {
                let source = stop.error.unwrap_or(DecodeError::Malformed {
                    what: "missing checkpoint",
                });
                return Err(corrupt(path, stop.offset)(source));
            }
            None => return Err(malformed(path, at, "missing checkpoint")),
        };
        match &self.log {
            None => self.log = Some(LogState::from_checkpoint(&c).map_err(corrupt(path, at))?),
            Some(log) if log.last_index() != c.last.index => {
                return Err(malformed(path, at, "checkpoint disagrees with the log"));
            }
            Some(_) => {}
        }
        self.next_lsn = lsn.checked_add(1);
        self.replayed(
            FrameAt {
                seq,
                offset: at,
                lsn,
            },
            synced_lsn,
        );
        Ok(())
    }

    fn finish(self, leftovers: Vec<PathBuf>) -> Result<Replayed> {
        let Replay {
            log,
            next_lsn,
            mut scanned,
            stopped,
            unproven,
            ..
        } = self;
        let tail = scanned
            .pop()
            .ok_or(Error::InvalidCall("a log has at least one segment"))?;
        let Some(stopped) = stopped else {
            return Err(malformed(
                &tail.path,
                tail.end,
                "sealed segment has no successor",
            ));
        };
        let log = log.ok_or(Error::InvalidCall("a log has at least one checkpoint"))?;
        if log.has_missing() {
            let first = scanned.first().unwrap_or(&tail).path.clone();
            let what = "entries of a removed segment are in the log";
            return Err(malformed(&first, HEADER_LEN as u64, what));
        }
        let torn_end = torn_end(
            &tail.header,
            &tail.buf,
            &stopped.stop,
            stopped.lost_lsn,
            tail.zeros_from,
        );
        let next_lsn = next_lsn.unwrap_or(stopped.lost_lsn);
        Ok(Replayed {
            log,
            next_lsn,
            sealed: scanned,
            tail,
            torn_end,
            unproven: unproven.front().copied(),
            leftovers,
        })
    }
}

/// Replays one frame, whose entries, if it is a batch, are the next of `batches`.
fn apply(
    log: &mut LogState,
    record: Record<'_>,
    batches: &mut impl Iterator<Item = BatchSlots>,
) -> Result<(), DecodeError> {
    match record {
        Record::Batch(batch) => {
            let BatchSlots { first, slots } = batches.next().ok_or(DecodeError::Malformed {
                what: "batch whose entries were not loaded",
            })?;
            log.apply_parts(batch.snapshot.as_ref(), first, slots, batch.hard_state)
        }
        Record::Truncate { after } => {
            if after < log.compacted().index {
                return Err(DecodeError::Malformed {
                    what: "truncation below the compaction point",
                });
            }
            log.truncate_after(after);
            Ok(())
        }
        Record::Purge(id) => {
            log.apply_purge(id);
            Ok(())
        }
        Record::Snapshot(meta) => {
            log.apply_snapshot_meta(&meta);
            Ok(())
        }
        Record::Checkpoint(_) | Record::Seal { .. } => Err(DecodeError::Malformed {
            what: "checkpoint or seal inside a segment",
        }),
    }
}

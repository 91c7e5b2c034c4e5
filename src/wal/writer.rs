//! The write side of the log: encoding frames into the active segment, and rotating to the
//! next segment when the active one is full. Only one writer exists (behind the log's writer
//! mutex), so nothing here locks.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::state::LogState;
use super::sync::SyncPoint;
use crate::error::{Error, IoOp, Result};
use crate::fs::{File, Fs};
use crate::record::{self, Encoded, Payloads, Record};
use crate::segment::{self, HEADER_LEN, Header, Pool, Prepared, io_err};
use crate::wal::Options;

/// What the writer needs from the log around it.
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) dir: PathBuf,
    pub(crate) options: Options,
    pub(crate) sync: Arc<SyncPoint>,
    /// Purged segment files kept to build new segments from.
    pub(crate) pool: Arc<Pool>,
}

/// The segment frames are appended to.
#[derive(Debug)]
pub(crate) struct Active {
    pub(crate) seq: u64,
    pub(crate) salt: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<dyn File>,
    /// Where the next frame goes. Invariant: a multiple of the frame alignment; the
    /// `END_MARKER_LEN` bytes from here are zeros (the last frame's end marker), and from here
    /// to the end of the file no frame of this segment's salt is left: the rest is zeros, or,
    /// in a recycled segment, stale bytes of the file's earlier life.
    pub(crate) offset: u64,
    /// Bytes written (zeros, or a recycled file's earlier frames) and synced before the
    /// segment was used. Invariant: every frame, and room for the seal after them, lies below
    /// it (so a write changes no file metadata).
    pub(crate) capacity: u64,
}

/// A segment of the log directory.
#[derive(Clone, Debug)]
pub(crate) struct SegmentInfo {
    pub(crate) seq: u64,
    /// The log's last index + 1 when the segment began: replay from this segment knows
    /// nothing of entries below it.
    pub(crate) first_index: u64,
    pub(crate) path: PathBuf,
}

/// A segment being prepared in the background.
type Preparing = JoinHandle<Result<Prepared>>;

/// What a rotation changed, for the read side to follow.
#[derive(Debug)]
pub(crate) struct Rotation {
    /// The segment just sealed, its final length and file.
    pub(crate) sealed_seq: u64,
    pub(crate) sealed_len: u64,
    pub(crate) sealed_file: Arc<dyn File>,
    pub(crate) sealed_path: PathBuf,
    /// The new active segment.
    pub(crate) new_seq: u64,
    pub(crate) new_file: Arc<dyn File>,
}

/// A frame written to the active segment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Written {
    pub(crate) lsn: u64,
    pub(crate) seq: u64,
    /// The frame's offset in segment `seq`.
    pub(crate) offset: u64,
    pub(crate) encoded: Encoded,
}

/// The single writer.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) active: Active,
    /// The Lsn the next frame gets. Invariant: every frame below it is written.
    pub(crate) next_lsn: u64,
    /// The frame about to be written (its payloads left apart if `encoded` says so), followed
    /// by its end marker (reused between writes); and the frame's layout.
    buf: Vec<u8>,
    encoded: Encoded,
    /// The next segment, being prepared by a background thread...
    next: Option<Preparing>,
    /// ...or ready for use.
    prepared: Option<Prepared>,
    /// Every segment in the directory, oldest first; the active one is last.
    pub(crate) segments: VecDeque<SegmentInfo>,
}

/// Mean payload size from which a batch's payloads are written from the caller's buffers, one
/// `pwritev` slice each, instead of being copied into the frame. Below it the kernel's work
/// per slice costs more than the copy: in a log-only loop, 256 x 1 KiB per batch took 15 us
/// longer gathered, and 256 x 16 KiB about 390 us less (of 2.9 ms).
const GATHER_FROM: u64 = 4096;

/// Bytes the seal frame takes: kept free at the end of every segment.
const SEAL_LEN: u64 = record::frame_len(16);

// The last frame's end marker lies where the seal goes, so room for the seal is room for it.
const _: () = assert!(record::END_MARKER_LEN as u64 <= SEAL_LEN);

/// How a frame of `record` holds its payloads: apart, to be written from the caller's buffers,
/// when they average [`GATHER_FROM`] bytes or more.
fn payloads_of(record: &Record<'_>) -> Payloads {
    let entries = record.payloads();
    let bytes: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
    if !entries.is_empty() && bytes >= GATHER_FROM * entries.len() as u64 {
        Payloads::Apart
    } else {
        Payloads::Copied
    }
}

/// Appends the end marker to the frame just encoded into `buf`: zeros where the next frame
/// will begin, written with the frame, so that its stop reads as zeros even over stale bytes.
fn end_marker(buf: &mut Vec<u8>) {
    buf.resize(buf.len() + record::END_MARKER_LEN, 0);
}

impl Writer {
    /// A writer continuing `active`. Its successor is prepared from the first write on: a log
    /// opened to be read needs none, and preparing one (zero-filling a segment) would compete
    /// with the open for the disk and the cores.
    pub(crate) fn new(active: Active, next_lsn: u64, segments: VecDeque<SegmentInfo>) -> Self {
        Self {
            active,
            next_lsn,
            buf: Vec::new(),
            encoded: Encoded::default(),
            next: None,
            prepared: None,
            segments,
        }
    }

    /// Encodes `record` as the next frame, with its end marker; returns the frame's length
    /// (the marker is no part of it). Payloads of [`GATHER_FROM`] bytes on average are left
    /// where they are, to be written from there.
    ///
    /// # Errors
    /// [`Error::InvalidCall`] if it is too long for the format.
    pub(crate) fn encode(&mut self, ctx: &Ctx, record: &Record<'_>) -> Result<u64> {
        if self.next.is_none() && self.prepared.is_none() {
            self.next = Some(self.spawn_prepare(ctx));
        }
        self.buf.clear();
        let lsn = self.next_lsn;
        let synced = ctx.sync.synced();
        let salt = self.active.salt;
        let payloads = payloads_of(record);
        self.encoded = record::encode(&mut self.buf, salt, lsn, synced, record, payloads)
            .map_err(|_| Error::InvalidCall("a record must encode to less than 4 GiB"))?;
        end_marker(&mut self.buf);
        Ok(self.encoded.len)
    }

    /// True if a frame of `len` bytes does not fit in the active segment (with room left for
    /// the seal, which also holds the frame's end marker).
    pub(crate) fn must_rotate(&self, len: u64) -> bool {
        self.active.offset + len + SEAL_LEN > self.active.capacity
    }

    /// Writes the frame last encoded, from `record` (the one given to [`Writer::encode`]), and
    /// its end marker; payloads left apart go between the encoding's two parts, in one
    /// gathered write.
    ///
    /// # Errors
    /// [`Error::Io`] if the write fails (ENOSPC included): the frame's space is zeroed again
    /// and synced, and the log stays usable; if even that fails, the log is poisoned.
    pub(crate) fn write(&mut self, ctx: &Ctx, record: &Record<'_>) -> Result<Written> {
        let offset = self.active.offset;
        let encoded = self.encoded;
        match encoded.payloads {
            Payloads::Copied => write_or_undo(ctx, &self.active, &[&self.buf], offset)?,
            Payloads::Apart => {
                // NB: the encoding reaches past its payloads' place, so `at` is in bounds.
                let at =
                    usize::try_from(encoded.payloads_at).map_or(0, |at| at.min(self.buf.len()));
                let (head, tail) = self.buf.split_at(at);
                let payloads = record.payloads().iter().map(|e| &e.data[..]);
                let parts: Vec<&[u8]> = std::iter::once(head)
                    .chain(payloads)
                    .chain(std::iter::once(tail))
                    .collect();
                write_or_undo(ctx, &self.active, &parts, offset)?;
            }
        }
        let lsn = self.next_lsn;
        self.active.offset += encoded.len;
        self.next_lsn += 1;
        ctx.sync.wrote(lsn);
        Ok(Written {
            lsn,
            seq: self.active.seq,
            offset,
            encoded,
        })
    }

    /// Seals the active segment and continues in the prepared next one.
    ///
    /// Order, so that a sealed segment always has a durable successor: write the successor's
    /// header and checkpoint and sync them; then write the seal and sync it. Two fdatasyncs
    /// per segment; neither changes file metadata except the seal's trim of unused space. A
    /// frame larger than a segment costs a third: its segment is extended, zero-filled and
    /// synced here, on the write path, before the header goes in.
    ///
    /// # Errors
    /// [`Error::Io`] if the next segment could not be prepared (the log stays usable and tries
    /// again), or if a write or sync fails (the log is poisoned).
    pub(crate) fn rotate(&mut self, ctx: &Ctx, log: &LogState, frame_len: u64) -> Result<Rotation> {
        let Prepared {
            path,
            file,
            recycled,
        } = match self.prepared.take() {
            Some(prepared) => prepared,
            None => self.join_preparation(ctx)?,
        };
        let seq = self.active.seq + 1;
        let salt = segment::new_salt();
        let seal_lsn = self.next_lsn;
        let synced = ctx.sync.synced();
        // The header goes in front once it is known whether the file is still recycled.
        self.buf.clear();
        self.buf.resize(HEADER_LEN, 0);
        let checkpoint = Record::Checkpoint(log.checkpoint());
        record::encode(
            &mut self.buf,
            salt,
            seal_lsn + 1,
            synced,
            &checkpoint,
            Payloads::Copied,
        )
        .map_err(|_| Error::InvalidCall("a checkpoint must encode to less than 4 GiB"))?;
        let records_start = self.buf.len() as u64;
        // Stale bytes follow the checkpoint in a recycled file.
        end_marker(&mut self.buf);
        let poisoning = |e: Error| {
            ctx.sync.poison();
            e
        };
        // A frame larger than a segment gets a segment of its own, zero-filled to fit it.
        let capacity = (records_start + frame_len + SEAL_LEN).max(ctx.options.segment_size);
        let oversized = capacity > ctx.options.segment_size;
        if oversized {
            if let Err(source) = file.allocate_zeroed(capacity) {
                self.prepared = Some(Prepared {
                    path: path.clone(),
                    file,
                    recycled,
                });
                return Err(Error::Io {
                    op: IoOp::Allocate,
                    path,
                    source,
                });
            }
            ctx.sync.sync_data(file.as_ref(), &path)?;
        }
        let header = Header {
            seq,
            salt,
            first_index: log.last_index() + 1,
            recycled: recycled && !oversized,
        };
        if let Some(at) = self.buf.get_mut(..HEADER_LEN) {
            at.copy_from_slice(&header.encode());
        }
        file.write_all_at(&self.buf, 0)
            .map_err(io_err(IoOp::Write, &path))
            .map_err(poisoning)?;
        ctx.sync.sync_data(file.as_ref(), &path)?;

        self.buf.clear();
        let seal = Record::Seal {
            next_seq: seq,
            next_salt: salt,
        };
        // No end marker: the file is trimmed right after the seal.
        record::encode(
            &mut self.buf,
            self.active.salt,
            seal_lsn,
            synced,
            &seal,
            Payloads::Copied,
        )
        .map_err(|_| Error::InvalidCall("a seal always fits"))?;
        let old = &self.active;
        let sealed_len = old.offset + self.buf.len() as u64;
        write_or_undo(ctx, old, &[&self.buf], old.offset)
            .and_then(|()| {
                old.file
                    .set_len(sealed_len)
                    .map_err(io_err(IoOp::SetLen, &old.path))
            })
            .map_err(poisoning)
            .and_then(|()| ctx.sync.sync_data(old.file.as_ref(), &old.path))?;

        self.segments.push_back(SegmentInfo {
            seq,
            first_index: header.first_index,
            path: path.clone(),
        });
        let new = Active {
            seq,
            salt,
            path: path.clone(),
            file: Arc::clone(&file),
            offset: records_start,
            capacity,
        };
        let old = std::mem::replace(&mut self.active, new);
        self.next_lsn = seal_lsn + 2;
        ctx.sync.rotated(seal_lsn + 1, Arc::clone(&file), path);
        self.next = Some(self.spawn_prepare(ctx));
        Ok(Rotation {
            sealed_seq: old.seq,
            sealed_len,
            sealed_file: old.file,
            sealed_path: old.path,
            new_seq: seq,
            new_file: file,
        })
    }

    /// Starts creating the segment after the active one. A failed sync there poisons the
    /// log at once (its directory syncs go through [`SyncPoint::sync_dir`], which does so
    /// itself): after one, the kernel's later syncs of any file may lie.
    fn spawn_prepare(&self, ctx: &Ctx) -> Preparing {
        let fs = Arc::clone(&ctx.fs);
        let sync = Arc::clone(&ctx.sync);
        let dir = ctx.dir.clone();
        let pool = Arc::clone(&ctx.pool);
        let seq = self.active.seq + 1;
        let size = ctx.options.segment_size;
        std::thread::spawn(move || {
            let sync_dir = |d: &Path| sync.sync_dir(fs.as_ref(), d);
            let prepared = segment::prepare(fs.as_ref(), &sync_dir, &dir, seq, size, &pool);
            if let Err(Error::Io {
                op: IoOp::SyncData, ..
            }) = &prepared
            {
                sync.poison();
            }
            prepared
        })
    }

    /// Waits for the background preparation; if it failed, starts it again and returns why.
    fn join_preparation(&mut self, ctx: &Ctx) -> Result<Prepared> {
        let joined = match self.next.take() {
            Some(handle) => handle.join().unwrap_or(Err(Error::InvalidCall(
                "the segment preparing thread panicked",
            ))),
            None => Err(Error::InvalidCall("no segment was being prepared")),
        };
        if joined.is_err() {
            self.next = Some(self.spawn_prepare(ctx));
        }
        joined
    }

    /// Reports a background preparation that has failed (a full disk shows on the next write,
    /// not only at the next rotation). Never waits.
    ///
    /// # Errors
    /// The preparation's [`Error::Io`]; it is being retried.
    pub(crate) fn check_preparation(&mut self, ctx: &Ctx) -> Result<()> {
        if self.next.as_ref().is_some_and(JoinHandle::is_finished) {
            self.prepared = Some(self.join_preparation(ctx)?);
        }
        Ok(())
    }

    /// Waits for the background preparation under way, if any, and keeps what it prepared.
    ///
    /// # Errors
    /// As [`Writer::rotate`] when the preparation failed (it is started again).
    #[cfg(feature = "test-util")]
    pub(crate) fn settle_preparation(&mut self, ctx: &Ctx) -> Result<()> {
        if self.next.is_some() {
            self.prepared = Some(self.join_preparation(ctx)?);
        }
        Ok(())
    }

    /// Waits for the background preparation, so no thread outlives the log.
    pub(crate) fn finish_preparing(&mut self) {
        if let Some(handle) = self.next.take() {
            let _ = handle.join();
        }
    }
}

/// Writes `parts`, one after another, at `offset` of `segment`. If that fails, zeroes the range
/// again and syncs, poisoning the log if even that fails.
///
/// NB: the next frame goes to the same offset. Until the zeros are durable, a power cut could
/// mix its sectors with the failed write's, which would read as damage, not a torn write.
///
/// # Errors
/// [`Error::Io`] of the failed write.
fn write_or_undo(ctx: &Ctx, segment: &Active, parts: &[&[u8]], offset: u64) -> Result<()> {
    let Err(source) = segment.file.write_all_gathered_at(parts, offset) else {
        return Ok(());
    };
    let zeros = vec![0u8; parts.iter().map(|part| part.len()).sum()];
    // NB: a failed undo poisons the log (`sync_data` does so itself); the error to report is
    // the write's own.
    match segment.file.write_all_at(&zeros, offset) {
        Ok(()) => {
            let _ = ctx.sync.sync_data(segment.file.as_ref(), &segment.path);
        }
        Err(_) => ctx.sync.poison(),
    }
    Err(Error::Io {
        op: IoOp::Write,
        path: segment.path.clone(),
        source,
    })
}

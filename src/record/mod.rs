//! The record frame: the unit every write of the log becomes on disk. Pure codec: bytes in,
//! values out, never a file.
//!
//! # Frame layout (format v1, little-endian)
//!
//! | offset | size | field        | meaning                                                   |
//! |-------:|-----:|--------------|-----------------------------------------------------------|
//! |      0 |    4 | `header_crc` | CRC-32 of the segment salt, then bytes `4..32`            |
//! |      4 |    4 | `body_crc`   | CRC-32 of the segment salt, then the body                 |
//! |      8 |    4 | `body_len`   | body length in bytes                                      |
//! |     12 |    1 | `kind`       | [`Kind`]                                                  |
//! |     13 |    3 | reserved     | zero                                                      |
//! |     16 |    8 | `lsn`        | this frame's sequence number; +1 per frame, across files  |
//! |     24 |    8 | `synced_lsn` | every frame up to this one was durable when this was written |
//! |     32 |    n | body         | per kind, below                                           |
//! |   32+n |  0-7 | padding      | zero, up to the next multiple of 8                        |
//!
//! Every frame but a seal is written together with an end marker: [`END_MARKER_LEN`] zeros
//! right after it, in the same write. The marker is no part of the frame (lengths, offsets and
//! checksums ignore it) and the next frame overwrites it.
//!
//! The salt is the segment's random id, so a frame is only ever valid in the file it was
//! written to: zeros and stale bytes in pre-allocated space never decode. Frames start at
//! 8-byte boundaries, so the fixed header never straddles a 512-byte sector. `synced_lsn` is the
//! durability proof recovery uses to tell a torn tail from damaged acknowledged data.
//!
//! # Bodies
//!
//! | kind           | body                                                                   |
//! |----------------|------------------------------------------------------------------------|
//! | 1 `Checkpoint` | compacted index u64, compacted term u64, last index u64, last term u64, hard state, snapshot meta |
//! | 2 `Batch`      | flags u8 (bit 0 hard state, bit 1 snapshot), 3 zero, count u32, first index u64, [hard state], [snapshot meta], count × (term u64, len u32), payloads |
//! | 3 `Truncate`   | index u64: entries after it are removed                                |
//! | 4 `Purge`      | index u64, term u64: the new compaction point                          |
//! | 5 `Snapshot`   | snapshot meta                                                          |
//! | 6 `Seal`       | next segment's sequence number u64, next segment's salt u64            |
//!
//! Hard state: term u64, vote u64, commit u64. Snapshot meta: index u64, term u64, conf state
//! length u32, conf state bytes.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

mod cursor;

use std::borrow::Cow;

use bytes::{BufMut, Bytes};

pub(crate) use cursor::Cursor;

use crate::error::DecodeError;
use crate::types::{Entry, EntryId, HardState, SnapshotMeta};
use crate::wal::Batch;

const HEADER_CRC_OFFSET: usize = 0;
const BODY_CRC_OFFSET: usize = HEADER_CRC_OFFSET + 4;
const BODY_LEN_OFFSET: usize = BODY_CRC_OFFSET + 4;
const KIND_OFFSET: usize = BODY_LEN_OFFSET + 4;
const RESERVED_OFFSET: usize = KIND_OFFSET + 1;
/// Offset of the Lsn field in a frame: a search of stale bytes for frames compares it before
/// any checksum.
pub(crate) const LSN_OFFSET: usize = RESERVED_OFFSET + 3;
const SYNCED_LSN_OFFSET: usize = LSN_OFFSET + 8;
/// Length of the fixed frame header; the body follows it.
pub(crate) const FRAME_HEADER_LEN: usize = SYNCED_LSN_OFFSET + 8;
/// Frames start and end on multiples of this.
pub(crate) const FRAME_ALIGN: u64 = 8;
/// Zeros written after a frame, in the same write, where the next frame will begin: a frame
/// header's worth, so that the end of the log reads as zeros even in a recycled segment,
/// whose stale bytes would otherwise follow the last frame. Any other bytes there are a torn
/// write or damage, never a clean end. Not part of the frame.
pub(crate) const END_MARKER_LEN: usize = FRAME_HEADER_LEN;

const BATCH_ENTRY_LEN: usize = 12;
const FLAG_HARD_STATE: u8 = 1;
const FLAG_SNAPSHOT: u8 = 2;

/// The type tag of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// The log's state when its segment began: the first frame of every segment.
    Checkpoint = 1,
    /// An atomic write of entries, hard state and an installed snapshot.
    Batch = 2,
    /// Removal of every entry after an index.
    Truncate = 3,
    /// Compaction of a prefix.
    Purge = 4,
    /// Metadata of a snapshot taken locally.
    Snapshot = 5,
    /// The last frame of a full segment, naming its successor.
    Seal = 6,
}

impl TryFrom<u8> for Kind {
    type Error = DecodeError;

    fn try_from(tag: u8) -> Result<Self, DecodeError> {
        Ok(match tag {
            1 => Self::Checkpoint,
            2 => Self::Batch,
            3 => Self::Truncate,
            4 => Self::Purge,
            5 => Self::Snapshot,
            6 => Self::Seal,
            found => return Err(DecodeError::UnknownRecordType { found }),
        })
    }
}

/// The log's state at the start of a segment, so that replay can begin at any segment once
/// the older ones are purged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The compaction point: the entry before the first retained one.
    pub compacted: EntryId,
    /// The last entry of the log (equal to `compacted` when the log is empty).
    pub last: EntryId,
    /// The hard state in force.
    pub hard_state: HardState,
    /// The latest snapshot metadata (index 0: none).
    pub snapshot: SnapshotMeta,
}

/// What one frame says. Borrowed when encoding, owned (slices of the read buffer) when decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// See [`Checkpoint`].
    Checkpoint(Checkpoint),
    /// One atomic write. Its entries have consecutive indexes.
    Batch(Cow<'a, Batch>),
    /// Entries after `after` are removed.
    Truncate {
        /// The last index kept.
        after: u64,
    },
    /// The prefix up to and including this id is compacted.
    Purge(EntryId),
    /// Metadata of a snapshot taken locally.
    Snapshot(Cow<'a, SnapshotMeta>),
    /// The segment is full; its successor has this sequence number and salt.
    Seal {
        /// Sequence number of the next segment.
        next_seq: u64,
        /// Salt of the next segment.
        next_salt: u64,
    },
}

impl Record<'_> {
    /// The entries whose payloads [`Payloads::Apart`] leaves out: a batch's; none for other
    /// records.
    pub(crate) fn payloads(&self) -> &[Entry] {
        match self {
            Self::Batch(batch) => &batch.entries,
            _ => &[],
        }
    }

    /// The type tag written for this record.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Checkpoint(_) => Kind::Checkpoint,
            Self::Batch(_) => Kind::Batch,
            Self::Truncate { .. } => Kind::Truncate,
            Self::Purge(_) => Kind::Purge,
            Self::Snapshot(_) => Kind::Snapshot,
            Self::Seal { .. } => Kind::Seal,
        }
    }
}

/// A decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The frame's sequence number.
    pub lsn: u64,
    /// The durability proof written with it.
    pub synced_lsn: u64,
    /// What it says.
    pub record: Record<'static>,
    /// Bytes it occupies, padding included.
    pub len: u64,
}

/// The fixed part of a frame, checked against its checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHeader {
    body_crc: u32,
    body_len: u32,
    kind: Kind,
    /// The frame's sequence number.
    pub(crate) lsn: u64,
    /// The durability proof.
    pub(crate) synced_lsn: u64,
}

impl FrameHeader {
    /// Bytes the whole frame occupies, padding included.
    pub(crate) fn frame_len(&self) -> u64 {
        frame_len(self.body_len as usize)
    }
}

/// Where an encoded frame put things.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Encoded {
    /// Bytes the frame occupies, padding included.
    pub(crate) len: u64,
    /// Offset, from the frame's start, of the first entry payload of a batch (payloads follow
    /// one another in entry order). Zero for other records.
    pub(crate) payloads_at: u64,
    /// Whether the output holds the payloads or leaves them apart ([`Payloads::Apart`] only
    /// when there were entries to leave out).
    pub(crate) payloads: Payloads,
}

/// Bytes a frame with a `body_len` body occupies.
pub(crate) const fn frame_len(body_len: usize) -> u64 {
    (FRAME_HEADER_LEN as u64 + body_len as u64).next_multiple_of(FRAME_ALIGN)
}

/// CRC-32 of `salt` followed by `bytes`: binds a checksum to its segment.
fn checksum(salt: u64, bytes: &[u8]) -> u32 {
    checksum_parts(salt, [bytes])
}

/// [`checksum`] of the concatenation of `parts`.
fn checksum_parts<'a>(salt: u64, parts: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&salt.to_le_bytes());
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize()
}

/// A frame's durability proof can only name frames written before it: `synced_lsn < lsn`.
/// The encoder and the decoder both hold frames to it, so nothing is written that would not
/// read back.
///
/// # Errors
/// [`DecodeError::Malformed`] if `synced_lsn >= lsn`.
fn check_proof(lsn: u64, synced_lsn: u64) -> Result<(), DecodeError> {
    if synced_lsn >= lsn {
        return Err(DecodeError::Malformed {
            what: "durability proof at or past its own frame",
        });
    }
    Ok(())
}

/// Where a batch's payloads go while its frame is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Payloads {
    /// Into the output, which then holds the whole frame.
    #[default]
    Copied,
    /// Nowhere: the frame is the output up to [`Encoded::payloads_at`] (from where the frame
    /// starts), then the payloads of [`Record::payloads`] in order, then the rest of the output
    /// (the padding). Written that way, the payloads go from the caller's buffers to the file
    /// without a copy.
    Apart,
}

/// Appends the frame of `record` to `out`, a batch's `payloads` copied into it or left apart.
///
/// # Errors
/// [`DecodeError::BadLength`] if the body (or a conf state, or the entry count) is longer than
/// its length field can say; [`DecodeError::Malformed`] if `synced_lsn >= lsn` (the decoder
/// refuses such a frame). `out` is then unchanged.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    salt: u64,
    lsn: u64,
    synced_lsn: u64,
    record: &Record<'_>,
    payloads: Payloads,
) -> Result<Encoded, DecodeError> {
    check_proof(lsn, synced_lsn)?;
    let start = out.len();
    out.resize(start + FRAME_HEADER_LEN, 0);
    let frame = FrameStart {
        start,
        salt,
        lsn,
        synced_lsn,
        kind: record.kind(),
    };
    let apart = match payloads {
        Payloads::Copied => &[],
        Payloads::Apart => record.payloads(),
    };
    let encoded = encode_body(out, record, payloads)
        .and_then(|payloads_at| frame.finish(out, payloads_at, apart));
    if encoded.is_err() {
        out.truncate(start);
    }
    encoded
}

/// A frame whose header is still to be filled in, once its body is known.
struct FrameStart {
    start: usize,
    salt: u64,
    lsn: u64,
    synced_lsn: u64,
    kind: Kind,
}

impl FrameStart {
    /// Pads the body and writes the header in front of it. The body is what `out` ends with,
    /// then the payloads of `apart` (left out of `out`); `payloads` is where in `out` a
    /// batch's payloads begin (0 for other records).
    fn finish(
        &self,
        out: &mut Vec<u8>,
        payloads: usize,
        apart: &[Entry],
    ) -> Result<Encoded, DecodeError> {
        let body_start = self.start + FRAME_HEADER_LEN;
        let body = out.get(body_start..).unwrap_or_default();
        let apart_len = apart
            .iter()
            .map(|e| e.data.len())
            .fold(0, usize::saturating_add);
        let body_len = len_u32(body.len().saturating_add(apart_len))?;
        let body_crc = checksum_parts(
            self.salt,
            std::iter::once(body).chain(apart.iter().map(|e| &e.data[..])),
        );
        let len = frame_len(body_len as usize);
        out.resize(self.start + len as usize - apart_len, 0);

        let mut header = [0u8; FRAME_HEADER_LEN];
        put(&mut header, BODY_CRC_OFFSET, &body_crc.to_le_bytes());
        put(&mut header, BODY_LEN_OFFSET, &body_len.to_le_bytes());
        put(&mut header, KIND_OFFSET, &[self.kind as u8]);
        put(&mut header, LSN_OFFSET, &self.lsn.to_le_bytes());
        put(
            &mut header,
            SYNCED_LSN_OFFSET,
            &self.synced_lsn.to_le_bytes(),
        );
        let header_crc = checksum(self.salt, header.get(BODY_CRC_OFFSET..).unwrap_or_default());
        put(&mut header, HEADER_CRC_OFFSET, &header_crc.to_le_bytes());
        put(out, self.start, &header);
        let payloads_at = payloads.saturating_sub(self.start) as u64;
        let payloads = if apart.is_empty() {
            Payloads::Copied
        } else {
            Payloads::Apart
        };
        Ok(Encoded {
            len,
            payloads_at,
            payloads,
        })
    }
}

/// `len` as the format's 32-bit length field.
///
/// # Errors
/// [`DecodeError::BadLength`] if it does not fit.
fn len_u32(len: usize) -> Result<u32, DecodeError> {
    u32::try_from(len).map_err(|_| DecodeError::BadLength {
        len: len as u64,
        max: u64::from(u32::MAX),
    })
}

/// Copies `src` into `dst` at `at`; the callers size `dst` first.
fn put(dst: &mut [u8], at: usize, src: &[u8]) {
    if let Some(slot) = dst.get_mut(at..at + src.len()) {
        slot.copy_from_slice(src);
    }
}

/// Appends the body of `record`, a batch's payloads only if they are to be `Copied`; returns
/// where a batch's payloads begin in `out` (0 for other records).
fn encode_body(
    out: &mut Vec<u8>,
    record: &Record<'_>,
    payloads_go: Payloads,
) -> Result<usize, DecodeError> {
    let mut payloads = 0;
    match record {
        Record::Checkpoint(c) => {
            put_id(out, c.compacted);
            put_id(out, c.last);
            put_hard_state(out, &c.hard_state);
            put_snapshot_meta(out, &c.snapshot)?;
        }
        Record::Batch(batch) => {
            let count = len_u32(batch.entries.len())?;
            let mut flags = 0;
            if batch.hard_state.is_some() {
                flags |= FLAG_HARD_STATE;
            }
            if batch.snapshot.is_some() {
                flags |= FLAG_SNAPSHOT;
            }
            out.put_u8(flags);
            out.put_bytes(0, 3);
            out.put_u32_le(count);
            out.put_u64_le(batch.entries.first().map_or(0, |e| e.index));
            if let Some(hs) = &batch.hard_state {
                put_hard_state(out, hs);
            }
            if let Some(meta) = &batch.snapshot {
                put_snapshot_meta(out, meta)?;
            }
            for entry in &batch.entries {
                out.put_u64_le(entry.term);
                out.put_u32_le(len_u32(entry.data.len())?);
            }
            payloads = out.len();
            if payloads_go == Payloads::Copied {
                for entry in &batch.entries {
                    out.put_slice(&entry.data);
                }
            }
        }
        Record::Truncate { after } => out.put_u64_le(*after),
        Record::Purge(id) => put_id(out, *id),
        Record::Snapshot(meta) => put_snapshot_meta(out, meta)?,
        Record::Seal {
            next_seq,
            next_salt,
        } => {
            out.put_u64_le(*next_seq);
            out.put_u64_le(*next_salt);
        }
    }
    Ok(payloads)
}

fn put_id(out: &mut Vec<u8>, id: EntryId) {
    out.put_u64_le(id.index);
    out.put_u64_le(id.term);
}

fn put_hard_state(out: &mut Vec<u8>, hs: &HardState) {
    out.put_u64_le(hs.term);
    out.put_u64_le(hs.vote);
    out.put_u64_le(hs.commit);
}

fn put_snapshot_meta(out: &mut Vec<u8>, meta: &SnapshotMeta) -> Result<(), DecodeError> {
    let len = len_u32(meta.conf_state.len())?;
    out.put_u64_le(meta.index);
    out.put_u64_le(meta.term);
    out.put_u32_le(len);
    out.put_slice(&meta.conf_state);
    Ok(())
}

/// True when `bytes` holds no frame at all: the never-written space of a segment.
pub(crate) fn is_zero(bytes: &[u8]) -> bool {
    first_nonzero(bytes).is_none()
}

/// Bytes compared at once by the zero scans: segments are mostly long zero runs, and comparing
/// whole blocks lets the compiler use wide loads where a byte loop cannot.
const ZERO_BLOCK: usize = 64;

/// Index of the first non-zero byte of `bytes`, if any.
///
/// Cost: one block comparison per 64 bytes of zeros, then a byte search inside the block
/// that holds the answer.
pub(crate) fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    let blocks = bytes.chunks_exact(ZERO_BLOCK);
    let tail = blocks.remainder();
    let skipped = blocks.take_while(|block| is_zero_block(block)).count() * ZERO_BLOCK;
    let rest = bytes.get(skipped..).unwrap_or(tail);
    rest.iter().position(|&b| b != 0).map(|at| skipped + at)
}

/// All zeros? OR-ing the whole block, with no early exit, compiles to a few vector
/// instructions.
fn is_zero_block(block: &[u8]) -> bool {
    block.iter().fold(0, |acc, &b| acc | b) == 0
}

/// Index of the last non-zero byte of `bytes`, if any; the mirror of [`first_nonzero`].
pub(crate) fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    let blocks = bytes.rchunks_exact(ZERO_BLOCK);
    let head = blocks.remainder();
    let skipped = blocks.take_while(|block| is_zero_block(block)).count() * ZERO_BLOCK;
    let rest = bytes.get(..bytes.len() - skipped).unwrap_or(head);
    rest.iter().rposition(|&b| b != 0)
}

/// Decodes and checks the fixed header at the start of `bytes`.
///
/// # Errors
/// [`DecodeError::Truncated`] if fewer than [`FRAME_HEADER_LEN`] bytes are given,
/// [`DecodeError::Checksum`] if the header does not belong to a segment with this `salt`, and
/// `Malformed` / `UnknownRecordType` for fields the format forbids.
pub(crate) fn decode_header(bytes: &[u8], salt: u64) -> Result<FrameHeader, DecodeError> {
    let header = bytes
        .get(..FRAME_HEADER_LEN)
        .ok_or(DecodeError::Truncated {
            needed: FRAME_HEADER_LEN as u64,
            available: bytes.len() as u64,
        })?;
    let mut cur = Cursor::new(Bytes::copy_from_slice(header));
    let stored = cur.u32()?;
    let computed = checksum(salt, header.get(BODY_CRC_OFFSET..).unwrap_or_default());
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    let body_crc = cur.u32()?;
    let body_len = cur.u32()?;
    let kind = Kind::try_from(cur.u8()?)?;
    cur.zeros(3, "frame reserved bytes")?;
    let lsn = cur.u64()?;
    let synced_lsn = cur.u64()?;
    check_proof(lsn, synced_lsn)?;
    Ok(FrameHeader {
        body_crc,
        body_len,
        kind,
        lsn,
        synced_lsn,
    })
}

/// Decodes the frame at the start of `buf`. Payloads come back as slices of `buf`.
///
/// # Errors
/// Every way the bytes can fail to be a frame of this segment is a [`DecodeError`].
pub(crate) fn decode(buf: &Bytes, salt: u64) -> Result<Frame, DecodeError> {
    let header = decode_header(buf, salt)?;
    let len = header.frame_len();
    let available = buf.len() as u64;
    if len > available {
        return Err(DecodeError::Truncated {
            needed: len,
            available,
        });
    }
    let body_end = FRAME_HEADER_LEN + header.body_len as usize;
    let body = buf.slice(FRAME_HEADER_LEN..body_end);
    let computed = checksum(salt, &body);
    if computed != header.body_crc {
        return Err(DecodeError::Checksum {
            stored: header.body_crc,
            computed,
        });
    }
    if !is_zero(buf.get(body_end..len as usize).unwrap_or_default()) {
        return Err(DecodeError::Malformed {
            what: "frame padding",
        });
    }
    let record = decode_body(header.kind, body)?;
    Ok(Frame {
        lsn: header.lsn,
        synced_lsn: header.synced_lsn,
        record,
        len,
    })
}

fn decode_body(kind: Kind, body: Bytes) -> Result<Record<'static>, DecodeError> {
    let mut cur = Cursor::new(body);
    let record = match kind {
        Kind::Checkpoint => Record::Checkpoint(Checkpoint {
            compacted: get_id(&mut cur)?,
            last: get_id(&mut cur)?,
            hard_state: get_hard_state(&mut cur)?,
            snapshot: get_snapshot_meta(&mut cur)?,
        }),
        Kind::Batch => Record::Batch(Cow::Owned(get_batch(&mut cur)?)),
        Kind::Truncate => Record::Truncate { after: cur.u64()? },
        Kind::Purge => Record::Purge(get_id(&mut cur)?),
        Kind::Snapshot => Record::Snapshot(Cow::Owned(get_snapshot_meta(&mut cur)?)),
        Kind::Seal => Record::Seal {
            next_seq: cur.u64()?,
            next_salt: cur.u64()?,
        },
    };
    cur.finish("bytes after the record body")?;
    Ok(record)
}

fn get_batch(cur: &mut Cursor) -> Result<Batch, DecodeError> {
    let flags = cur.u8()?;
    if flags & !(FLAG_HARD_STATE | FLAG_SNAPSHOT) != 0 {
        return Err(DecodeError::Malformed {
            what: "batch flags",
        });
    }
    cur.zeros(3, "batch reserved bytes")?;
    let count = cur.u32()? as usize;
    let first_index = cur.u64()?;
    if count == 0 && first_index != 0 {
        return Err(DecodeError::Malformed {
            what: "first index of a batch without entries",
        });
    }
    let hard_state = if flags & FLAG_HARD_STATE != 0 {
        Some(get_hard_state(cur)?)
    } else {
        None
    };
    let snapshot = if flags & FLAG_SNAPSHOT != 0 {
        Some(get_snapshot_meta(cur)?)
    } else {
        None
    };
    let table_len = count
        .checked_mul(BATCH_ENTRY_LEN)
        .ok_or(DecodeError::BadLength {
            len: count as u64,
            max: u64::from(u32::MAX),
        })?;
    let mut table = Cursor::new(cur.bytes(table_len)?);
    let mut entries = Vec::with_capacity(count);
    for i in 0..count as u64 {
        let index = first_index.checked_add(i).ok_or(DecodeError::Malformed {
            what: "entry index overflows",
        })?;
        let term = table.u64()?;
        let len = table.u32()? as usize;
        entries.push(Entry {
            index,
            term,
            data: cur.bytes(len)?,
        });
    }
    Ok(Batch {
        snapshot,
        entries,
        hard_state,
    })
}

fn get_id(cur: &mut Cursor) -> Result<EntryId, DecodeError> {
    let index = cur.u64()?;
    let term = cur.u64()?;
    Ok(EntryId { term, index })
}

fn get_hard_state(cur: &mut Cursor) -> Result<HardState, DecodeError> {
    Ok(HardState {
        term: cur.u64()?,
        vote: cur.u64()?,
        commit: cur.u64()?,
    })
}

fn get_snapshot_meta(cur: &mut Cursor) -> Result<SnapshotMeta, DecodeError> {
    let index = cur.u64()?;
    let term = cur.u64()?;
    let len = cur.u32()? as usize;
    Ok(SnapshotMeta {
        index,
        term,
        conf_state: cur.bytes(len)?,
    })
}

#[cfg(test)]
mod tests;

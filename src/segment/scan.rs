//! Reading the frames of a segment back: in order until they stop, and, past a stop, the search
//! for a later frame that proves the stop is damage rather than a torn tail.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use bytes::Bytes;

use crate::error::DecodeError;
use crate::record::{self, FRAME_ALIGN, FRAME_HEADER_LEN, Frame, Record};

/// Where and why the frames of a segment stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stop {
    /// Offset of the first byte that is not a valid frame.
    pub(crate) offset: u64,
    /// Why it is not: `None` for never-written (zero) space.
    pub(crate) error: Option<DecodeError>,
}

impl Stop {
    /// The stop at a frame whose sequence number is not the one expected.
    fn out_of_order(offset: u64) -> Self {
        let error = DecodeError::Malformed {
            what: "frame sequence number out of order",
        };
        Self {
            offset,
            error: Some(error),
        }
    }
}

/// The frames of a segment buffer in file order, each checked against the segment's salt and
/// the expected sequence number. Yields `Err(Stop)` once and then ends.
#[derive(Debug)]
pub(crate) struct Frames<'a> {
    buf: &'a Bytes,
    salt: u64,
    /// Offset of the next frame. Invariant: a multiple of the frame alignment.
    pos: u64,
    /// The sequence number the next frame must carry; `None` accepts any (the first frame of
    /// the oldest segment).
    next_lsn: Option<u64>,
    done: bool,
}

impl<'a> Frames<'a> {
    /// Frames of `buf` from offset `start`.
    pub(crate) fn new(buf: &'a Bytes, salt: u64, start: u64, next_lsn: Option<u64>) -> Self {
        Self {
            buf,
            salt,
            pos: start,
            next_lsn,
            done: false,
        }
    }

    fn next_frame(&mut self) -> Result<(u64, Frame), Stop> {
        let offset = self.pos;
        let rest = usize::try_from(offset)
            .ok()
            .and_then(|at| self.buf.get(at..));
        let rest = rest.unwrap_or_default();
        let head = rest.get(..FRAME_HEADER_LEN).unwrap_or(rest);
        if record::is_zero(head) {
            return Err(Stop {
                offset,
                error: None,
            });
        }
        let frame_buf = self.buf.slice_ref(rest);
        let frame = record::decode(&frame_buf, self.salt).map_err(|error| Stop {
            offset,
            error: Some(error),
        })?;
        if self.next_lsn.is_some_and(|want| want != frame.lsn) {
            return Err(Stop::out_of_order(offset));
        }
        self.next_lsn = frame.lsn.checked_add(1);
        self.pos += frame.len;
        Ok((offset, frame))
    }
}

impl Iterator for Frames<'_> {
    type Item = Result<(u64, Frame), Stop>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_frame();
        self.done = item.is_err();
        Some(item)
    }
}

/// A segment's frames decoded (and so checksum-verified) ahead of replay, which lets several
/// threads verify segments at once: every frame from the start up to the first seal, then
/// where they stop if they stop before one.
///
/// Which sequence number the first frame must carry is known only once the previous segment
/// is replayed; [`Decoded::expect_first`] checks it then. From there on, it yields exactly
/// what [`Frames`] started with that sequence number would, stopping at a seal as replay does.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// Frames not yielded yet, in file order, each with its offset.
    frames: std::vec::IntoIter<(u64, Frame)>,
    /// Where the frames stop, yielded after the last one; `None` once yielded, or if they
    /// end with a seal.
    stop: Option<Stop>,
    /// Offset just past the last frame yielded (the start before any).
    pos: u64,
    /// Where the decoded frames end: at their stop, or after the seal.
    end: u64,
    /// Offset just past the last non-zero byte at or after `end` (`end` if none).
    bytes_end: u64,
    /// Entries in the frames' batches.
    entries: usize,
}

impl Decoded {
    /// Decodes the frames of `buf` from offset `start` up to and including the first seal,
    /// and finds the end of whatever non-zero bytes follow them.
    ///
    /// Cost: a checksum over every frame and a scan of the rest of `buf` for non-zero bytes;
    /// one allocation per batch for its entry list, and one reference count increment per
    /// entry payload.
    pub(crate) fn new(buf: &Bytes, salt: u64, start: u64) -> Self {
        let mut frames = Vec::new();
        let mut stop = None;
        let mut end = start;
        let mut entries = 0;
        for item in Frames::new(buf, salt, start, None) {
            match item {
                Ok((offset, frame)) => {
                    end = offset + frame.len;
                    let sealed = match &frame.record {
                        Record::Batch(batch) => {
                            entries += batch.entries.len();
                            false
                        }
                        Record::Seal { .. } => true,
                        _ => false,
                    };
                    frames.push((offset, frame));
                    if sealed {
                        break;
                    }
                }
                Err(at) => {
                    end = at.offset;
                    stop = Some(at);
                }
            }
        }
        Self {
            frames: frames.into_iter(),
            stop,
            pos: start,
            end,
            bytes_end: last_nonzero(buf, end),
            entries,
        }
    }

    /// Holds the first frame to sequence number `next_lsn` (any if `None`): if it carries
    /// another, the frames stop there, as [`Frames`] would stop.
    pub(crate) fn expect_first(mut self, next_lsn: Option<u64>) -> Self {
        let first = self.frames.as_slice().first();
        if let (Some(want), Some((offset, frame))) = (next_lsn, first)
            && frame.lsn != want
        {
            self.stop = Some(Stop::out_of_order(*offset));
            self.frames = Vec::new().into_iter();
            self.entries = 0;
        }
        self
    }

    /// Offset just past the last frame yielded.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// Offset just past the last non-zero byte of `buf` (the buffer decoded) at or after
    /// `from`; [`last_nonzero`], but without a second scan when `from` is where the frames
    /// end.
    pub(crate) fn bytes_end(&self, buf: &[u8], from: u64) -> u64 {
        if from == self.end {
            self.bytes_end
        } else {
            last_nonzero(buf, from)
        }
    }

    /// Entries in the batches of the frames not yielded yet, and in those yielded.
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }
}

impl Iterator for Decoded {
    type Item = Result<(u64, Frame), Stop>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.frames.next() {
            Some((offset, frame)) => {
                self.pos = offset + frame.len;
                Some(Ok((offset, frame)))
            }
            None => self.stop.take().map(Err),
        }
    }
}

/// Looks past a stop for proof that it is damaged acknowledged data: a valid frame at or after
/// `from` whose durability proof covers frame `lost_lsn` (it was written after a sync that made
/// `lost_lsn` durable). Returns the offset of the first such frame.
///
/// Cost: a checksum of 32 bytes at every aligned offset holding non-zero bytes; zero runs are
/// skipped.
pub(crate) fn find_proof(buf: &Bytes, salt: u64, from: u64, lost_lsn: u64) -> Option<u64> {
    let mut pos = from.next_multiple_of(FRAME_ALIGN);
    while let Some(rest) = usize::try_from(pos).ok().and_then(|at| buf.get(at..)) {
        if rest.len() < FRAME_HEADER_LEN {
            return None;
        }
        let skip = record::first_nonzero(rest)?;
        if skip >= FRAME_ALIGN as usize {
            pos += (skip as u64 / FRAME_ALIGN) * FRAME_ALIGN;
            continue;
        }
        let proves = record::decode_header(rest, salt).is_ok_and(|h| h.synced_lsn >= lost_lsn)
            && record::decode(&buf.slice_ref(rest), salt).is_ok();
        if proves {
            return Some(pos);
        }
        pos += FRAME_ALIGN;
    }
    None
}

/// The unit a disk writes whole: a write torn by a power cut is torn at these boundaries.
pub(crate) const SECTOR: u64 = 512;

/// Could the bad frame at `offset` be a write torn by a power cut, rather than damage?
///
/// Every frame is written into space that was zero-filled and synced first, so a sector a torn
/// write did not reach still reads as zeros. The frame (its claimed extent if its header is
/// intact, else the header alone) can be torn only if some sector's share of it is all zeros,
/// or if it reaches past the end of the file. A frame whose every sector holds data, yet fails
/// its checks, was damaged.
pub(crate) fn torn_plausible(buf: &[u8], offset: u64, salt: u64) -> bool {
    let rest = usize::try_from(offset)
        .ok()
        .and_then(|at| buf.get(at..))
        .unwrap_or_default();
    let extent =
        record::decode_header(rest, salt).map_or(FRAME_HEADER_LEN as u64, |h| h.frame_len());
    let end = offset.saturating_add(extent);
    if end > buf.len() as u64 {
        return true;
    }
    let mut at = offset;
    while at < end {
        let piece_end = (at / SECTOR + 1).saturating_mul(SECTOR).min(end);
        let piece = buf.get(at as usize..piece_end as usize).unwrap_or_default();
        if record::is_zero(piece) {
            return true;
        }
        at = piece_end;
    }
    false
}

/// Offset just past the last non-zero byte of `buf` at or after `from` (`from` itself if all
/// are zero): the end of whatever a torn write left behind.
pub(crate) fn last_nonzero(buf: &[u8], from: u64) -> u64 {
    let tail = usize::try_from(from)
        .ok()
        .and_then(|at| buf.get(at..))
        .unwrap_or_default();
    record::last_nonzero(tail).map_or(from, |at| from + at as u64 + 1)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::record::encode;
    use crate::wal::Batch;
    use crate::{Entry, HardState};

    const SALT: u64 = 99;

    fn frames(specs: &[(u64, u64)]) -> (Vec<u8>, Vec<u64>) {
        let mut out = vec![0u8; 16];
        let mut offsets = Vec::new();
        for &(lsn, synced) in specs {
            offsets.push(out.len() as u64);
            let batch = Batch {
                entries: vec![Entry::new(lsn, 1, vec![lsn as u8; 20])],
                hard_state: Some(HardState {
                    term: 1,
                    vote: 0,
                    commit: 0,
                }),
                snapshot: None,
            };
            encode(
                &mut out,
                SALT,
                lsn,
                synced,
                &Record::Batch(Cow::Owned(batch)),
            )
            .unwrap();
        }
        out.resize(out.len() + 256, 0);
        (out, offsets)
    }

    #[test]
    fn frames_stop_at_zeros_and_at_damage() {
        let (mut bytes, offsets) = frames(&[(1, 0), (2, 1), (3, 2)]);
        let buf = Bytes::from(bytes.clone());
        let lsns: Vec<u64> = Frames::new(&buf, SALT, 16, Some(1))
            .map_while(Result::ok)
            .map(|(_, f)| f.lsn)
            .collect();
        assert_eq!(lsns, [1, 2, 3]);
        let mut scan = Frames::new(&buf, SALT, 16, None);
        let stop = scan.by_ref().find_map(Result::err).unwrap();
        assert_eq!(stop.error, None);
        assert!(scan.next().is_none(), "a scan ends after its stop");

        bytes[offsets[1] as usize + 40] ^= 1;
        let buf = Bytes::from(bytes);
        let stop = Frames::new(&buf, SALT, 16, None)
            .find_map(Result::err)
            .unwrap();
        assert_eq!(stop.offset, offsets[1]);
        assert!(matches!(stop.error, Some(DecodeError::Checksum { .. })));
    }

    #[test]
    fn out_of_order_sequence_numbers_stop_the_scan() {
        let (bytes, offsets) = frames(&[(5, 0), (7, 0)]);
        let buf = Bytes::from(bytes);
        let stop = Frames::new(&buf, SALT, 16, Some(5))
            .find_map(Result::err)
            .unwrap();
        assert_eq!(stop.offset, offsets[1]);
        assert!(matches!(stop.error, Some(DecodeError::Malformed { .. })));
    }

    #[test]
    fn decoded_frames_yield_what_frames_would_once_the_first_lsn_is_known() {
        let (bytes, _) = frames(&[(4, 0), (5, 4), (6, 5)]);
        let buf = Bytes::from(bytes);
        for first in [None, Some(4), Some(5), Some(3)] {
            let scan: Vec<_> = Frames::new(&buf, SALT, 16, first).collect();
            let decoded: Vec<_> = Decoded::new(&buf, SALT, 16).expect_first(first).collect();
            assert_eq!(decoded, scan, "first lsn {first:?}");
        }
    }

    #[test]
    fn decoded_frames_end_at_the_seal_and_know_what_follows() {
        let (mut bytes, offsets) = frames(&[(1, 0), (2, 1)]);
        bytes.truncate(bytes.len() - 256);
        let seal_at = bytes.len() as u64;
        let seal = Record::Seal {
            next_seq: 2,
            next_salt: 3,
        };
        encode(&mut bytes, SALT, 3, 2, &seal).unwrap();
        let end = bytes.len() as u64;
        let (after, _) = frames(&[(4, 3)]);
        bytes.extend_from_slice(&after);
        let buf = Bytes::from(bytes.clone());
        let last = bytes.iter().rposition(|&b| b != 0).unwrap() as u64 + 1;

        let decoded = Decoded::new(&buf, SALT, 16);
        assert_eq!(
            decoded.entries(),
            2,
            "the frame after the seal is not counted"
        );
        // (from, end of the non-zero bytes from there)
        for (from, want) in [(end, last), (offsets[1], last), (last, last)] {
            assert_eq!(decoded.bytes_end(&buf, from), want, "from {from}");
        }
        let at: Vec<u64> = decoded.map(|item| item.unwrap().0).collect();
        assert_eq!(at, [offsets[0], offsets[1], seal_at]);
    }

    #[test]
    fn a_later_frame_proves_damage_only_if_its_sync_covered_it() {
        // Frame 2 is lost; frame 3 was written before any sync, frame 4 after frame 2's sync.
        let (bytes, offsets) = frames(&[(1, 0), (2, 1), (3, 1), (4, 3)]);
        let buf = Bytes::from(bytes);
        // (lost lsn, search from, proof found at)
        let cases = [
            (2, offsets[1] + 8, Some(offsets[3])),
            (4, offsets[3] + 8, None),
        ];
        for (lost, from, want) in cases {
            assert_eq!(find_proof(&buf, SALT, from, lost), want, "lost {lost}");
        }
        assert_eq!(
            find_proof(&buf, SALT + 1, offsets[1] + 8, 2),
            None,
            "other salt"
        );
    }

    #[test]
    fn only_a_frame_with_an_unwritten_sector_can_be_torn() {
        // One frame spanning sectors 0..=2 of a pre-zeroed buffer, written at offset 16.
        let mut big = vec![0u8; 4096];
        let mut frame = Vec::new();
        let batch = Batch {
            entries: vec![Entry::new(1, 1, vec![9u8; 1100])],
            ..Batch::default()
        };
        encode(&mut frame, SALT, 1, 0, &Record::Batch(Cow::Owned(batch))).unwrap();
        big[16..16 + frame.len()].copy_from_slice(&frame);
        let flipped = |at: usize| {
            let mut b = big.clone();
            b[at] ^= 0x10;
            b
        };
        let zeroed = |sector: usize| {
            let mut b = big.clone();
            let lo = (sector * 512).max(16);
            b[lo..(sector + 1) * 512].fill(0);
            b
        };
        // (bytes, torn plausible)
        let cases = [
            (flipped(600), false),
            (flipped(20), false),
            (zeroed(1), true),
            (zeroed(2), true),
            (zeroed(0), true),
            (flipped(600)[..1024].to_vec(), true),
        ];
        for (i, (buf, want)) in cases.into_iter().enumerate() {
            assert_eq!(torn_plausible(&buf, 16, SALT), want, "case {i}");
        }
    }

    #[test]
    fn last_nonzero_finds_the_end_of_leftovers() {
        let buf = [1u8, 0, 0, 5, 0, 0];
        // (from, end)
        for (from, end) in [(0, 4), (1, 4), (4, 4), (6, 6), (9, 9)] {
            assert_eq!(last_nonzero(&buf, from), end, "from {from}");
        }
    }
}

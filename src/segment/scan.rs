//! Reading the frames of a segment back: in order until they stop, and, past a stop, the search
//! for a later frame that proves the stop is damage rather than a torn tail.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use bytes::Bytes;

use super::Header;
use crate::error::DecodeError;
use crate::record::{self, FRAME_ALIGN, FRAME_HEADER_LEN, Frame, FrameHeader, Record};
use crate::wal::Batch;

/// Where and why the frames of a segment stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stop {
    /// Offset of the first byte that is not a valid frame.
    pub(crate) offset: u64,
    /// Why it is not: `None` for zeros (never-written space, or an end marker).
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

/// Lsns a frame found past a stop may carry, from the first lost one on. No log holds more
/// frames than this past a stop (it would be 32 TiB of frame headers), and an Lsn field
/// outside the window costs a search a compare instead of a checksum.
const LSN_WINDOW: u64 = 1 << 40;

/// Valid frames of `salt` at or after `from` (at every aligned offset) whose Lsn is at least
/// `first_lsn`, in file order: what this segment's writer may have left past a stop.
///
/// Frames of an earlier life of a recycled file never qualify: they carry another salt, and
/// lower Lsns (the log's Lsns only grow, and a file is recycled only after a durable purge
/// newer than all of its frames).
///
/// Every byte of `buf` from `zeros_from` on is zero: a frame's Lsn field (at least 1) lies
/// before it, and the search stops there.
///
/// Cost: one pass over the words where an Lsn field would be up to `zeros_from` (one compare
/// each, zeros and stale bytes alike), and two checksums at each offset whose word falls in
/// the window.
fn frames_from(
    buf: &Bytes,
    salt: u64,
    from: u64,
    first_lsn: u64,
    zeros_from: u64,
) -> impl Iterator<Item = (u64, FrameHeader)> + '_ {
    let start = from.next_multiple_of(FRAME_ALIGN);
    // NB: every word starting before `zeros_from` ends before `search_end`; a frame's Lsn is
    // at least 1 (its proof is below it), so its field has a non-zero byte before `zeros_from`.
    let search_end = usize::try_from(zeros_from.saturating_add(WORD as u64))
        .map_or(buf.len(), |end| end.min(buf.len()));
    // The Lsn field of a frame at `at` is the word at `at + LSN_OFFSET`.
    let fields = usize::try_from(start)
        .ok()
        .and_then(|at| buf.get(at + record::LSN_OFFSET..search_end))
        .unwrap_or_default();
    let mut word = 0;
    std::iter::from_fn(move || {
        while let Some(found) = fields
            .get(word * WORD..)
            .and_then(|rest| first_in_window(rest, first_lsn))
        {
            let at = start + ((word + found) * WORD) as u64;
            word += found + 1;
            let rest = usize::try_from(at).ok().and_then(|at| buf.get(at..))?;
            if let Ok(header) = record::decode_header(rest, salt)
                && record::decode(&buf.slice_ref(rest), salt).is_ok()
            {
                return Some((at, header));
            }
        }
        None
    })
}

/// Bytes of a frame's Lsn field, and the step between possible frame starts.
const WORD: usize = FRAME_ALIGN as usize;

/// Index of the first little-endian word of `fields` in `first_lsn..first_lsn + LSN_WINDOW`.
/// Checks 8 words at a time without a branch per word, so a run of stale bytes or zeros goes
/// by at close to memory speed.
fn first_in_window(fields: &[u8], first_lsn: u64) -> Option<usize> {
    const BLOCK: usize = 8 * WORD;
    let width = LSN_WINDOW.min(u64::MAX - first_lsn);
    let hit = |word: &[u8]| {
        let lsn = u64::from_le_bytes(word.try_into().unwrap_or_default());
        lsn.wrapping_sub(first_lsn) < width
    };
    let blocks = fields.chunks_exact(BLOCK);
    let skipped = blocks
        .take_while(|block| !block.chunks_exact(WORD).fold(false, |any, w| any | hit(w)))
        .count()
        * BLOCK;
    let found = fields.get(skipped..)?.chunks_exact(WORD).position(hit)?;
    Some(skipped / WORD + found)
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
    /// Entries in the frames' batches.
    entries: usize,
    /// Every byte of the buffer from here on is zero; the end of the last non-zero byte at or
    /// after where the frames end (that end itself if there is none).
    zeros_from: u64,
}

impl Decoded {
    /// Decodes the frames of `buf` from offset `start` up to and including the first seal.
    ///
    /// Cost: a checksum over every frame; one allocation per batch for its entry list, and one
    /// reference count increment per entry payload; one pass over the bytes after the frames
    /// (zeros, in a segment not full yet), so that replay, which runs in order on one thread,
    /// never makes it.
    pub(crate) fn new(buf: &Bytes, salt: u64, start: u64) -> Self {
        let mut frames = Vec::new();
        let mut stop = None;
        let mut entries = 0;
        let mut end = start;
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
            entries,
            zeros_from: last_nonzero(buf, end),
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

    /// The batches of the frames not yielded yet, in order, for the caller to take apart
    /// before replay: the frames then yield what is left of them.
    pub(crate) fn batches_mut(&mut self) -> impl Iterator<Item = &mut Batch> {
        let frames = self.frames.as_mut_slice().iter_mut();
        frames.filter_map(|(_, frame)| match &mut frame.record {
            Record::Batch(batch) => Some(batch.to_mut()),
            _ => None,
        })
    }

    /// Every byte of the buffer from here on is zero: searches past the frames stop here.
    pub(crate) fn zeros_from(&self) -> u64 {
        self.zeros_from
    }

    /// Offset just past the last frame yielded.
    pub(crate) fn position(&self) -> u64 {
        self.pos
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
/// Cost: as [`frames_from`], whose `zeros_from` this takes.
pub(crate) fn find_proof(
    buf: &Bytes,
    salt: u64,
    from: u64,
    lost_lsn: u64,
    zeros_from: u64,
) -> Option<u64> {
    frames_from(buf, salt, from, lost_lsn, zeros_from)
        .find(|(_, header)| header.synced_lsn >= lost_lsn)
        .map(|(at, _)| at)
}

/// End of what the current life of a recycled segment wrote at or after `from`, a stop: the
/// last valid frame of `salt` with an Lsn of at least `first_lsn`, or the frame at `from`
/// itself if its header is valid (its body torn), clamped to the buffer; `from` if neither
/// exists. Recovery zeroes up to there. Left in place, a whole frame would be read back as
/// soon as the writer, continuing at the stop with other frames, brought the log's Lsns up to
/// its own; the torn frame is zeroed so the report can name its bytes.
///
/// Cost: as [`frames_from`], whose `zeros_from` this takes.
fn last_frame_end(buf: &Bytes, salt: u64, from: u64, first_lsn: u64, zeros_from: u64) -> u64 {
    let rest = usize::try_from(from)
        .ok()
        .and_then(|at| buf.get(at..))
        .unwrap_or_default();
    let torn_end = record::decode_header(rest, salt)
        .ok()
        .filter(|header| header.lsn >= first_lsn)
        .map_or(from, |header| {
            (from + header.frame_len()).min(buf.len() as u64)
        });
    frames_from(buf, salt, from, first_lsn, zeros_from)
        .last()
        .map_or(from, |(at, header)| at + header.frame_len())
        .max(torn_end)
}

/// End of whatever the writer of segment `buf` (with `header`) left at or after `from`, Lsn
/// `first_lsn` on, that is not part of the log: in a zero-filled segment the last non-zero
/// byte, in a recycled one the end of the last frame of its salt ([`last_frame_end`]; its other
/// bytes are stale, and stay). Every byte from `zeros_from` on is zero (`buf.len()` if that is
/// all that is known); nothing past it is looked at.
pub(crate) fn leftovers_end(
    header: &Header,
    buf: &Bytes,
    from: u64,
    first_lsn: u64,
    zeros_from: u64,
) -> u64 {
    if header.recycled {
        last_frame_end(buf, header.salt, from, first_lsn, zeros_from)
    } else {
        let clipped =
            usize::try_from(zeros_from).map_or(&buf[..], |end| buf.get(..end).unwrap_or(buf));
        last_nonzero(clipped, from)
    }
}

/// End of what recovery drops at `stop`, where the frames of segment `buf` (with `header`)
/// stop, Lsn `first_lsn` on: [`leftovers_end`], and in a recycled segment whose bytes at the
/// stop are not zeros, at least the end marker's slot. Every frame but a seal was written with
/// zeros after it, so such bytes are a torn write or the damaged header of the newest frame,
/// never stale bytes: they are dropped, and with that reported, and the marker restored.
/// `zeros_from` as for [`leftovers_end`].
pub(crate) fn torn_end(
    header: &Header,
    buf: &Bytes,
    stop: &Stop,
    first_lsn: u64,
    zeros_from: u64,
) -> u64 {
    let leftovers = leftovers_end(header, buf, stop.offset, first_lsn, zeros_from);
    if header.recycled && stop.error.is_some() {
        let marker_end = stop.offset.saturating_add(record::END_MARKER_LEN as u64);
        leftovers.max(marker_end.min(buf.len() as u64))
    } else {
        leftovers
    }
}

/// The unit a disk writes whole: a write torn by a power cut is torn at these boundaries.
pub(crate) const SECTOR: u64 = 512;

/// Could the bad frame at `offset` of a zero-filled segment be a write torn by a power cut,
/// rather than damage? (In a recycled segment any could: stale bytes fill every sector.)
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
fn last_nonzero(buf: &[u8], from: u64) -> u64 {
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
    use crate::record::{Payloads, encode};
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
                Payloads::Copied,
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
        encode(&mut bytes, SALT, 3, 2, &seal, Payloads::Copied).unwrap();
        let end = bytes.len() as u64;
        let (after, _) = frames(&[(4, 3)]);
        bytes.extend_from_slice(&after);
        let buf = Bytes::from(bytes.clone());

        let decoded = Decoded::new(&buf, SALT, 16);
        assert_eq!(
            decoded.entries(),
            2,
            "the frame after the seal is not counted"
        );
        assert!(end < buf.len() as u64, "bytes follow the seal");
        let last_byte = buf.iter().rposition(|&b| b != 0).unwrap() as u64;
        assert_eq!(
            decoded.zeros_from(),
            last_byte + 1,
            "what follows ends there"
        );
        let at: Vec<u64> = decoded.map(|item| item.unwrap().0).collect();
        assert_eq!(at, [offsets[0], offsets[1], seal_at]);
    }

    #[test]
    fn searches_past_a_stop_end_where_the_non_zero_bytes_end_and_miss_nothing() {
        // Frame 2 is damaged; frame 3 proves it lost, and its payload, like its padding, ends
        // in zeros: the frame reaches past the last non-zero byte.
        let (mut bytes, offsets) = frames(&[(1, 0), (2, 1)]);
        bytes.truncate(bytes.len() - 256);
        let batch = Batch {
            entries: vec![Entry::new(3, 1, vec![0u8; 100])],
            ..Batch::default()
        };
        let proof_at = bytes.len() as u64;
        encode(
            &mut bytes,
            SALT,
            3,
            2,
            &Record::Batch(Cow::Owned(batch)),
            Payloads::Copied,
        )
        .unwrap();
        let proof_end = bytes.len() as u64;
        bytes.resize(bytes.len() + 4096, 0);
        bytes[offsets[1] as usize + 40] ^= 1;
        let buf = Bytes::from(bytes);
        let decoded = Decoded::new(&buf, SALT, 16);
        let zeros = decoded.zeros_from();
        assert!(zeros < proof_end, "the proof ends in zeros");
        assert!(buf[zeros as usize..].iter().all(|&b| b == 0));
        assert_ne!(buf[zeros as usize - 1], 0, "the last non-zero byte ends it");
        assert_eq!(
            find_proof(&buf, SALT, offsets[1] + 8, 2, zeros),
            Some(proof_at)
        );
        let header = Header {
            seq: 1,
            salt: SALT,
            first_index: 1,
            recycled: false,
        };
        assert_eq!(leftovers_end(&header, &buf, offsets[1], 2, zeros), zeros);
        assert_eq!(leftovers_end(&header, &buf, zeros + 8, 2, zeros), zeros + 8);
    }

    #[test]
    fn a_later_frame_proves_damage_only_if_its_sync_covered_it() {
        // Frame 2 is lost; frame 3 was written before any sync, frame 4 after frame 2's sync.
        let (bytes, offsets) = frames(&[(1, 0), (2, 1), (3, 1), (4, 3)]);
        let buf = Bytes::from(bytes);
        let zeros = buf.len() as u64;
        // (lost lsn, search from, proof found at)
        let cases = [
            (2, offsets[1] + 8, Some(offsets[3])),
            (4, offsets[3] + 8, None),
        ];
        for (lost, from, want) in cases {
            assert_eq!(
                find_proof(&buf, SALT, from, lost, zeros),
                want,
                "lost {lost}"
            );
        }
        assert_eq!(
            find_proof(&buf, SALT + 1, offsets[1] + 8, 2, zeros),
            None,
            "other salt"
        );
    }

    #[test]
    fn in_stale_bytes_only_frames_of_this_salt_and_life_are_found() {
        // An earlier life (salt 7, Lsns 1..=6), written over by this one (salt 99) up to Lsn
        // 11; frame 12 lost at the stop, frame 13 (proof of 11 only) left after it.
        let mut old = vec![0u8; 16];
        for lsn in 1..=6 {
            let batch = Batch {
                entries: vec![Entry::new(lsn, 1, vec![0xee; 90])],
                ..Batch::default()
            };
            encode(
                &mut old,
                7,
                lsn,
                0,
                &Record::Batch(Cow::Owned(batch)),
                Payloads::Copied,
            )
            .unwrap();
        }
        let old_len = (old.len() as u64 - 16) / 6;
        let (new, offsets) = frames(&[(10, 9), (11, 10), (12, 11), (13, 11)]);
        let new_len = offsets[1] - offsets[0];
        let end_of_13 = offsets[3] + new_len;
        let mut bytes = old.clone();
        bytes[..end_of_13 as usize].copy_from_slice(&new[..end_of_13 as usize]);
        let stop = offsets[2];
        bytes[stop as usize + 40] ^= 1;
        let buf = Bytes::from(bytes);
        assert!(
            end_of_13 < 16 + 4 * old_len,
            "stale frames are left after the new ones"
        );
        // (salt, first Lsn, end found)
        let cases = [
            (SALT, 12, end_of_13),
            (SALT, 1, end_of_13),
            (SALT, 14, stop),
            (7, 1, 16 + 6 * old_len),
            (7, 7, stop),
        ];
        for (salt, first, want) in cases {
            let got = last_frame_end(&buf, salt, stop, first, buf.len() as u64);
            assert_eq!(got, want, "salt {salt}, from Lsn {first}");
        }
        let zeros = buf.len() as u64;
        assert_eq!(find_proof(&buf, SALT, stop + 8, 12, zeros), None);
        assert_eq!(
            find_proof(&buf, SALT, stop + 8, 11, zeros),
            Some(offsets[3])
        );
    }

    #[test]
    fn the_window_search_finds_the_first_word_in_range_across_blocks() {
        // (index of the word set, its value, found at); 70 words of 7 otherwise, and 5 more
        // bytes (a partial word, never read, holding what would be a hit).
        let cases = [
            (0, 50, Some(0)),
            (7, 50, Some(7)),
            (8, 50, Some(8)),
            (63, 50 + LSN_WINDOW - 1, Some(63)),
            (64, 49, None),
            (69, 50 + LSN_WINDOW, None),
            (69, 51, Some(69)),
        ];
        for (at, value, want) in cases {
            let mut words = vec![7u64; 70];
            words[at] = value;
            let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            bytes.extend_from_slice(&50u64.to_le_bytes()[..5]);
            assert_eq!(first_in_window(&bytes, 50), want, "word {at} = {value}");
        }
    }

    #[test]
    fn a_torn_frame_with_a_valid_header_is_measured_to_its_claimed_end() {
        let (mut bytes, offsets) = frames(&[(1, 0), (2, 1)]);
        let len = offsets[1] - offsets[0];
        bytes[offsets[0] as usize + 40] ^= 1;
        let buf = Bytes::from(bytes);
        assert_eq!(
            last_frame_end(&buf, SALT, offsets[0], 1, buf.len() as u64),
            offsets[1] + len
        );
        let short = buf.slice(..offsets[0] as usize + 40);
        assert_eq!(
            last_frame_end(&short, SALT, offsets[0], 1, short.len() as u64),
            short.len() as u64,
            "clamped to the file"
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
        encode(
            &mut frame,
            SALT,
            1,
            0,
            &Record::Batch(Cow::Owned(batch)),
            Payloads::Copied,
        )
        .unwrap();
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

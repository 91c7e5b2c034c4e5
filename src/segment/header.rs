//! The fixed header at the start of every segment file.
//!
//! # Layout (format v1, little-endian)
//!
//! | offset | size | field         | meaning                                          |
//! |-------:|-----:|---------------|--------------------------------------------------|
//! |      0 |    8 | `magic`       | `b"RAFTWAL\0"`                                   |
//! |      8 |    2 | `version`     | format version, 1                                |
//! |     10 |    2 | `flags`       | bit 0: recycled (below); other bits zero         |
//! |     12 |    4 | reserved      | zero                                             |
//! |     16 |    8 | `seq`         | the segment's sequence number (also its name)    |
//! |     24 |    8 | `salt`        | random; seeds every frame checksum in the file   |
//! |     32 |    8 | `first_index` | index of the first entry this segment may hold   |
//! |     40 |    4 | reserved      | zero                                             |
//! |     44 |    4 | `crc`         | CRC-32 of bytes `0..44`                          |
//!
//! Frames start right after it, at [`HEADER_LEN`] (a multiple of the frame alignment).
//!
//! The recycled flag says the file was a purged segment before: the space after the frames
//! may hold stale bytes of its earlier life rather than zeros. A build that predates the flag
//! rejects such a header (its reserved bytes are not zero) instead of misreading the segment,
//! so the flag needs no new format version, and a segment without it is byte for byte v1.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use bytes::{BufMut, Bytes};

use crate::error::DecodeError;
use crate::record::Cursor;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + 8;
const FLAGS_OFFSET: usize = VERSION_OFFSET + 2;
const SEQ_OFFSET: usize = FLAGS_OFFSET + 6;
const SALT_OFFSET: usize = SEQ_OFFSET + 8;
const FIRST_INDEX_OFFSET: usize = SALT_OFFSET + 8;
const CRC_OFFSET: usize = FIRST_INDEX_OFFSET + 12;
/// Length of the segment header; the first frame starts here.
pub(crate) const HEADER_LEN: usize = CRC_OFFSET + 4;

/// The magic number, `b"RAFTWAL\0"` read as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"RAFTWAL\0");
/// The only format version this build reads and writes.
pub(crate) const VERSION: u16 = 1;
/// Flag: the segment was recycled, so the space after its frames may hold stale bytes.
const FLAG_RECYCLED: u16 = 1;

/// What a segment header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Sequence number: segments replay in this order.
    pub seq: u64,
    /// Seeds every checksum in the file, so frames are valid only in it.
    pub salt: u64,
    /// Index of the first entry the segment may hold (the log's last index + 1 when the
    /// segment began).
    pub first_index: u64,
    /// The file was recycled, not zero-filled: the space after the frames may hold stale
    /// bytes of its earlier life, so a stop there is classified by proof alone.
    pub recycled: bool,
}

impl Header {
    /// The header's bytes.
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.put_u64_le(MAGIC);
        out.put_u16_le(VERSION);
        out.put_u16_le(if self.recycled { FLAG_RECYCLED } else { 0 });
        out.put_bytes(0, SEQ_OFFSET - FLAGS_OFFSET - 2);
        out.put_u64_le(self.seq);
        out.put_u64_le(self.salt);
        out.put_u64_le(self.first_index);
        out.put_bytes(0, CRC_OFFSET - FIRST_INDEX_OFFSET - 8);
        let crc = crc32fast::hash(&out);
        out.put_u32_le(crc);
        let mut bytes = [0u8; HEADER_LEN];
        bytes.copy_from_slice(&out);
        bytes
    }

    /// Decodes the header at the start of `bytes`.
    ///
    /// # Errors
    /// `Truncated`, `BadMagic`, `UnsupportedVersion`, `Checksum` or `Malformed` (reserved
    /// bytes or unknown flags set).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header = bytes.get(..HEADER_LEN).ok_or(DecodeError::Truncated {
            needed: HEADER_LEN as u64,
            available: bytes.len() as u64,
        })?;
        let mut cur = Cursor::new(Bytes::copy_from_slice(header));
        let magic = cur.u64()?;
        if magic != MAGIC {
            return Err(DecodeError::BadMagic { found: magic });
        }
        let version = cur.u16()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion { found: version });
        }
        let computed = crc32fast::hash(header.get(..CRC_OFFSET).unwrap_or_default());
        let flags = cur.u16()?;
        if flags & !FLAG_RECYCLED != 0 {
            return Err(DecodeError::Malformed {
                what: "unknown segment header flags",
            });
        }
        cur.zeros(
            SEQ_OFFSET - FLAGS_OFFSET - 2,
            "segment header reserved bytes",
        )?;
        let seq = cur.u64()?;
        let salt = cur.u64()?;
        let first_index = cur.u64()?;
        cur.zeros(
            CRC_OFFSET - FIRST_INDEX_OFFSET - 8,
            "segment header reserved bytes",
        )?;
        let stored = cur.u32()?;
        if stored != computed {
            return Err(DecodeError::Checksum { stored, computed });
        }
        Ok(Self {
            seq,
            salt,
            first_index,
            recycled: flags & FLAG_RECYCLED != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_every_flipped_bit_is_caught() {
        for recycled in [false, true] {
            let header = Header {
                seq: 7,
                salt: 0x1234_5678_9abc_def0,
                first_index: 42,
                recycled,
            };
            let bytes = header.encode();
            assert_eq!(Header::decode(&bytes), Ok(header));
            for bit in 0..HEADER_LEN * 8 {
                let mut bad = bytes;
                if let Some(b) = bad.get_mut(bit / 8) {
                    *b ^= 1 << (bit % 8);
                }
                assert!(
                    Header::decode(&bad).is_err(),
                    "flip of bit {bit} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn only_the_recycled_flag_changes_the_bytes_of_a_v1_header() {
        let plain = Header {
            seq: 3,
            salt: 5,
            first_index: 9,
            recycled: false,
        };
        let recycled = Header {
            recycled: true,
            ..plain
        }
        .encode();
        let plain = plain.encode();
        // Bytes 10..12 hold the flags; 12..16 stay zero, as every v1 reserved byte.
        assert_eq!(plain[FLAGS_OFFSET..SEQ_OFFSET], [0u8; 6]);
        assert_eq!(recycled[FLAGS_OFFSET..SEQ_OFFSET], [1, 0, 0, 0, 0, 0]);
        assert_eq!(plain[..FLAGS_OFFSET], recycled[..FLAGS_OFFSET]);
        assert_eq!(
            plain[SEQ_OFFSET..CRC_OFFSET],
            recycled[SEQ_OFFSET..CRC_OFFSET]
        );
    }

    #[test]
    fn bad_headers_say_why() {
        let good = Header {
            seq: 1,
            salt: 2,
            first_index: 1,
            recycled: false,
        }
        .encode();
        let mut wrong_magic = good;
        wrong_magic[0] = b'X';
        let mut future = good;
        future[VERSION_OFFSET] = 2;
        let mut unknown_flag = good;
        unknown_flag[FLAGS_OFFSET] = 2;
        let crc = crc32fast::hash(&unknown_flag[..CRC_OFFSET]);
        unknown_flag[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        // (bytes, expected error)
        let cases: [(&[u8], DecodeError); 5] = [
            (
                &good[..10],
                DecodeError::Truncated {
                    needed: HEADER_LEN as u64,
                    available: 10,
                },
            ),
            (
                &wrong_magic,
                DecodeError::BadMagic {
                    found: u64::from_le_bytes(*b"XAFTWAL\0"),
                },
            ),
            (&future, DecodeError::UnsupportedVersion { found: 2 }),
            (
                &unknown_flag,
                DecodeError::Malformed {
                    what: "unknown segment header flags",
                },
            ),
            (&[0u8; HEADER_LEN], DecodeError::BadMagic { found: 0 }),
        ];
        for (bytes, want) in cases {
            assert_eq!(Header::decode(bytes), Err(want));
        }
    }
}

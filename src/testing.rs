//! What fuzz targets and outside tests need of the private codecs (feature `test-util`):
//! encoding and decoding one record frame or segment header.
//!
//! # Example
//! ```
//! use raftwal::testing::{Record, decode_frame, encode_frame};
//!
//! let record = Record::Truncate { after: 7 };
//! let bytes = encode_frame(42, 3, 2, &record).expect("fits");
//! let frame = decode_frame(&bytes, 42).expect("valid");
//! assert_eq!((frame.lsn, frame.synced_lsn, frame.record), (3, 2, record));
//! assert!(decode_frame(&bytes, 43).is_err(), "a frame is valid only under its segment's salt");
//! ```

use bytes::Bytes;

pub use crate::record::{Checkpoint, Frame, Kind, Record};
pub use crate::segment::Header;

use crate::error::DecodeError;
use crate::record::{self, Payloads};

/// The frame of `record` under segment salt `salt`; `None` if a length exceeds the format's,
/// or if `synced_lsn >= lsn` (a frame the decoder refuses).
///
/// Decoding gives `record` back when its batch entries (if any) have consecutive indexes, as
/// every batch the log writes has: the format stores the first index only.
pub fn encode_frame(salt: u64, lsn: u64, synced_lsn: u64, record: &Record<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    record::encode(&mut out, salt, lsn, synced_lsn, record, Payloads::Copied).ok()?;
    Some(out)
}

/// Decodes the frame at the start of `bytes` under segment salt `salt`.
///
/// # Errors
/// Every way the bytes can fail to be a frame is a [`DecodeError`]; never a panic.
pub fn decode_frame(bytes: &[u8], salt: u64) -> Result<Frame, DecodeError> {
    crate::record::decode(&Bytes::copy_from_slice(bytes), salt)
}

/// The bytes of a segment header.
pub fn encode_header(header: &Header) -> Vec<u8> {
    header.encode().to_vec()
}

/// Decodes the segment header at the start of `bytes`.
///
/// # Errors
/// Every way the bytes can fail to be a header is a [`DecodeError`]; never a panic.
pub fn decode_header(bytes: &[u8]) -> Result<Header, DecodeError> {
    Header::decode(bytes)
}

/// Waits until `wal`'s background preparation of its next segment, if one is under way, has
/// finished (renamed into place and synced), keeping the prepared segment for the next
/// rotation.
///
/// # Errors
/// The preparation's error, if it failed (it is started again).
pub fn settle_preparation(wal: &crate::Wal) -> crate::Result<()> {
    wal.settle_preparation()
}

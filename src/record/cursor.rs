//! Bounds-checked little-endian reading over a [`Bytes`] buffer: every read either returns the
//! value or [`DecodeError::Truncated`], and byte ranges come back as zero-copy slices.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use bytes::Bytes;

use crate::error::DecodeError;

/// A read position in a shared buffer.
#[derive(Debug)]
pub(crate) struct Cursor {
    /// The bytes being decoded.
    buf: Bytes,
    /// Bytes consumed so far. Invariant: `pos <= buf.len()`.
    pos: usize,
}

impl Cursor {
    pub(crate) fn new(buf: Bytes) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Consumes the next `n` bytes and returns where they are in the buffer.
    fn advance(&mut self, n: usize) -> Result<std::ops::Range<usize>, DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated {
                needed: n as u64,
                available: self.remaining() as u64,
            });
        }
        let range = self.pos..self.pos + n;
        self.pos += n;
        Ok(range)
    }

    /// The next `n` bytes as a slice sharing the buffer.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        self.advance(n).map(|range| self.buf.slice(range))
    }

    /// The next `N` bytes, copied: no shared slice (and no reference count change) for a
    /// fixed-size field.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let range = self.advance(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(self.buf.get(range).unwrap_or_default());
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Consumes `n` bytes that the format requires to be zero.
    pub(crate) fn zeros(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        let range = self.advance(n)?;
        if self
            .buf
            .get(range)
            .unwrap_or_default()
            .iter()
            .any(|&b| b != 0)
        {
            return Err(DecodeError::Malformed { what });
        }
        Ok(())
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(self, what: &'static str) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(DecodeError::Malformed { what });
        }
        Ok(())
    }
}

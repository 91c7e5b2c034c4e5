//! The record and segment-header codecs: arbitrary bytes never panic the decoders, a frame that
//! decodes re-encodes to the same bytes, and every record built from the input survives
//! `decode(encode(x)) == x`.
#![no_main]

use std::borrow::Cow;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use raftwal::testing::{
    Checkpoint, Header, Record, decode_frame, decode_header, encode_frame, encode_header,
};
use raftwal::{Batch, Entry, EntryId, HardState, SnapshotMeta};

/// Reads fields off the front of the fuzzer's bytes; zeros once they run out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.u8()))
    }

    fn bytes(&mut self, max: usize) -> Bytes {
        let n = usize::from(self.u8()).min(max).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Bytes::copy_from_slice(head)
    }

    fn id(&mut self) -> EntryId {
        EntryId::new(self.u64(), self.u64())
    }

    fn hard_state(&mut self) -> HardState {
        HardState {
            term: self.u64(),
            vote: self.u64(),
            commit: self.u64(),
        }
    }

    fn snapshot(&mut self) -> SnapshotMeta {
        SnapshotMeta {
            index: self.u64(),
            term: self.u64(),
            conf_state: self.bytes(64),
        }
    }

    fn record(&mut self) -> Record<'static> {
        match self.u8() % 6 {
            0 => Record::Checkpoint(Checkpoint {
                compacted: self.id(),
                last: self.id(),
                hard_state: self.hard_state(),
                snapshot: self.snapshot(),
            }),
            1 => {
                let flags = self.u8();
                let first = self.u64() >> 1;
                let count = u64::from(self.u8() % 8);
                let entries = (first..first.saturating_add(count))
                    .map(|index| Entry::new(index, self.u64(), self.bytes(200)))
                    .collect();
                Record::Batch(Cow::Owned(Batch {
                    snapshot: (flags & 2 != 0).then(|| self.snapshot()),
                    entries,
                    hard_state: (flags & 1 != 0).then(|| self.hard_state()),
                }))
            }
            2 => Record::Truncate { after: self.u64() },
            3 => Record::Purge(self.id()),
            4 => Record::Snapshot(Cow::Owned(self.snapshot())),
            _ => Record::Seal {
                next_seq: self.u64(),
                next_salt: self.u64(),
            },
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let salt = input.u64();
    let rest = input.0;

    // Arbitrary bytes: a typed error or a frame that is exactly its canonical encoding.
    if let Ok(frame) = decode_frame(rest, salt) {
        let again = encode_frame(salt, frame.lsn, frame.synced_lsn, &frame.record)
            .expect("a decoded record fits the format");
        let len = usize::try_from(frame.len).expect("frame length fits memory");
        assert_eq!(
            Some(&again[..]),
            rest.get(..len),
            "decode accepted non-canonical bytes"
        );
    }
    if let Ok(header) = decode_header(rest) {
        assert_eq!(decode_header(&encode_header(&header)).ok(), Some(header));
    }

    // A record built from the bytes: decode(encode(x)) == x, and only under its own salt.
    // The log only ever writes a proof of earlier frames: `synced_lsn < lsn`.
    let lsn = input.u64().max(1);
    let synced_lsn = input.u64() % lsn;
    let record = input.record();
    if let Some(bytes) = encode_frame(salt, lsn, synced_lsn, &record) {
        let frame = decode_frame(&bytes, salt).expect("an encoded frame decodes");
        assert_eq!(
            (frame.lsn, frame.synced_lsn, &frame.record),
            (lsn, synced_lsn, &record)
        );
        assert_eq!(frame.len, bytes.len() as u64);
        assert!(
            decode_frame(&bytes, salt ^ 1).is_err(),
            "a frame decoded under another salt"
        );
        assert!(
            encode_frame(salt, lsn, lsn, &record).is_none(),
            "encoded a proof the decoder refuses"
        );
    }
    let header = Header {
        seq: input.u64(),
        salt,
        first_index: input.u64(),
        recycled: input.u64() & 1 == 1,
    };
    assert_eq!(decode_header(&encode_header(&header)).ok(), Some(header));
});

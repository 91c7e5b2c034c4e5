//! The record codec alone (no file): encoding and decoding one batch frame, next to the floor
//! any codec of these bytes has, one copy of the payloads plus one CRC-32 pass over them.
//! Needs feature `test-util` (the codec is private; `raftwal::testing` exposes it).
//!
//! Ids: `record/{raw/copy+crc32,wal/encode,wal/decode}/size=../batch=..`; throughput is payload
//! bytes.

mod common;

use std::borrow::Cow;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use raftwal::testing::{Record, decode_frame, encode_frame};
use raftwal::{Batch, Entry};

/// (entry payload bytes, entries per batch).
const CASES: [(u64, u64); 3] = [(128, 256), (1 << 10, 256), (16 << 10, 16)];
const SALT: u64 = 0x5eed;

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    for (size, count) in CASES {
        group.throughput(Throughput::Bytes(size * count));
        let settings = common::settings(size, count);
        let data = Bytes::from(common::payload(size as usize));
        let batch = Batch {
            entries: (1..=count)
                .map(|i| Entry::new(i, 1, data.clone()))
                .collect(),
            ..Batch::default()
        };

        let mut copy = Vec::new();
        group.bench_function(format!("raw/copy+crc32/{settings}"), |b| {
            b.iter(|| {
                copy.clear();
                for entry in &batch.entries {
                    copy.extend_from_slice(&entry.data);
                }
                crc32fast::hash(&copy)
            });
        });

        let record = Record::Batch(Cow::Borrowed(&batch));
        group.bench_function(format!("wal/encode/{settings}"), |b| {
            b.iter(|| encode_frame(SALT, 2, 1, &record).expect("encode"));
        });
        let frame = encode_frame(SALT, 2, 1, &record).expect("encode");
        group.bench_function(format!("wal/decode/{settings}"), |b| {
            b.iter(|| decode_frame(&frame, SALT).expect("decode"));
        });
    }
    group.finish();
}

common::main!(record);

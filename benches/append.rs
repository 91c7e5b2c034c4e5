//! Appends: entry size x entries per batch, with a sync per batch and without, each next to the
//! raw disk doing the same writes (one write (+ fdatasync) per batch into a pre-zeroed file).
//! The log is purged between samples; `compacted` ids instead purge right behind the writer as
//! it runs (steady state of a Raft node: about 2 segments kept, purged ones recycled), from a
//! few segments before the first sample on.
//!
//! Ids: `append/{wal,raw}/{sync,nosync,compacted}/size=../batch=..`; throughput is payload
//! bytes. The raw side of `compacted` is the same as of `sync`, measured beside it.

mod common;

use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use raftwal::Options;

/// (entry payload bytes, entries per batch) of the steady-state ids: the bandwidth case.
const COMPACTED: (u64, u64) = (1 << 10, 256);

/// Segments a compacted log writes, untimed, before it is measured: by then purged segments
/// come back as new ones.
const STEADY_AFTER_SEGMENTS: u64 = 4;

/// (entry payload bytes, entries per batch).
const CASES: [(u64, u64); 5] = [
    (128, 1),
    (1 << 10, 1),
    (16 << 10, 1),
    (1 << 10, 16),
    (1 << 10, 256),
];

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    for (size, batch) in CASES {
        let bytes = size * batch;
        group.throughput(Throughput::Bytes(bytes));
        let compacted = (size, batch) == COMPACTED;
        let modes = [("sync", true), ("nosync", false), ("compacted", true)];
        for (mode, sync) in modes.into_iter().take(if compacted { 3 } else { 2 }) {
            let settings = common::settings(size, batch);

            let mut raw = None;
            let buf = common::payload(size as usize).repeat(batch as usize);
            group.bench_function(format!("raw/{mode}/{settings}"), |b| {
                let raw = &mut raw.get_or_insert_with(|| common::temp_raw(bytes)).file;
                b.iter(|| {
                    if sync {
                        raw.write_sync(&buf)
                    } else {
                        raw.write(&buf)
                    }
                    .expect("raw write")
                });
            });

            let mut log = None;
            let data = Bytes::from(common::payload(size as usize));
            group.bench_function(format!("wal/{mode}/{settings}"), |b| {
                // NB: only the compacted mode recycles: the others write into new, zero-filled
                // segments, even after `purge_all` between samples.
                let mut options = Options::default();
                if mode != "compacted" {
                    options.recycle_segments = 0;
                }
                let segment_size = options.segment_size;
                let log = log.get_or_insert_with(|| common::temp_log(options));
                let writer = common::Writer::new(&log.wal, data.clone());
                let mut compactor =
                    (mode == "compacted").then(|| common::Compactor::new(segment_size, size));
                if let Some(c) = &mut compactor {
                    // Untimed: a log kept short by its compactor reaches its steady state (every
                    // new segment a recycled one) only after a few segments.
                    for _ in 0..STEADY_AFTER_SEGMENTS * segment_size / bytes {
                        writer.append_sync(batch).expect("append");
                        c.wrote(&log.wal, bytes).expect("purge");
                    }
                }
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        if sync {
                            writer.append_sync(batch)
                        } else {
                            writer.append(batch).map(drop)
                        }
                        .expect("append");
                        if let Some(c) = &mut compactor {
                            c.wrote(&log.wal, bytes).expect("purge");
                        }
                    }
                    let elapsed = start.elapsed();
                    // The compactor keeps its log short; a purge of all would undo the steady
                    // state.
                    if compactor.is_none() {
                        common::purge_all(&log.wal);
                    }
                    elapsed
                });
            });
        }
    }
    group.finish();
}

common::main!(append);

//! Group commit: writers that each append one entry and wait for it to be durable, with 1 and 4
//! threads on one log, next to the raw disk's one-thread rate (one write + fdatasync per entry
//! into a pre-zeroed file). The 4-thread rate over the raw one is the group-commit gain.
//!
//! Ids: `group_commit/raw/threads=1/size=..`, `group_commit/wal/threads={1,4}/size=..`;
//! throughput is payload bytes per entry, so entries/s = bytes/s / size.

mod common;

use std::time::Instant;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use raftwal::Options;

const SIZES: [u64; 2] = [128, 1 << 10];
const THREADS: [u64; 2] = [1, 4];

fn group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_commit");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size));
        let settings = common::settings(size, 1);

        let mut raw = None;
        let buf = common::payload(size as usize);
        group.bench_function(format!("raw/threads=1/{settings}"), |b| {
            let raw = &mut raw.get_or_insert_with(|| common::temp_raw(size)).file;
            b.iter(|| raw.write_sync(&buf).expect("raw write"));
        });

        let data = Bytes::from(buf);
        for threads in THREADS {
            let mut log = None;
            group.bench_function(format!("wal/threads={threads}/{settings}"), |b| {
                let log = log.get_or_insert_with(|| common::temp_log(Options::default()));
                let writer = common::Writer::new(&log.wal, data.clone());
                b.iter_custom(|iters| {
                    let per_thread = iters.div_ceil(threads);
                    let start = Instant::now();
                    common::on_threads(threads, || {
                        for _ in 0..per_thread {
                            writer.append_sync(1).expect("append + sync");
                        }
                    });
                    // Time per entry, counting the entries the rounding up added.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_thread * threads) as f64)
                });
            });
        }
    }
    group.finish();
}

common::main!(group_commit);

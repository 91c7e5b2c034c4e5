//! The cost of the Ready loop on top of the WAL: 1 KiB entries in batches of 1 and 256, driven
//! through append → has_ready → accept → pipeline → durable ack → stable_to, next to a plain
//! `Wal::append_sync` of the same batches in the same run. One batch in flight at a time, so
//! both sides pay one fdatasync per batch and the difference is the loop's overhead. A third
//! function runs the same loop over `MemStorage` (no I/O) to show the loop's own CPU cost.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use raftwal::{Batch, DiskStorage, Entry, LogConfig, MemStorage, Options, Pipeline, RaftLog, Wal};
use tempfile::TempDir;

const ENTRY_BYTES: usize = 1024;

fn open(dir: &TempDir) -> Arc<Wal> {
    Arc::new(Wal::open(dir.path(), Options::default()).expect("open").0)
}

/// `n` entries from `first`, sharing one 1 KiB payload.
fn batch(payload: &Bytes, first: u64, n: u64) -> Vec<Entry> {
    (first..first + n)
        .map(|i| Entry::new(i, 1, payload.clone()))
        .collect()
}

fn ready_loop(c: &mut Criterion) {
    let payload = Bytes::from(vec![7u8; ENTRY_BYTES]);
    let mut group = c.benchmark_group("ready_loop");
    for n in [1u64, 256] {
        group.throughput(Throughput::Bytes(n * ENTRY_BYTES as u64));

        // NB: criterion runs a closure only if its id passes the filter, so each side opens
        // its log inside, once; the temp dir is last so that it outlives the log.
        let mut plain: Option<(Arc<Wal>, u64, TempDir)> = None;
        group.bench_function(
            BenchmarkId::new("wal_append_sync", format!("1KiB/batch={n}")),
            |b| {
                let (wal, next, _) = plain.get_or_insert_with(|| {
                    let dir = tempfile::tempdir().expect("temp dir");
                    (open(&dir), 1, dir)
                });
                b.iter(|| {
                    let entries = batch(&payload, *next, n);
                    *next += n;
                    wal.append_sync(&Batch {
                        entries,
                        ..Batch::default()
                    })
                    .expect("append_sync");
                });
            },
        );

        let config = LogConfig {
            async_storage_writes: true,
            ..LogConfig::default()
        };
        let mut looped: Option<(RaftLog<DiskStorage>, Pipeline<Wal>, u64, TempDir)> = None;
        group.bench_function(
            BenchmarkId::new("raft_log_pipeline", format!("1KiB/batch={n}")),
            |b| {
                let (log, pipeline, next, _) = looped.get_or_insert_with(|| {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let wal = open(&dir);
                    let log = RaftLog::with_config(DiskStorage::new(Arc::clone(&wal)), config)
                        .expect("log");
                    (log, Pipeline::new(wal), 1, dir)
                });
                b.iter(|| {
                    *next = log.append(&batch(&payload, *next, n)).expect("append") + 1;
                    assert!(log.has_ready());
                    let rd = log.ready_without_accept().expect("ready");
                    log.accept_ready(&rd).expect("accept");
                    pipeline.submit(rd.persist_part()).expect("submit");
                    for ack in pipeline.wait_completed().expect("ack") {
                        log.on_persisted(&ack).expect("stable_to");
                    }
                    black_box(log.unstable().entries().len());
                });
            },
        );

        let storage = MemStorage::new();
        let mut log = RaftLog::with_config(storage.clone(), config).expect("log");
        let mut next = 1;
        let id = BenchmarkId::new("raft_log_in_memory", format!("1KiB/batch={n}"));
        group.bench_function(id, |b| {
            b.iter(|| {
                next = log.append(&batch(&payload, next, n)).expect("append") + 1;
                let rd = log.ready_without_accept().expect("ready");
                log.accept_ready(&rd).expect("accept");
                let persist = rd.persist_part();
                storage.append(&persist.entries).expect("write");
                log.on_persisted(&persist.ack).expect("stable_to");
                // Keep the in-memory log small, as a snapshot would.
                storage.compact(next - 1).expect("compact");
            });
        });
    }
    group.finish();
}

criterion_group!(benches, ready_loop);
criterion_main!(benches);

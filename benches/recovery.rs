//! Reopening a log: `Wal::open` alone, and open + reading every entry back, next to a raw
//! sequential read of the same number of payload bytes. Throughput is payload bytes, so the
//! reported GiB/s is the inverse of the time per GiB. The page cache is warm for all three.
//!
//! Size: `RAFTWAL_BENCH_RECOVERY_MIB` MiB of 1 KiB entries (default 64, small enough for CI's
//! `--no-run` and a quick run; 1000 gives the README's 1M x 1 KiB case).
//! Ids: `recovery/{raw/read,wal/open,wal/open+read}/entries=../size=1KiB`.

mod common;

use criterion::{Criterion, SamplingMode, Throughput};
use raftwal::{Options, Wal};

const ENTRY_SIZE: u64 = 1 << 10;
const DEFAULT_MIB: u64 = 64;

fn recovery(c: &mut Criterion) {
    let mib = std::env::var("RAFTWAL_BENCH_RECOVERY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MIB);
    let count = (mib << 20) / ENTRY_SIZE;
    let bytes = count * ENTRY_SIZE;
    let (path, _log_dir) = common::filled_log(count, ENTRY_SIZE, Options::default());
    let (raw_path, _raw_dir) = common::raw_to_read(bytes);
    let mut buf = vec![0; 1 << 20];

    let mut group = c.benchmark_group("recovery");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(bytes));
    let settings = format!("entries={count}/size={}", common::size_label(ENTRY_SIZE));
    group.bench_function(format!("raw/read/{settings}"), |b| {
        b.iter(|| common::read_sequential(&raw_path, bytes, &mut buf).expect("raw read"));
    });
    group.bench_function(format!("wal/open/{settings}"), |b| {
        b.iter(|| Wal::open(&path, Options::default()).expect("open"));
    });
    group.bench_function(format!("wal/open+read/{settings}"), |b| {
        b.iter(|| {
            let (wal, _) = Wal::open(&path, Options::default()).expect("open");
            common::read_all(&wal).expect("read")
        });
    });
    group.finish();
}

common::main!(recovery);

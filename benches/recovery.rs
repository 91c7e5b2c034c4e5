//! Reopening a log: `Wal::open` alone, and open + reading every entry back, next to a raw
//! sequential read of the same number of payload bytes. Throughput is payload bytes, so the
//! reported GiB/s is the inverse of the time per GiB. The page cache is warm for all three.
//!
//! Size: `RAFTWAL_BENCH_RECOVERY_MIB` MiB of 1 KiB entries (default 64; 1000 gives the
//! 1M x 1 KiB case of the README). Ids: `recovery/{wal/open,wal/open+read,raw/read}/..`.

mod common;

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use raftwal::{Lsn, Options, Wal};

const ENTRY_SIZE: u64 = 1 << 10;
const DEFAULT_MIB: u64 = 64;
/// Entries per append while filling, and `max_size` of each read.
const FILL_BATCH: u64 = 256;
const READ_WINDOW: u64 = 8 << 20;

fn recovery(c: &mut Criterion) {
    let mib = std::env::var("RAFTWAL_BENCH_RECOVERY_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MIB);
    let count = (mib << 20) / ENTRY_SIZE;
    let bytes = count * ENTRY_SIZE;

    let log = common::temp_log(Options::default());
    let writer = common::Writer::new(&log.wal, Bytes::from(common::payload(ENTRY_SIZE as usize)));
    let mut lsn = Lsn::default();
    for _ in 0..count.div_ceil(FILL_BATCH) {
        lsn = writer.append(FILL_BATCH).expect("fill");
    }
    log.wal.sync(lsn).expect("sync");
    drop(writer);
    let (path, _dir) = log.close();

    let raw_dir = common::temp_dir();
    let raw_path = raw_dir.path().join("raw");
    drop(common::RawFile::create(&raw_path, bytes).expect("raw file"));
    let mut buf = vec![0; 1 << 20];

    let mut group = c.benchmark_group("recovery");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(bytes));
    let settings = format!("entries={count}/size=1KiB");
    group.bench_function(format!("raw/read/{settings}"), |b| {
        b.iter(|| common::read_sequential(&raw_path, bytes, &mut buf).expect("raw read"));
    });
    group.bench_function(format!("wal/open/{settings}"), |b| {
        b.iter(|| Wal::open(&path, Options::default()).expect("open"));
    });
    group.bench_function(format!("wal/open+read/{settings}"), |b| {
        b.iter(|| {
            let (wal, _) = Wal::open(&path, Options::default()).expect("open");
            let (mut lo, hi) = (wal.first_index(), wal.last_index() + 1);
            while lo < hi {
                lo += wal.entries(lo, hi, READ_WINDOW).expect("read").len() as u64;
            }
            lo
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = recovery
}
criterion_main!(benches);

//! Reading a log back front to back from sealed segments: through read-only memory maps
//! (zero-copy, `Options::use_mmap = true`) and through `pread` into fresh buffers
//! (`use_mmap = false`), next to a raw sequential read of the same number of payload bytes.
//! The log is already open and the page cache warm, so this is the read path alone.
//!
//! Ids: `read/{raw/read,wal/mmap,wal/pread}/entries=../size=..`; throughput is payload bytes.

mod common;

use criterion::{Criterion, SamplingMode, Throughput};
use raftwal::{Options, Wal};

/// (entry payload bytes, entries): 32 MiB each.
const CASES: [(u64, u64); 2] = [(128, 256 << 10), (4 << 10, 8 << 10)];
/// Small segments, so nearly every entry is in a sealed (mappable) one.
const SEGMENT_SIZE: u64 = 4 << 20;

fn options(use_mmap: bool) -> Options {
    let mut options = Options::default();
    options.segment_size = SEGMENT_SIZE;
    options.use_mmap = use_mmap;
    options
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    group.sampling_mode(SamplingMode::Flat);
    for (size, count) in CASES {
        let bytes = size * count;
        group.throughput(Throughput::Bytes(bytes));
        let settings = format!("entries={count}/size={}", common::size_label(size));
        let (path, _log_dir) = common::filled_log(count, size, options(true));

        let (raw_path, _raw_dir) = common::raw_to_read(bytes);
        let mut buf = vec![0; 1 << 20];
        group.bench_function(format!("raw/read/{settings}"), |b| {
            b.iter(|| common::read_sequential(&raw_path, bytes, &mut buf).expect("raw read"));
        });
        for (mode, use_mmap) in [("mmap", true), ("pread", false)] {
            // One handle at a time: the log directory is locked while open.
            let (wal, _) = Wal::open(&path, options(use_mmap)).expect("open");
            group.bench_function(format!("wal/{mode}/{settings}"), |b| {
                b.iter(|| common::read_all(&wal).expect("read"));
            });
        }
    }
    group.finish();
}

common::main!(read);

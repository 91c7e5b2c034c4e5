//! Committed proposals per second on a three-node raft-rs cluster over raftwal: 1 KiB values,
//! fsync on, no drops or delays, one thread driving all nodes. The synchronous loop
//! (`advance_sync`, an fsync inline per Ready) against the asynchronous pipeline (`Pipeline`,
//! the WAL syncing in the background while raft-rs moves on), in one run.

use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "../tests/raft_rs_common/mod.rs"]
#[expect(
    dead_code,
    reason = "the bench drives the cluster without faults or crashes"
)]
mod raft_rs_common;

use raft_rs_common::{Cluster, Mode, Settings};

/// Proposals committed per measured iteration.
const PER_ITER: usize = 100;

fn committed_proposals(c: &mut Criterion) {
    let mut group = c.benchmark_group("raft_rs_cluster");
    group.throughput(Throughput::Elements(PER_ITER as u64));
    group.sample_size(10);
    for mode in [Mode::Sync, Mode::Async] {
        let mut cluster = Cluster::new(Settings {
            mode,
            seed: 1,
            drop_per_mille: 0,
            max_delay: 0,
            value_size: 1024,
            snapshot_every: 0,
            window: 256,
            segment_size: raftwal::Options::default().segment_size,
        });
        cluster.commit(1, 10_000);
        let id = format!("commit/3_nodes/1KiB/fsync/window_256/{mode:?}");
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    cluster.commit(PER_ITER, u64::MAX);
                }
                start.elapsed()
            });
        });
        cluster.settle(u64::MAX);
        cluster.check_agreement();
    }
    group.finish();
}

criterion_group!(benches, committed_proposals);
criterion_main!(benches);

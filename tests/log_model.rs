//! Model-based test of the log layer over the asynchronous pipeline: seeded random operation
//! sequences against a naive model (see `log_common/model.rs`).

mod log_common;

use log_common::model::{SplitMix, disk_harness, mem_harness};

#[test]
fn random_sequences_agree_with_the_model() {
    for seed in 0..200 {
        let applied = mem_harness().run(SplitMix::new(seed).take(600));
        assert!(
            applied > 0,
            "seed {seed} never applied anything: the driver is too timid"
        );
    }
}

#[test]
fn the_same_sequences_over_the_wal_agree_with_the_model() {
    for seed in 0..50 {
        let dir = tempfile::tempdir().unwrap();
        let applied = disk_harness(dir.path()).run(SplitMix::new(seed).take(600));
        assert!(applied > 0, "seed {seed} never applied anything");
    }
}

/// Found by the fuzz target: the driver once replaced entries of the current term within that
/// term (impossible in Raft), which let a stale ack match a new entry by (index, term).
#[test]
fn regression_an_overwrite_comes_from_a_newer_term() {
    mem_harness().run([
        175, 198, 198, 198, 198, 198, 198, 198, 198, 198, 198, 198, 198, 198, 75, 198, 70, 198,
        198, 198, 248, 211, 106, 106, 58, 115, 237, 79, 10, 10, 79, 255,
    ]);
}

/// Found by the fuzz target: draining many large committed entries under apply flow control
/// takes more Readies than the driver first allowed.
#[test]
fn regression_draining_under_flow_control_takes_many_readies() {
    mem_harness().run(DRAIN_CRASH);
}

/// The fuzzer's input, verbatim.
const DRAIN_CRASH: [u8; 217] = [
    243, 0, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199,
    199, 199, 199, 199, 199, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77,
    77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 77, 199, 199, 199, 199, 199, 199, 199,
    199, 199, 199, 199, 199, 199, 199, 199, 50, 50, 50, 199, 199, 199, 199, 199, 199, 199, 199,
    199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199,
    199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 50, 50, 50, 199,
    199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199, 199,
    199, 199, 91, 172, 170, 170, 170, 170, 2, 56, 56, 56, 56, 56, 56, 246, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 230, 0, 0, 0,
];

//! The log layer's model target: the bytes choose a sequence of appends, follower appends,
//! term changes, commits, Readies, syncs, delayed and reordered acks, applies, restores and
//! compactions; after every step the log must agree with a naive model
//! (`applied <= applying <= committed <= last_index`, `offset <= offset_in_progress <= offset +
//! len`, every term as the model says), and once drained the storage must hold the model's log.
//! The driver is shared with `tests/log_model.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/log_common/mod.rs"]
#[allow(dead_code, reason = "the fuzz target uses only the model driver")]
mod log_common;

fuzz_target!(|data: &[u8]| {
    log_common::model::mem_harness().run(data.iter().copied());
});

//! The WAL against its model under a fuzzer-chosen script: steps of a valid workload, syncs,
//! power cuts (with a fuzzer-chosen crash image), reopens, and I/O failures armed to fire after
//! a countdown. After every cut or reopen the log must hold every acknowledged op and nothing
//! issued later, each batch whole or absent.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| common::run_wal_script(input));

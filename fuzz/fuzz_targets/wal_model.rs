//! The WAL against its model under a fuzzer-chosen script: steps of a valid workload, syncs,
//! power cuts (with a fuzzer-chosen crash image), reopens, and I/O failures armed to fire after
//! a countdown. After every cut or reopen the log must hold every acknowledged op and nothing
//! issued later, each batch whole or absent.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{Driver, LogState, judge, recycling_options, small_options};
use libfuzzer_sys::fuzz_target;
use raftwal::fs::SimFs;
use raftwal::fs::sim::{Fault, FaultError, ImageSpec, OpKind, SimRng};

fuzz_target!(|input: &[u8]| {
    let mut fs = SimFs::new(0);
    let seed = input.first().copied().map_or(0, u64::from);
    // Odd seeds run in 4 KiB segments, where purges recycle segments every few steps.
    let options = if seed % 2 == 0 {
        small_options()
    } else {
        recycling_options()
    };
    let Ok(mut driver) = Driver::open(&fs, &options, seed) else {
        return;
    };
    let mut broken = false;
    for &byte in input.iter().skip(1) {
        match byte % 8 {
            0..=3 if !broken => broken = driver.step(&fs).is_err(),
            4 if !broken => broken = driver.sync(&fs).is_err(),
            5 => {
                let kinds = [
                    OpKind::Write,
                    OpKind::SyncData,
                    OpKind::SyncDir,
                    OpKind::Allocate,
                    OpKind::Create,
                ];
                let op = kinds[usize::from(byte >> 3) % kinds.len()];
                let error = if byte & 0x80 == 0 {
                    FaultError::Eio
                } else {
                    FaultError::NoSpace
                };
                fs.inject(Fault::nth(op, u64::from(byte >> 4), error));
            }
            6 | 7 => {
                // A power cut (6) or a process restart (7), then recovery is judged. NB: after a
                // failed sync a restart still sees, in the page cache, frames the disk never
                // got; a later power cut must not take anything acknowledged after it.
                let legal = driver.history.legal_after_crash_at(fs.op_count()).to_vec();
                drop(driver);
                fs.clear_faults();
                let image = if byte % 8 == 6 {
                    let mut rng = SimRng::new(u64::from(byte));
                    fs.crash_image(&ImageSpec::random(&mut rng), u64::from(byte))
                } else {
                    fs.clone()
                };
                let state: LogState = judge(&image, &options, &legal)
                    .unwrap_or_else(|e| panic!("recovery after byte {byte:#x}: {e}"));
                fs = image;
                driver = Driver::resume(&fs, &options, u64::from(byte), state)
                    .expect("a recovered log reopens");
                broken = false;
            }
            _ => {}
        }
    }
});

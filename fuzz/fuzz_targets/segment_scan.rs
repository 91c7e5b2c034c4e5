//! Arbitrary bytes as the contents of one of the log's files (a segment, or any other file the
//! WAL keeps) on SimFs: opening must give a valid log or a typed error, never a panic, and a
//! log that opens must serve every index it claims.
#![no_main]

#[path = "../../tests/common/mod.rs"]
mod common;

use common::{LogState, log_files, open, small_options};
use libfuzzer_sys::fuzz_target;
use raftwal::fs::SimFs;
use raftwal::fs::sim::ImageSpec;
use raftwal::{Batch, Entry};

fuzz_target!(|input: &[u8]| {
    let Some((&choice, bytes)) = input.split_first() else {
        return;
    };
    let options = small_options();
    let fs = SimFs::new(0);
    {
        let wal = open(&fs, &options).expect("open a new log");
        let entries = (1..=3)
            .map(|i| Entry::new(i, 1, vec![i as u8; 40]))
            .collect();
        let batch = Batch {
            entries,
            ..Batch::default()
        };
        wal.append_sync(&batch).expect("healthy disk");
    }
    let image = fs.crash_image(&ImageSpec::NOTHING, 0);
    let files = log_files(&image);
    let Some(target) = files.get(usize::from(choice) % files.len().max(1)) else {
        return;
    };
    // Even choices replace the file; odd ones overwrite its start and keep the rest.
    image
        .damage(target, |old| {
            if choice % 2 == 0 {
                *old = bytes.to_vec();
            } else {
                let n = bytes.len().min(old.len());
                old[..n].copy_from_slice(&bytes[..n]);
            }
        })
        .expect("listed file");
    if let Ok(wal) = open(&image, &options) {
        let state = LogState::read(&wal).expect("an opened log serves its own range");
        assert_eq!(state.last_index(), wal.last_index());
    }
});

//! Append entries and a hard state as one durable batch, reopen the log, read them back.
//!
//! Run: `cargo run --example basic`

use raftwal::{Batch, Entry, HardState, Options, Wal};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("log");

    // One atomic batch: after a crash it is all there or not at all. Durable once this returns.
    let (wal, _) = Wal::open(&path, Options::default())?;
    wal.append_sync(&Batch {
        entries: vec![Entry::new(1, 1, "x = 1"), Entry::new(2, 1, "y = 2")],
        hard_state: Some(HardState {
            term: 1,
            vote: 1,
            commit: 2,
        }),
        ..Batch::default()
    })?;
    drop(wal);

    // Reopen: everything acknowledged is back.
    let (wal, report) = Wal::open(&path, Options::default())?;
    let entries = wal.entries(1, report.last_index + 1, u64::MAX)?;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].data, "y = 2");
    assert_eq!(wal.hard_state().commit, 2);
    println!(
        "reopened: {} entries, commit index {}",
        entries.len(),
        wal.hard_state().commit
    );
    Ok(())
}

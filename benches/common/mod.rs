//! What the bench files share: the workload code and size labels of `raftwal bench` (the raw
//! baseline and the log writers, included by path so both measure the same thing), temp dirs,
//! and small criterion settings, with the `main!` that applies them, that keep a full
//! `cargo bench` within a few minutes.
#![allow(
    dead_code,
    unused_imports,
    reason = "each bench file uses its own part of the shared code"
)]

#[path = "../../cli/src/shared/mod.rs"]
mod shared;
#[path = "../../cli/src/units.rs"]
mod units;

use std::time::Duration;

use criterion::Criterion;
use std::path::PathBuf;

use bytes::Bytes;
use raftwal::{EntryId, Options, Wal};
use tempfile::TempDir;

pub use shared::raw::{RawFile, read_sequential};
pub use shared::writer::{Compactor, Writer, on_threads};
pub use shared::{TempLog, payload, read_all};

/// Bytes of the raw baseline file: one default segment.
pub const RAW_FILE_LEN: u64 = 64 << 20;

/// Few samples, short measurements: every bench id here does real I/O, whose noise on a shared
/// virtual disk dwarfs what more samples would refine.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

/// The bench binary's `main`: runs `$target`s with the [`criterion`] settings.
macro_rules! main {
    ($($target:path),+ $(,)?) => {
        criterion::criterion_group! {
            name = benches;
            config = common::criterion();
            targets = $($target),+
        }
        criterion::criterion_main!(benches);
    };
}
pub(crate) use main;

// NB: criterion calls a bench's closure only when its id passes the command line's filter, so
// benches make their files inside it, once (`Option::get_or_insert_with`), not before it.

/// A temp dir for one bench id.
pub fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("create a temp dir")
}

/// A new, empty log in a temp dir of its own.
pub fn temp_log(options: Options) -> TempLog {
    TempLog::create(temp_dir(), options).expect("create a log")
}

/// A raw baseline file in a temp dir of its own.
pub struct TempRaw {
    /// The file. NB: declared before `_dir`, so it is closed before the dir is removed.
    pub file: RawFile,
    _dir: TempDir,
}

/// A pre-zeroed raw file of at least [`RAW_FILE_LEN`] bytes, and twice `batch_bytes`.
pub fn temp_raw(batch_bytes: u64) -> TempRaw {
    let dir = temp_dir();
    let file = RawFile::create(&dir.path().join("raw"), RAW_FILE_LEN.max(2 * batch_bytes))
        .expect("create the raw file");
    TempRaw { file, _dir: dir }
}

/// Entries per append while a log is filled.
const FILL_BATCH: u64 = 256;

/// A closed log of `count` entries of `size` bytes, written with `options` in batches, synced
/// once and closed ([`raftwal::Wal::close`]): its path, and the temp dir that must outlive every use of it.
pub fn filled_log(count: u64, size: u64, options: Options) -> (PathBuf, TempDir) {
    let log = TempLog::create(temp_dir(), options).expect("create a log");
    let writer = Writer::new(&log.wal, Bytes::from(payload(size as usize)));
    let lsn = writer.fill(count, FILL_BATCH).expect("fill");
    log.wal.sync(lsn).expect("sync");
    drop(writer);
    log.close().expect("close")
}

/// A raw file of `len` bytes (zeros, written and synced) to read back: its path, and the temp
/// dir that must outlive every use of it.
pub fn raw_to_read(len: u64) -> (PathBuf, TempDir) {
    let dir = temp_dir();
    let path = dir.path().join("raw");
    drop(RawFile::create(&path, len).expect("create the raw file"));
    (path, dir)
}

/// Drops every entry of `wal` (untimed, between samples) so a long bench keeps few segments.
pub fn purge_all(wal: &Wal) {
    let last = wal.last_index();
    let term = wal.term(last).expect("term of the last entry");
    wal.purge_to(EntryId::new(term, last)).expect("purge");
}

/// The settings part of a bench id: `size=1KiB/batch=16`.
pub fn settings(size: u64, batch: u64) -> String {
    format!("size={}/batch={batch}", size_label(size))
}

/// A size as a bench id shows it: `raftwal bench`'s label without the space, `128B`, `16KiB`.
pub fn size_label(size: u64) -> String {
    units::format_size(size).replace(' ', "")
}

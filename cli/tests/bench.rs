//! `raftwal bench` end to end, on tiny settings: it runs every kind of workload, prints a row for
//! each with its ratio to the raw disk, and leaves nothing behind.

mod common;

use std::ffi::OsString;

use common::{Run, raftwal};
use raftwal::fs::{Fs, StdFs};

/// Runs `raftwal bench` with `args`, measuring in a temp dir it checks is left empty.
fn bench_in_temp_dir(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<OsString> = args.iter().map(OsString::from).collect();
    args.push("--dir".into());
    args.push(dir.path().into());
    let run = raftwal(args);
    assert_eq!(run.code, Some(0), "{run:?}");
    let left = StdFs.list_dir(dir.path()).unwrap();
    assert!(left.is_empty(), "bench left {left:?} behind");
    run
}

#[test]
fn bench_prints_a_row_per_workload_and_cleans_up() {
    let run = bench_in_temp_dir(&[
        "bench",
        "--sizes",
        "128,1KiB",
        "--batches",
        "1,4",
        "--writers",
        "2",
        "--seconds",
        "5",
        "--syncs",
        "20",
        "--read-entries",
        "300",
        "--read-size",
        "512",
        "--segment-size",
        "1MiB",
    ]);
    for row in [
        "128 B x 1/sync ",
        "128 B x 4/sync ",
        "128 B x 1/sync, 2 writers",
        "1 KiB x 1/sync ",
        "1 KiB x 4/sync ",
        "1 KiB x 1/sync, 2 writers",
        "128 B x 4/sync, growing",
        "1 KiB x 4/sync, growing",
    ] {
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no row {row:?} in\n{}", run.stdout));
        assert!(line.trim_end().ends_with('x'), "no ratio in {line:?}");
    }
    assert!(
        run.stdout
            .contains("reopen + read back 300 entries x 512 B"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("x the raw read time"), "{}", run.stdout);
    assert!(run.stdout.contains("1 MiB segments"), "{}", run.stdout);
    assert!(
        run.stdout.contains("compacted behind the writer"),
        "{}",
        run.stdout
    );
}

#[test]
fn bench_readback_only_runs_no_write_workload() {
    let run = bench_in_temp_dir(&[
        "bench",
        "--readback-only",
        "--read-entries",
        "200",
        "--read-size",
        "256",
        "--segment-size",
        "1MiB",
    ]);
    assert!(
        run.stdout
            .contains("reopen + read back 200 entries x 256 B"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("/sync"), "{}", run.stdout);
}

#[test]
fn bench_rejects_bad_options_with_a_message() {
    for (args, says) in [
        (
            &["bench", "--seconds", "0"][..],
            "--seconds must be a positive number",
        ),
        (&["bench", "--sizes", "0"][..], "at least 1 byte"),
        (&["bench", "--sizes", "12x"][..], "unknown unit"),
        (&["bench", "--batches", "0"][..], "--batches"),
        (
            &["bench", "--sizes", "32MiB"][..],
            "at most the log's largest entry",
        ),
        (
            &["bench", "--sizes", "16MiB", "--batches", "256"][..],
            "at most 1 GiB",
        ),
        (
            &["bench", "--seconds", "nan"][..],
            "--seconds must be a positive number",
        ),
    ] {
        let run = raftwal(args);
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?} printed {}", run.stdout);
    }
}

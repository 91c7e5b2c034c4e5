//! `raftwal bench`: the log's throughput and sync latency next to the raw disk's, measured in the
//! same run on the same file system with the same bytes.

mod report;
mod sample;
mod workloads;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use raftwal::Options;

use crate::error::CliError;
use crate::shared::raw::RawFile;
use crate::units::{format_size, parse_size};
use sample::Limit;
use workloads::{Pair, Setup};

/// Options of `raftwal bench`. Every one has a default; the defaults run in about a minute.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Entry payload sizes, comma-separated (units B, KiB, MiB).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "128,1KiB,16KiB")]
    sizes: Vec<u64>,
    /// Entries per sync, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..),
          default_value = "1,16,256")]
    batches: Vec<u64>,
    /// Concurrent writers of the group-commit workload (one entry per sync each); 0 or 1 skips it.
    #[arg(long, default_value_t = 4)]
    writers: u64,
    /// Seconds each measurement runs, on the log and again on the raw disk.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Slices each measurement is cut into, alternating the log and the raw disk, so that load
    /// changes during the run weigh on both alike.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..1000), default_value_t = 4)]
    rounds: u64,
    /// Most syncs in one measurement (per writer in the group-commit workload).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 1_000_000)]
    syncs: u64,
    /// Entries written, reopened and read back in the last step; 0 skips it.
    #[arg(long, default_value_t = 1 << 20)]
    read_entries: u64,
    /// Runs only the reopen + read back step, without the write workloads.
    #[arg(long)]
    readback_only: bool,
    /// Payload size of the read-back entries.
    #[arg(long, value_parser = parse_size, default_value = "1KiB")]
    read_size: u64,
    /// Segment size of every log (the raw file is as large, so it wraps as often as the log
    /// rotates).
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    segment_size: u64,
    /// Directory in which the temp dir is made (default: the system temp dir). Its file system
    /// is the one measured.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Largest batch a workload may write at once (it is held in memory twice).
const MAX_BATCH_BYTES: u64 = 1 << 30;

impl BenchArgs {
    /// Checks what clap cannot see alone and returns the per-measurement limit.
    fn validate(&self) -> Result<Limit, CliError> {
        let max_entry = Options::default().max_entry_size;
        if self
            .sizes
            .iter()
            .chain([&self.read_size])
            .any(|&s| s > max_entry)
        {
            return Err(CliError::Usage(
                "entry sizes must be at most the log's largest entry, 16 MiB",
            ));
        }
        if self.largest_batch() > MAX_BATCH_BYTES {
            return Err(CliError::Usage(
                "a batch (size x entries) must be at most 1 GiB",
            ));
        }
        let duration = Duration::try_from_secs_f64(self.seconds)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or(CliError::Usage("--seconds must be a positive number"))?;
        Ok(Limit {
            duration,
            max_syncs: self.syncs,
        })
    }

    /// Payload bytes of the largest batch of the run.
    fn largest_batch(&self) -> u64 {
        let size = self.sizes.iter().max().copied().unwrap_or(0);
        size.saturating_mul(self.batches.iter().max().copied().unwrap_or(0))
    }

    fn group_commit(&self) -> bool {
        self.writers > 1
    }

    /// Rows the run prints, for the progress bar.
    fn steps(&self) -> u64 {
        let per_size = self.batches.len() as u64 + 1 + u64::from(self.group_commit());
        let writes = if self.readback_only { 0 } else { per_size };
        writes * self.sizes.len() as u64 + u64::from(self.read_entries > 0)
    }

    /// The entry sizes of the write workloads (none with `--readback-only`).
    fn write_sizes(&self) -> &[u64] {
        if self.readback_only { &[] } else { &self.sizes }
    }
}

/// Runs every workload of `args` and prints one row each as it completes.
///
/// # Errors
/// The first error of the log or the file system; the temp dir is removed either way.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let limit = args.validate()?;
    let mut builder = tempfile::Builder::new();
    builder.prefix("raftwal-bench-");
    let root = match &args.dir {
        Some(dir) => builder.tempdir_in(dir),
        None => builder.tempdir(),
    }
    .map_err(CliError::io(
        "create temp dir in",
        args.dir.clone().unwrap_or_default(),
    ))?;

    let raw_len = args.segment_size.max(2 * args.largest_batch());
    let raw_path = root.path().join("raw");
    let mut raw = RawFile::create(&raw_path, raw_len).map_err(CliError::io("create", &raw_path))?;

    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; numbers mean little without --release");
    }
    println!(
        "raftwal bench in {}, {} segments\n\
         each workload: {secs:.1} s on the log and {secs:.1} s raw, in {} alternating slices \
         after a warm-up slice on the log (at most {} syncs a side)\n\
         raw = the same bytes, one write + fdatasync per batch, into a pre-zeroed {} file \
         (raftwal::fs::StdFs)\n\
         ratio = log entries/s over raw entries/s (group commit: over the raw 1-writer rate)\n\
         steady state, as a Raft node runs it: the log is compacted behind the writer (every half \
         segment, purged to a segment behind the last entry: about 2 segments kept, purged ones \
         recycled as new segments); rows marked \"growing\" never purge, so every segment is a \
         new zero-filled file\n",
        root.path().display(),
        format_size(args.segment_size),
        args.rounds,
        args.syncs,
        format_size(raw_len),
        secs = limit.duration.as_secs_f64(),
    );
    println!("{}", report::header());

    let progress = ProgressBar::new(args.steps()).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let print = |line: String| progress.suspend(|| println!("{line}"));
    let measure = |name: String, pair: &mut dyn FnMut() -> Result<Pair, CliError>| {
        progress.set_message(name.clone());
        let pair = pair()?;
        print(report::row(&name, &pair.wal, &pair.raw));
        progress.inc(1);
        Ok::<_, CliError>(())
    };

    let mut options = Options::default();
    options.segment_size = args.segment_size;
    let setup = Setup {
        root: root.path(),
        options,
        limit,
        rounds: args.rounds,
    };
    for &size in args.write_sizes() {
        for &batch in &args.batches {
            measure(report::workload_name(size, batch, 1), &mut || {
                workloads::batches(&setup, &mut raw, size, batch, true)
            })?;
        }
        let most = args.batches.iter().max().copied().unwrap_or(1);
        measure(
            format!("{}, growing", report::workload_name(size, most, 1)),
            &mut || workloads::batches(&setup, &mut raw, size, most, false),
        )?;
        if args.group_commit() {
            measure(report::workload_name(size, 1, args.writers), &mut || {
                workloads::group(&setup, &mut raw, size, args.writers)
            })?;
        }
    }

    if args.read_entries > 0 {
        progress.set_message("reopen + read back");
        let result = workloads::readback(&setup, args.read_entries, args.read_size)?;
        progress.inc(1);
        print(format!("\n{}", report::readback(&result)));
    }
    progress.finish_and_clear();
    Ok(())
}

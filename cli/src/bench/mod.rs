//! `raftwal bench`: the log's throughput and sync latency next to the raw disk's, measured in the
//! same run on the same file system with the same bytes.

mod report;
mod sample;
mod workloads;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::CliError;
use crate::shared::raw::RawFile;
use crate::units::{format_size, parse_size};
use sample::{Limit, Sample};

/// Smallest raw baseline file: one default segment, so it wraps as rarely as the log rotates.
const RAW_FILE_MIN: u64 = 64 << 20;

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
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Most syncs in one measurement (per writer in the group-commit workload).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), default_value_t = 1_000_000)]
    syncs: u64,
    /// Entries written, reopened and read back in the last step; 0 skips it.
    #[arg(long, default_value_t = 262_144)]
    read_entries: u64,
    /// Payload size of the read-back entries.
    #[arg(long, value_parser = parse_size, default_value = "1KiB")]
    read_size: u64,
    /// Directory in which the temp dir is made (default: the system temp dir). Its file system
    /// is the one measured.
    #[arg(long)]
    dir: Option<PathBuf>,
}

impl BenchArgs {
    fn limit(&self) -> Result<Limit, CliError> {
        let duration = Duration::try_from_secs_f64(self.seconds)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or(CliError::Usage("--seconds must be a positive number"))?;
        Ok(Limit {
            duration,
            max_syncs: self.syncs,
        })
    }

    fn group_commit(&self) -> bool {
        self.writers > 1
    }

    /// Measurements the run makes, for the progress bar.
    fn steps(&self) -> u64 {
        // The group-commit row reuses the raw 1-entry measurement when there is one.
        let group = if self.group_commit() {
            1 + u64::from(!self.batches.contains(&1))
        } else {
            0
        };
        let per_size = 2 * self.batches.len() as u64 + group;
        per_size * self.sizes.len() as u64 + u64::from(self.read_entries > 0)
    }
}

/// Runs every workload of `args` and prints one row each as it completes.
///
/// # Errors
/// The first error of the log or the file system; the temp dir is removed either way.
pub fn run(args: &BenchArgs) -> Result<(), CliError> {
    let limit = args.limit()?;
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

    let largest_batch = args.sizes.iter().max().copied().unwrap_or(0)
        * args.batches.iter().max().copied().unwrap_or(0);
    let raw_len = RAW_FILE_MIN.max(2 * largest_batch);
    let raw_path = root.path().join("raw");
    let mut raw = RawFile::create(&raw_path, raw_len).map_err(CliError::io("create", &raw_path))?;

    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; numbers mean little without --release");
    }
    println!(
        "raftwal bench in {} ({:.1} s per measurement, at most {} syncs)\n\
         raw = the same bytes, one write + fdatasync per batch, into a pre-zeroed {} file \
         (raftwal::fs::StdFs)\n\
         ratio = log entries/s over raw entries/s (group commit: over the raw 1-writer rate)\n",
        root.path().display(),
        limit.duration.as_secs_f64(),
        args.syncs,
        format_size(raw_len),
    );
    println!("{}", report::header());

    let progress = ProgressBar::new(args.steps()).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let measure = |what: String, work: &mut dyn FnMut() -> Result<Sample, CliError>| {
        progress.set_message(what);
        let sample = work();
        progress.inc(1);
        sample
    };
    let print = |line: String| progress.suspend(|| println!("{line}"));

    for &size in &args.sizes {
        let mut raw_one_writer = None;
        for &batch in &args.batches {
            let name = report::workload_name(size, batch, 1);
            let raw_sample = measure(format!("raw {name}"), &mut || {
                workloads::raw_batches(&mut raw, size, batch, limit)
            })?;
            let wal_sample = measure(format!("log {name}"), &mut || {
                workloads::wal_batches(root.path(), size, batch, limit)
            })?;
            print(report::row(&name, &wal_sample, &raw_sample));
            if batch == 1 {
                raw_one_writer = Some(raw_sample);
            }
        }
        if args.group_commit() {
            let name = report::workload_name(size, 1, args.writers);
            let raw_sample = match raw_one_writer {
                Some(sample) => sample,
                None => measure(format!("raw {name}"), &mut || {
                    workloads::raw_batches(&mut raw, size, 1, limit)
                })?,
            };
            let wal_sample = measure(format!("log {name}"), &mut || {
                workloads::wal_group(root.path(), size, args.writers, limit)
            })?;
            print(report::row(&name, &wal_sample, &raw_sample));
        }
    }

    if args.read_entries > 0 {
        progress.set_message("reopen + read back");
        let result = workloads::readback(root.path(), args.read_entries, args.read_size)?;
        progress.inc(1);
        print(format!("\n{}", report::readback(&result)));
    }
    progress.finish_and_clear();
    Ok(())
}

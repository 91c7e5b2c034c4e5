//! `raftwal`: measure a raftwal log against the raw disk, print a log directory, check it.
//!
//! Exit codes: 0 success (a torn tail is one), 1 `verify` found corruption, 2 the command could
//! not run.

mod bench;
mod dump;
mod error;
mod shared;
mod units;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// raftwal's command line.
#[derive(Parser, Debug)]
#[command(name = "raftwal", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Writes a log in a temp dir and reports throughput and sync latency next to the raw disk's.
    Bench(bench::BenchArgs),
    /// Prints every segment of a log directory and every record in it: indexes, terms, hard
    /// states, snapshots, truncations, purges. Reads only; safe beside a running owner.
    Dump {
        /// The log directory.
        dir: PathBuf,
    },
    /// Checks every checksum of a log directory: clean, torn tail (exit 0) or corrupt (exit 1,
    /// naming the segment and byte offset). Reads only.
    Verify(verify::VerifyArgs),
}

/// Exit code when a command could not run (bad options, I/O errors, not a log); clap uses it
/// too. `verify` exits with [`verify::EXIT_CORRUPT`] when it finds damage.
const EXIT_FAILED: u8 = 2;

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Bench(args) => bench::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Dump { dir } => dump::run(&dir).map(|()| ExitCode::SUCCESS),
        Command::Verify(args) => verify::run(&args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("raftwal: {e}");
        ExitCode::from(EXIT_FAILED)
    })
}

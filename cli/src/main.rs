//! `raftwal`: measure a raftwal log against the raw disk, print a log directory, check it.

mod bench;
mod error;
mod shared;
mod units;

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
}

/// Exit code when a command could not run (bad options, I/O errors); clap uses it too.
const EXIT_FAILED: u8 = 2;

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Bench(args) => bench::run(&args).map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("raftwal: {e}");
        ExitCode::from(EXIT_FAILED)
    })
}

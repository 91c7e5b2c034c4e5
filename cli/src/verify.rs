//! `raftwal verify DIR`: checks every checksum of a log without writing to it, and says whether
//! it is clean, ends in a torn tail that opening would cut, or holds damaged acknowledged data.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use raftwal::inspect::{self, End};
use raftwal::{DecodeError, Error, Options, RecoveryReport};

use crate::dump;
use crate::error::CliError;
use crate::units::parse_size;

/// Exit code when the log holds damaged acknowledged data.
pub const EXIT_CORRUPT: u8 = 1;

/// Options of `raftwal verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The log directory.
    dir: PathBuf,
    /// The segment size the log was written with (tells pre-zeroed space from grown space).
    #[arg(long, value_parser = parse_size, default_value = "64MiB")]
    segment_size: u64,
}

/// What verification found.
#[derive(Debug)]
enum Verdict {
    /// Every frame is valid up to clean zeros.
    Clean(RecoveryReport),
    /// The last write never completed; opening the log cuts it.
    TornTail {
        report: RecoveryReport,
        /// Where the torn write begins, if the dump shows it.
        offset: Option<u64>,
    },
    /// Acknowledged data is damaged.
    Corrupt {
        segment: PathBuf,
        offset: u64,
        source: DecodeError,
    },
}

/// Verifies the log in `args.dir`, prints the verdict and returns the exit code: success for a
/// clean log or a torn tail (a crash leaves one; opening handles it), [`EXIT_CORRUPT`] for damage.
///
/// # Errors
/// [`CliError::NotALog`] if the directory holds no segment; I/O errors reading it.
pub fn run(args: &VerifyArgs) -> Result<ExitCode, CliError> {
    let segments = dump::segments(&args.dir)?;
    let records: usize = segments.iter().map(|s| s.records.len()).sum();
    let mut options = Options::default();
    options.segment_size = args.segment_size;
    let verdict = match inspect::verify(&args.dir, &options) {
        Ok(report) if report.torn_bytes_dropped == 0 => Verdict::Clean(report),
        Ok(report) => {
            let offset = segments
                .iter()
                .find(|s| Some(&s.path) == report.torn_segment.as_ref())
                .and_then(|s| match s.end {
                    End::Stopped { offset, .. } => Some(offset),
                    _ => None,
                });
            Verdict::TornTail { report, offset }
        }
        Err(Error::Corrupt {
            segment,
            offset,
            source,
        }) => Verdict::Corrupt {
            segment,
            offset,
            source,
        },
        Err(e) => return Err(e.into()),
    };
    println!("{}", describe(&verdict, &args.dir, segments.len(), records));
    Ok(match verdict {
        Verdict::Clean(_) | Verdict::TornTail { .. } => ExitCode::SUCCESS,
        Verdict::Corrupt { .. } => ExitCode::from(EXIT_CORRUPT),
    })
}

fn describe(verdict: &Verdict, dir: &Path, segments: usize, records: usize) -> String {
    let read = format!(
        "{}, {}",
        dump::count(segments, "segment file"),
        dump::count(records, "valid record")
    );
    match verdict {
        Verdict::Clean(r) => format!(
            "clean: {}: {read}, last index {}; every checksum matches",
            dir.display(),
            r.last_index
        ),
        Verdict::TornTail { report, offset } => format!(
            "torn tail: {} bytes of a final write that never completed, in {}{}; \
             opening the log drops them (never acknowledged) and keeps last index {} ({read})",
            report.torn_bytes_dropped,
            report
                .torn_segment
                .as_deref()
                .map_or_else(|| dir.display().to_string(), |p| p.display().to_string()),
            offset.map_or_else(String::new, |o| format!(" at byte {o}")),
            report.last_index,
        ),
        Verdict::Corrupt {
            segment,
            offset,
            source,
        } => format!(
            "corrupt: {} at byte {offset}: {source}\n  acknowledged data is damaged; the log \
             will not open until it is repaired by hand ({read})",
            segment.display()
        ),
    }
}

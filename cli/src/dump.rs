//! `raftwal dump DIR`: every segment of a log and every record in it, as they are on disk.

use std::fmt::Write as _;
use std::path::Path;

use raftwal::inspect::{self, End, RecordDump, SegmentDump, What};
use raftwal::{DecodeError, EntryId, HardState};

use crate::error::CliError;
use crate::units::format_size;

/// The segments of the log in `dir`, read without writing or locking.
///
/// # Errors
/// [`CliError::NotALog`] if `dir` holds no segment; the log's error if a file cannot be read.
pub fn segments(dir: &Path) -> Result<Vec<SegmentDump>, CliError> {
    let segments = inspect::dump(dir)?;
    if segments.is_empty() {
        return Err(CliError::NotALog(dir.to_owned()));
    }
    Ok(segments)
}

/// Prints every segment of the log in `dir` and every record in it.
///
/// # Errors
/// As [`segments`].
pub fn run(dir: &Path) -> Result<(), CliError> {
    let segments = segments(dir)?;
    let records: usize = segments.iter().map(|s| s.records.len()).sum();
    for segment in &segments {
        print!("{}", format_segment(segment));
    }
    println!(
        "{}, {}",
        count(segments.len(), "segment file"),
        count(records, "record")
    );
    Ok(())
}

/// A segment: a title line with its header, a line per record, a line for how it ends.
fn format_segment(segment: &SegmentDump) -> String {
    let name = segment
        .path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    let mut out = format!("segment {name} ({} bytes)", segment.len);
    match &segment.header {
        Ok(h) => {
            let _ = writeln!(
                out,
                ": seq {}, first index {}, salt {:#018x}",
                h.seq, h.first_index, h.salt
            );
        }
        Err(DecodeError::BadMagic { found: 0 }) if segment.records.is_empty() => {
            // The log zero-fills its next segment ahead of need; it gets a header when used.
            let _ = writeln!(out, ": prepared ahead, not used yet (zero header)");
            return out;
        }
        Err(e) => {
            let _ = writeln!(out, ": header does not decode: {e}");
        }
    }
    for record in &segment.records {
        let _ = writeln!(out, "  {}", format_record(record));
    }
    let _ = writeln!(out, "  {}", format_end(&segment.end));
    out
}

/// One record: where it is, its sequence numbers, what it says.
fn format_record(r: &RecordDump) -> String {
    format!(
        "@{:<10} lsn {:<8} synced {:<8} {}",
        r.offset,
        r.lsn,
        r.synced_lsn,
        format_what(&r.what)
    )
}

fn format_what(what: &What) -> String {
    match what {
        What::Checkpoint {
            compacted,
            last,
            hard_state,
            snapshot,
        } => format!(
            "checkpoint  compacted to {}, last {}, {}, {}",
            id(*compacted),
            id(*last),
            hard(hard_state),
            match snapshot.index {
                0 => "no snapshot".to_owned(),
                _ => format!("snapshot {}", id(*snapshot)),
            }
        ),
        What::Batch {
            entries,
            count,
            payload_bytes,
            hard_state,
            snapshot,
        } => {
            let mut out = String::from("batch      ");
            if let Some(s) = snapshot {
                let _ = write!(out, " install snapshot {};", id(*s));
            }
            if let Some((first, last)) = entries {
                let _ = write!(
                    out,
                    " {count} entries {}..={} (terms {}..={}), {} payload;",
                    first.index,
                    last.index,
                    first.term,
                    last.term,
                    format_size(*payload_bytes)
                );
            }
            if let Some(hs) = hard_state {
                let _ = write!(out, " {};", hard(hs));
            }
            out.trim_end_matches(';').to_owned()
        }
        What::Truncate { after } => format!("truncate    entries after {after} removed"),
        What::Purge { to } => format!("purge       compacted to {}", id(*to)),
        What::Snapshot {
            id: snapshot,
            conf_state_bytes,
        } => format!(
            "snapshot    {}, conf state {conf_state_bytes} bytes",
            id(*snapshot)
        ),
        What::Seal {
            next_seq,
            next_salt,
        } => format!("seal        next segment seq {next_seq}, salt {next_salt:#018x}"),
        _ => "(a record kind this build does not describe)".to_owned(),
    }
}

fn format_end(end: &End) -> String {
    match end {
        End::Sealed { offset } => format!("end: sealed at byte {offset}"),
        End::Clean { offset } => format!("end: clean at byte {offset} (zeros after)"),
        End::Stopped {
            offset,
            error,
            trailing,
        } => {
            let why = error.map_or_else(|| "a zero frame header".to_owned(), |e| e.to_string());
            format!(
                "end: stopped at byte {offset}: {why}; {trailing} non-zero bytes follow \
                 (`raftwal verify` tells a torn tail from damage)"
            )
        }
        End::NoHeader => "end: no frames read (bad header)".to_owned(),
        _ => "end: (a kind of end this build does not describe)".to_owned(),
    }
}

/// `n thing` or `n things`.
pub fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// An entry id as `index (term t)`.
fn id(id: EntryId) -> String {
    format!("{} (term {})", id.index, id.term)
}

fn hard(hs: &HardState) -> String {
    format!(
        "hard state term {} vote {} commit {}",
        hs.term, hs.vote, hs.commit
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_record_kind_says_what_it_holds() {
        let e = EntryId::new;
        let hs = HardState {
            term: 3,
            vote: 2,
            commit: 7,
        };
        for (what, text) in [
            (
                What::Checkpoint {
                    compacted: e(1, 4),
                    last: e(2, 9),
                    hard_state: hs,
                    snapshot: e(0, 0),
                },
                "checkpoint  compacted to 4 (term 1), last 9 (term 2), \
                 hard state term 3 vote 2 commit 7, no snapshot",
            ),
            (
                What::Batch {
                    entries: Some((e(2, 10), e(3, 25))),
                    count: 16,
                    payload_bytes: 16 << 10,
                    hard_state: Some(hs),
                    snapshot: Some(e(2, 9)),
                },
                "batch       install snapshot 9 (term 2); 16 entries 10..=25 (terms 2..=3), \
                 16 KiB payload; hard state term 3 vote 2 commit 7",
            ),
            (
                What::Batch {
                    entries: None,
                    count: 0,
                    payload_bytes: 0,
                    hard_state: Some(hs),
                    snapshot: None,
                },
                "batch       hard state term 3 vote 2 commit 7",
            ),
            (
                What::Truncate { after: 12 },
                "truncate    entries after 12 removed",
            ),
            (
                What::Purge { to: e(2, 8) },
                "purge       compacted to 8 (term 2)",
            ),
            (
                What::Snapshot {
                    id: e(2, 8),
                    conf_state_bytes: 12,
                },
                "snapshot    8 (term 2), conf state 12 bytes",
            ),
            (
                What::Seal {
                    next_seq: 2,
                    next_salt: 0xab,
                },
                "seal        next segment seq 2, salt 0x00000000000000ab",
            ),
        ] {
            assert_eq!(format_what(&what), text);
        }
    }

    #[test]
    fn count_says_one_or_many() {
        assert_eq!(count(0, "record"), "0 records");
        assert_eq!(count(1, "record"), "1 record");
        assert_eq!(count(3, "segment file"), "3 segment files");
    }

    #[test]
    fn each_end_names_its_offset() {
        for (end, text) in [
            (End::Sealed { offset: 4096 }, "sealed at byte 4096"),
            (End::Clean { offset: 200 }, "clean at byte 200"),
            (
                End::Stopped {
                    offset: 304,
                    error: None,
                    trailing: 17,
                },
                "stopped at byte 304: a zero frame header; 17 non-zero bytes follow",
            ),
        ] {
            let line = format_end(&end);
            assert!(line.contains(text), "{line:?} lacks {text:?}");
        }
    }
}

//! Segment file names: `{seq:016x}.wal`, fixed width so that lexical order is log order; and the
//! names of files being built (`.wal.tmp`) or kept for reuse (`.free`).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

const SUFFIX: &str = ".wal";
const TEMP_SUFFIX: &str = ".wal.tmp";
const FREE_SUFFIX: &str = ".free";
const SEQ_DIGITS: usize = 16;

/// The file name of segment `seq`.
pub(crate) fn segment_name(seq: u64) -> String {
    format!("{seq:0SEQ_DIGITS$x}{SUFFIX}")
}

/// The name a segment is built under before it is renamed into place.
pub(crate) fn temp_name(seq: u64) -> String {
    format!("{seq:0SEQ_DIGITS$x}{TEMP_SUFFIX}")
}

/// The name a purged segment `seq` is kept under for reuse: replay never reads it.
pub(crate) fn free_name(seq: u64) -> String {
    format!("{seq:0SEQ_DIGITS$x}{FREE_SUFFIX}")
}

/// What a directory entry is to the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileName {
    /// A segment with this sequence number.
    Segment(u64),
    /// A segment left half-built by a crash: safe to remove.
    Temp,
    /// A purged segment kept for reuse; the number is the segment it was.
    Free(u64),
    /// Anything else (the lock file, files of other programs): left alone.
    Other,
}

/// Classifies a directory entry.
pub(crate) fn parse(name: &str) -> FileName {
    if name.strip_suffix(TEMP_SUFFIX).and_then(parse_seq).is_some() {
        return FileName::Temp;
    }
    if let Some(seq) = name.strip_suffix(FREE_SUFFIX).and_then(parse_seq) {
        return FileName::Free(seq);
    }
    match name.strip_suffix(SUFFIX).and_then(parse_seq) {
        Some(seq) => FileName::Segment(seq),
        None => FileName::Other,
    }
}

fn parse_seq(digits: &str) -> Option<u64> {
    let canonical = digits.len() == SEQ_DIGITS
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    canonical
        .then(|| u64::from_str_radix(digits, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_sort_in_log_order() {
        for seq in [0, 1, 0xff, 0x1_0000, u64::MAX] {
            assert_eq!(parse(&segment_name(seq)), FileName::Segment(seq));
            assert_eq!(parse(&temp_name(seq)), FileName::Temp);
            assert_eq!(parse(&free_name(seq)), FileName::Free(seq));
        }
        let mut names: Vec<String> = [300u64, 2, 17, 1 << 40].map(segment_name).into();
        names.sort();
        let seqs: Vec<FileName> = names.iter().map(|n| parse(n)).collect();
        let want = [2u64, 17, 300, 1 << 40].map(FileName::Segment);
        assert_eq!(seqs, want);
    }

    #[test]
    fn foreign_names_are_left_alone() {
        for name in [
            "LOCK",
            ".wal",
            "1.wal",
            "000000000000000G.wal",
            "000000000000000A.wal",
            "00000000000000001.wal",
            "0000000000000001.wal.bak",
            "0000000000000001.tmp",
            "1.free",
            "0000000000000001.wal.free",
        ] {
            assert_eq!(parse(name), FileName::Other, "{name}");
        }
    }
}

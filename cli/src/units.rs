//! Byte sizes as people type and read them: `128`, `1KiB`, `16k`, `4MiB`.

/// Parses a byte size: a whole number, optionally followed by a binary unit (`B`, `K`/`KiB`,
/// `M`/`MiB`, `G`/`GiB`, any case). Used as a clap value parser.
///
/// # Errors
/// A message naming the accepted forms, for an empty, non-numeric, zero or overflowing size.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => return Err(format!("{text:?}: unknown unit (use B, KiB, MiB or GiB)")),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a size such as 128, 1KiB or 4MiB"))?;
    match number.checked_mul(1 << shift) {
        Some(0) => Err(format!("{text:?}: a size must be at least 1 byte")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{text:?}: too large")),
    }
}

/// `bytes` in the largest binary unit that divides it exactly: `128 B`, `1 KiB`, `16 KiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u32, &str); 3] = [(30, "GiB"), (20, "MiB"), (10, "KiB")];
    for (shift, unit) in UNITS {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} B")
}

/// A whole count with thousands separators: `1,234,567`.
pub fn format_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_size_accepts_numbers_and_binary_units() {
        for (text, bytes) in [
            ("128", 128),
            ("128B", 128),
            ("1KiB", 1024),
            ("1k", 1024),
            ("16 KiB", 16 << 10),
            ("4MiB", 4 << 20),
            ("2g", 2 << 30),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn parse_size_rejects_what_is_not_a_size() {
        for text in [
            "",
            "KiB",
            "0",
            "0KiB",
            "12x",
            "-1",
            "1.5KiB",
            "99999999999999999999",
        ] {
            assert!(parse_size(text).is_err(), "{text:?} parsed");
        }
        assert!(parse_size("17179869184GiB").is_err(), "overflow parsed");
    }

    #[test]
    fn format_size_uses_the_largest_exact_unit() {
        for (bytes, text) in [
            (0, "0 B"),
            (128, "128 B"),
            (1024, "1 KiB"),
            (1536, "1536 B"),
            (16 << 10, "16 KiB"),
            (256 << 20, "256 MiB"),
            (1 << 30, "1 GiB"),
        ] {
            assert_eq!(format_size(bytes), text);
        }
    }

    #[test]
    fn format_count_groups_thousands() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (123_456, "123,456"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(format_count(n), text);
        }
    }
}

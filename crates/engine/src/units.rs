//! Parsing the values of `--memory`, `--cpus` and friends, with Docker's rules.

/// A memory size: `64m`, `1g`, `512k`, `1024b`, with an optional `b`/`ib` after the unit.
/// A bare number means MiB, the course's meaning (Docker reads it as bytes).
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let bad = || format!("invalid memory size {s:?}: use a number with an optional unit, e.g. 64m, 1g, 512k");
    let lower = s.trim().to_ascii_lowercase();
    let split = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let multiplier: u64 = match unit {
        "" => 1 << 20,
        "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    let bytes = value * multiplier as f64;
    // The spec holds limits as i64; anything larger would wrap to "unlimited".
    if bytes >= i64::MAX as f64 {
        return Err(format!("invalid memory size {s:?}: too large"));
    }
    Ok(bytes as u64)
}

/// A number of CPUs, fractions allowed (`0.5` is half a CPU), as Docker's `--cpus`.
pub fn parse_cpus(s: &str) -> Result<f64, String> {
    let value: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("invalid --cpus value {s:?}: use a positive number of CPUs, e.g. 1 or 0.5"))?;
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("invalid --cpus value {s:?}: must be greater than 0"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_are_mebibytes() {
        assert_eq!(parse_memory("64").unwrap(), 64 << 20);
    }

    #[test]
    fn docker_units() {
        assert_eq!(parse_memory("64m").unwrap(), 64 << 20);
        assert_eq!(parse_memory("64M").unwrap(), 64 << 20);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("512k").unwrap(), 512 << 10);
        assert_eq!(parse_memory("512kb").unwrap(), 512 << 10);
        assert_eq!(parse_memory("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_memory("4096b").unwrap(), 4096);
        assert_eq!(parse_memory("1.5g").unwrap(), 3 << 29);
    }

    #[test]
    fn garbage_is_refused() {
        for s in ["abc", "", "12x", "-5m", "m", "99999999999t"] {
            assert!(parse_memory(s).is_err(), "{s}");
        }
    }

    #[test]
    fn cpus_take_fractions_and_refuse_non_positive() {
        assert_eq!(parse_cpus("0.5").unwrap(), 0.5);
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("one").is_err());
    }
}

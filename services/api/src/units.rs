//! Units Kubernetes writes as strings: quantities (`100m`, `1.5Gi`) and durations (`90s`,
//! `1h30m`). Every service parses them here, once.

use std::time::Duration;

/// Parses a Kubernetes quantity (`100m`, `1.5Gi`, `2e3`, `1`) into its value.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    if num.is_empty() || num == "+" || num == "-" || num.matches('.').count() > 1 {
        return None;
    }
    if num[1..].contains(['+', '-']) {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().ok()?;
            10f64.powi(e)
        }
        _ => return None,
    };
    Some(n * mult)
}

/// A cpu quantity in millicores, rounded up (`100m` → 100, `1.5` → 1500).
pub fn cpu_millis(q: &str) -> Option<i64> {
    parse_quantity(q).map(|v| (v * 1000.0).ceil() as i64)
}

/// A memory (or any count) quantity in whole units, rounded up (`1Ki` → 1024).
pub fn whole_units(q: &str) -> Option<i64> {
    parse_quantity(q).map(|v| v.ceil() as i64)
}

/// Parses a Go `time.ParseDuration` string (`1h30m`, `90s`, `1.5h`) into seconds.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    if s == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * factor;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Parses a duration flag: a Go duration (`500ms`, `5s`, `2m`, `1h30m`) or a bare number of
/// seconds (`90`). Zero is allowed; negative and malformed values are errors that show the
/// accepted forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let secs = match t.parse::<f64>() {
        Ok(n) => Some(n),
        Err(_) => parse_go_duration(t),
    };
    match secs.and_then(|n| Duration::try_from_secs_f64(n).ok()) {
        Some(d) => Ok(d),
        None => Err(format!(
            "{s:?} is not a duration; write e.g. 500ms, 30s, 2m, 1h30m or a number of seconds"
        )),
    }
}

/// [`parse_duration`] for values that must be above zero (intervals, timeouts).
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("{s:?}: must be more than zero")),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_every_form_flags_use() {
        let ms = Duration::from_millis;
        let table = [
            ("90", Some(ms(90_000))),
            ("2.5", Some(ms(2_500))),
            ("500ms", Some(ms(500))),
            ("30s", Some(ms(30_000))),
            ("2m", Some(ms(120_000))),
            ("1h", Some(ms(3_600_000))),
            ("1h30m", Some(ms(5_400_000))),
            (" 5s ", Some(ms(5_000))),
            ("0s", Some(ms(0))),
            ("0", Some(ms(0))),
            ("-1", None),
            ("-1s", None),
            ("1e300", None),
            ("5x", None),
            ("abc", None),
            ("", None),
        ];
        for (input, want) in table {
            assert_eq!(parse_duration(input).ok(), want, "{input:?}");
        }
        assert!(parse_positive_duration("0s").is_err());
        assert_eq!(parse_positive_duration("250ms"), Ok(ms(250)));
        let err = parse_duration("5x").unwrap_err();
        assert!(err.contains("500ms, 30s"), "{err}");
    }

    #[test]
    fn go_durations_add_up_their_parts() {
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_go_duration("1.5h"), Some(5400.0));
        assert_eq!(parse_go_duration("500ms"), Some(0.5));
        assert_eq!(parse_go_duration("5"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn quantities_read_every_suffix() {
        let table = [
            ("100m", Some(0.1)),
            ("1", Some(1.0)),
            ("1.5Gi", Some(1.5 * (1u64 << 30) as f64)),
            ("2k", Some(2000.0)),
            ("2e3", Some(2000.0)),
            ("1Ki", Some(1024.0)),
            ("abc", None),
            ("1.2.3", None),
        ];
        for (q, want) in table {
            assert_eq!(parse_quantity(q), want, "{q}");
        }
        assert_eq!(cpu_millis("250m"), Some(250));
        assert_eq!(cpu_millis("1.5"), Some(1500));
        assert_eq!(whole_units("1Mi"), Some(1 << 20));
    }
}

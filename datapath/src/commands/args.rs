//! Reading command arguments the way Redis does: strict integers, floats, case-insensitive
//! option names.

/// Redis' `string2ll`: optional `-`, digits, no `+`, no spaces, no leading zeros, fits in i64.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    match digits {
        [] => return None,
        [b'0'] => return (!negative).then_some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    // Accumulate negatively so i64::MIN parses.
    let mut value: i64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_sub(i64::from(byte - b'0'))?;
    }
    if negative {
        Some(value)
    } else {
        value.checked_neg()
    }
}

/// A float as INCRBYFLOAT takes it: decimal or exponent form, finite; no spaces, no `inf`/`nan`.
pub fn parse_f64(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let value: f64 = text.parse().ok()?;
    value.is_finite().then_some(value)
}

/// Formats a float as Redis' INCRBYFLOAT does (`%.17Lg` then trailing zeros trimmed): the
/// shortest decimal that round-trips, never in exponent form for ordinary magnitudes.
pub fn format_f64(value: f64) -> Vec<u8> {
    if value == value.trunc() && value.abs() < 1e17 {
        return format!("{}", value as i64).into_bytes();
    }
    let text = format!("{value}");
    text.into_bytes()
}

/// ASCII case-insensitive comparison of an argument with an option name (given in upper case).
pub fn is(argument: &[u8], upper: &str) -> bool {
    argument.eq_ignore_ascii_case(upper.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_strict_like_redis() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b"9223372036854775808"[..],
            b"",
            b"-",
            b"+1",
            b" 1",
            b"01",
            b"-0",
            b"1.0",
            b"1e3",
            b"abc",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats_parse_and_print_like_incrbyfloat() {
        assert_eq!(parse_f64(b"10.5"), Some(10.5));
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b"inf"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(format_f64(10.5), b"10.5");
        assert_eq!(format_f64(5200.0), b"5200");
        assert_eq!(format_f64(3.0e-1 + 0.1), b"0.4");
    }
}

//! Decimal integers as both protocols write them: strict parsing (no sign where none is allowed,
//! no spaces, no overflow) and formatting straight into an output buffer.

/// Longest decimal form of a 64-bit integer: 20 digits (`u64::MAX`) or a sign and 19 digits.
const DECIMAL_BYTES_MAX: usize = 20;

/// Parses `digits` the way Redis' `string2ll` does: `0`, or an optional `-` then a non-zero
/// digit then digits, fitting an `i64`. No `+`, no leading zeros, no spaces, no `-0`.
pub(crate) fn parse_i64(digits: &[u8]) -> Option<i64> {
    if digits == b"0" {
        return Some(0);
    }
    let (negative, magnitude) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    match magnitude.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let value = parse_u64(magnitude)?;
    if negative {
        // i64::MIN's magnitude is one more than i64::MAX.
        0i64.checked_sub_unsigned(value)
    } else {
        i64::try_from(value).ok()
    }
}

/// Parses a non-empty run of ASCII digits into a `u64` (leading zeros allowed, as memcached's
/// `strtoull` allows them), `None` on any other byte or on overflow.
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &byte in digits {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(value)
}

/// Appends the decimal form of `value`.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; DECIMAL_BYTES_MAX];
    let mut start = DECIMAL_BYTES_MAX;
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Appends the decimal form of `value`, with a `-` when negative.
pub(crate) fn write_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    write_u64(out, value.unsigned_abs());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_i64_is_strict() {
        let cases: &[(&[u8], Option<i64>)] = &[
            (b"0", Some(0)),
            (b"42", Some(42)),
            (b"-42", Some(-42)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"-9223372036854775809", None),
            (b"", None),
            (b"-", None),
            (b"-0", None),
            (b"007", None),
            (b"+1", None),
            (b" 1", None),
            (b"1 ", None),
            (b"1a", None),
        ];
        for &(digits, expect) in cases {
            assert_eq!(
                parse_i64(digits),
                expect,
                "{:?}",
                String::from_utf8_lossy(digits)
            );
        }
    }

    #[test]
    fn parse_u64_takes_digits_only() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"007"), Some(7));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"-1"), None);
    }

    #[test]
    fn write_round_trips() {
        for value in [0, 1, -1, 9, 10, -10, 12345, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_i64(&mut out, value);
            assert_eq!(out, value.to_string().as_bytes());
        }
        let mut out = Vec::new();
        write_u64(&mut out, u64::MAX);
        assert_eq!(out, u64::MAX.to_string().as_bytes());
    }
}

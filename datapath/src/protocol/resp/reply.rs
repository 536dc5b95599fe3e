//! The RESP reply encoder: writes RESP2 or RESP3 straight into the connection's output buffer.

use crate::protocol::number::{write_i64, write_u64};
use std::fmt;
use std::io::Write;

/// The protocol version a connection speaks (`HELLO 2` / `HELLO 3`); every connection starts on
/// RESP2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    /// RESP2: simple strings, errors, integers, bulk strings, arrays and their nulls.
    #[default]
    Resp2,
    /// RESP3: adds null, doubles, booleans, maps, sets, verbatim strings and pushes.
    Resp3,
}

/// Appends replies to `out` in the connection's [`Version`]; RESP3-only types fall back to the
/// RESP2 forms Redis sends (map → flat array of key, value, ...; set and push → array; double and
/// verbatim → bulk string; boolean → integer 1/0; null → `$-1` or `*-1`).
///
/// An aggregate header (`array`, `map`, `set`, `push`) announces how many replies follow; the
/// caller then writes exactly that many (for `map`, two per entry).
pub struct Reply<'a> {
    out: &'a mut Vec<u8>,
    version: Version,
}

impl<'a> Reply<'a> {
    /// An encoder appending to `out`.
    pub fn new(out: &'a mut Vec<u8>, version: Version) -> Self {
        Reply { out, version }
    }

    /// The version this encoder writes.
    pub fn version(&self) -> Version {
        self.version
    }

    /// `+text`. Line breaks in `text` become spaces, so the reply stays one line.
    pub fn simple(&mut self, text: &[u8]) {
        self.out.push(b'+');
        self.line_sanitized(&[text]);
    }

    /// `-text`, where `text` starts with the error code (`ERR ...`, `WRONGTYPE ...`). Line breaks
    /// become spaces, as Redis makes them.
    pub fn error(&mut self, text: &[u8]) {
        self.error_parts(&[text]);
    }

    /// `-` and the concatenation of `parts`: an error quoting client bytes without building it
    /// first (`ERR unknown command '`, name, `'...`).
    pub fn error_parts(&mut self, parts: &[&[u8]]) {
        self.out.push(b'-');
        self.line_sanitized(parts);
    }

    /// `-` and a formatted error, e.g. `reply.error_fmt(format_args!("ERR {error}"))`.
    pub fn error_fmt(&mut self, text: fmt::Arguments<'_>) {
        self.out.push(b'-');
        let start = self.out.len();
        // Writing into a Vec cannot fail.
        let _ = self.out.write_fmt(text);
        sanitize(&mut self.out[start..]);
        self.out.extend_from_slice(b"\r\n");
    }

    /// `:value`.
    pub fn integer(&mut self, value: i64) {
        self.out.push(b':');
        write_i64(self.out, value);
        self.crlf();
    }

    /// `$len` and the bytes.
    pub fn bulk(&mut self, data: &[u8]) {
        self.header(b'$', data.len());
        self.out.extend_from_slice(data);
        self.crlf();
    }

    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        self.null_as(b"$-1\r\n");
    }

    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        self.null_as(b"*-1\r\n");
    }

    /// `*len`: `len` replies follow.
    pub fn array(&mut self, len: usize) {
        self.header(b'*', len);
    }

    /// `%len` (RESP3) or `*2len` (RESP2): `len` key/value pairs follow.
    pub fn map(&mut self, len: usize) {
        match self.version {
            Version::Resp3 => self.header(b'%', len),
            Version::Resp2 => self.header(b'*', len * 2),
        }
    }

    /// `~len` (RESP3) or `*len` (RESP2).
    pub fn set(&mut self, len: usize) {
        self.aggregate(b'~', len);
    }

    /// `>len` (RESP3) or `*len` (RESP2): an out-of-band message of `len` replies.
    pub fn push(&mut self, len: usize) {
        self.aggregate(b'>', len);
    }

    /// `,value` (RESP3: `inf`, `-inf`, `nan` for the non-finite) or the same text as a bulk
    /// string (RESP2).
    pub fn double(&mut self, value: f64) {
        let mut text = [0u8; DOUBLE_BYTES_MAX];
        let len = format_double(value, &mut text);
        match self.version {
            Version::Resp3 => {
                self.out.push(b',');
                self.out.extend_from_slice(&text[..len]);
                self.crlf();
            }
            Version::Resp2 => self.bulk(&text[..len]),
        }
    }

    /// `#t` / `#f` (RESP3) or `:1` / `:0` (RESP2).
    pub fn boolean(&mut self, value: bool) {
        match self.version {
            Version::Resp3 => self
                .out
                .extend_from_slice(if value { b"#t\r\n" } else { b"#f\r\n" }),
            Version::Resp2 => self.integer(i64::from(value)),
        }
    }

    /// `=len` and `format:text` (RESP3, `format` is `txt` or `mkd`) or `text` as a bulk string
    /// (RESP2).
    pub fn verbatim(&mut self, format: &[u8; 3], text: &[u8]) {
        match self.version {
            Version::Resp3 => {
                self.header(b'=', text.len() + format.len() + 1);
                self.out.extend_from_slice(format);
                self.out.push(b':');
                self.out.extend_from_slice(text);
                self.crlf();
            }
            Version::Resp2 => self.bulk(text),
        }
    }

    fn null_as(&mut self, resp2: &[u8]) {
        match self.version {
            Version::Resp3 => self.out.extend_from_slice(b"_\r\n"),
            Version::Resp2 => self.out.extend_from_slice(resp2),
        }
    }

    fn aggregate(&mut self, resp3_type: u8, len: usize) {
        match self.version {
            Version::Resp3 => self.header(resp3_type, len),
            Version::Resp2 => self.header(b'*', len),
        }
    }

    fn header(&mut self, type_byte: u8, len: usize) {
        self.out.push(type_byte);
        write_u64(self.out, len as u64);
        self.crlf();
    }

    fn line_sanitized(&mut self, parts: &[&[u8]]) {
        for part in parts {
            let start = self.out.len();
            self.out.extend_from_slice(part);
            sanitize(&mut self.out[start..]);
        }
        self.crlf();
    }

    fn crlf(&mut self) {
        self.out.extend_from_slice(b"\r\n");
    }
}

/// Replaces line breaks with spaces so that a one-line reply stays one line.
fn sanitize(text: &mut [u8]) {
    for byte in text {
        if *byte == b'\r' || *byte == b'\n' {
            *byte = b' ';
        }
    }
}

/// Longest text [`format_double`] writes: `-`, 17 significant digits, `.`, `e-308`, with room.
const DOUBLE_BYTES_MAX: usize = 32;

/// Shortest text that reads back as `value` (Rust's round-trip formatting), with an exponent
/// for very large or very small magnitudes as Redis writes them; `inf`, `-inf`, `nan` otherwise.
fn format_double(value: f64, text: &mut [u8; DOUBLE_BYTES_MAX]) -> usize {
    /// Below this magnitude and above the next, plain digits stay short; outside, an exponent.
    const PLAIN_MAGNITUDE_MAX: f64 = 1e17;
    const PLAIN_MAGNITUDE_MIN: f64 = 1e-5;
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    let magnitude = value.abs();
    // A finite f64 fits DOUBLE_BYTES_MAX in either form, so the write cannot fail.
    let _ = if value.is_nan() {
        cursor.write_all(b"nan")
    } else if value.is_infinite() {
        cursor.write_all(if value > 0.0 { b"inf" } else { b"-inf" })
    } else if magnitude != 0.0 && !(PLAIN_MAGNITUDE_MIN..PLAIN_MAGNITUDE_MAX).contains(&magnitude) {
        write!(cursor, "{value:e}")
    } else {
        write!(cursor, "{value}")
    };
    cursor.position() as usize
}

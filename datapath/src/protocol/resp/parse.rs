//! The RESP request parser: multibulk (`*N\r\n$len\r\n...`) and inline (telnet) requests.

use crate::protocol::number::parse_i64;
use std::fmt;
use std::ops::Range;

/// Largest bulk argument accepted by default: 512 MiB, Redis' `proto-max-bulk-len` default. A
/// server lowers it to its largest item with [`Limits::bulk_bytes_max`].
pub const BULK_BYTES_MAX: usize = 512 * 1024 * 1024;

/// Most arguments in one multibulk request by default (Redis 6's limit, 1 Mi). Each costs the
/// request 16 bytes of argument table, so this also bounds that table to 16 MiB.
pub const MULTIBULK_ELEMENTS_MAX: usize = 1024 * 1024;

/// Longest inline request line (up to its `\n`), and longest `*N` / `$len` header line (up to its
/// `\r\n`): 64 KiB, Redis' `PROTO_INLINE_MAX_SIZE`.
pub const INLINE_BYTES_MAX: usize = 64 * 1024;

/// The limits the parser enforces as soon as a header announces a size, before the bytes are
/// buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest bulk argument (`$len`), in bytes.
    pub bulk_bytes_max: usize,
    /// Most arguments in one multibulk request (`*N`).
    pub multibulk_elements_max: usize,
    /// Longest inline line (up to its `\n`) or header line (up to its `\r\n`), in bytes.
    pub inline_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            bulk_bytes_max: BULK_BYTES_MAX,
            multibulk_elements_max: MULTIBULK_ELEMENTS_MAX,
            inline_bytes_max: INLINE_BYTES_MAX,
        }
    }
}

/// A malformed request. The server answers `-ERR ` followed by this error's text (for example
/// `-ERR Protocol error: invalid bulk length`) and closes the connection, as Redis does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// An inline line longer than [`Limits::inline_bytes_max`].
    InlineTooBig,
    /// An inline line whose quotes do not close, or whose closing quote is not followed by a space.
    UnbalancedQuotes,
    /// A `*N` header line longer than [`Limits::inline_bytes_max`].
    MultibulkCountTooBig,
    /// A `*N` count that is not a number or is over [`Limits::multibulk_elements_max`].
    InvalidMultibulkLength,
    /// A `$len` header line longer than [`Limits::inline_bytes_max`].
    BulkCountTooBig,
    /// A multibulk element that does not start with `$`.
    ExpectedDollar {
        /// The byte found instead.
        got: u8,
    },
    /// A `$len` that is not a number, is negative, or is over [`Limits::bulk_bytes_max`].
    InvalidBulkLength,
    /// Bulk data not followed by `\r\n`.
    BulkNotTerminated,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Protocol error: ")?;
        match self {
            ProtocolError::InlineTooBig => formatter.write_str("too big inline request"),
            ProtocolError::UnbalancedQuotes => formatter.write_str("unbalanced quotes in request"),
            ProtocolError::MultibulkCountTooBig => {
                formatter.write_str("too big mbulk count string")
            }
            ProtocolError::InvalidMultibulkLength => {
                formatter.write_str("invalid multibulk length")
            }
            ProtocolError::BulkCountTooBig => formatter.write_str("too big bulk count string"),
            // Redis prints the byte with `%c`; a line break would break the reply line.
            ProtocolError::ExpectedDollar { got: b'\r' | b'\n' } => {
                formatter.write_str("expected '$', got ' '")
            }
            ProtocolError::ExpectedDollar { got } => {
                write!(formatter, "expected '$', got '{}'", char::from(*got))
            }
            ProtocolError::InvalidBulkLength => formatter.write_str("invalid bulk length"),
            ProtocolError::BulkNotTerminated => {
                formatter.write_str("bulk data not terminated by CRLF")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// What [`parse`] found at the start of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request, now in the [`Request`], taking the first `consumed` bytes of the input.
    /// A request with no arguments (`*0\r\n`, `*-1\r\n`, a blank inline line) is to be skipped.
    Complete {
        /// Bytes of input the request took, newline included.
        consumed: usize,
    },
    /// The input is a prefix of a request: read more bytes and parse again from the same start.
    Incomplete,
}

/// The arguments of the last request [`parse`] completed, kept by the caller and reused so that
/// parsing allocates nothing once its tables have grown.
///
/// Multibulk arguments are ranges of the input buffer (no copy). Inline arguments may hold quote
/// escapes, so they are unescaped into a scratch buffer the request owns.
#[derive(Debug, Default)]
pub struct Request {
    ranges: Vec<Range<usize>>,
    scratch: Vec<u8>,
    inline: bool,
}

impl Request {
    /// An empty request.
    pub fn new() -> Self {
        Request::default()
    }

    /// How many arguments, the command name included.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the request has no arguments (and is to be skipped).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether the request came inline (telnet style) rather than as a multibulk.
    pub fn is_inline(&self) -> bool {
        self.inline
    }

    /// Argument `index` (0 is the command name). `input` must be the buffer given to the
    /// [`parse`] call that completed this request.
    pub fn arg<'a>(&'a self, input: &'a [u8], index: usize) -> &'a [u8] {
        self.input_arg(input, index)
            .unwrap_or_else(|| &self.scratch[self.ranges[index].clone()])
    }

    /// Argument `index` when it lies in `input` itself, borrowed from `input` alone; `None` for
    /// an inline request, whose arguments were unescaped into the request.
    pub fn input_arg<'a>(&self, input: &'a [u8], index: usize) -> Option<&'a [u8]> {
        (!self.inline).then(|| &input[self.ranges[index].clone()])
    }

    /// Every argument in order; `input` as for [`Request::arg`].
    pub fn args<'a>(&'a self, input: &'a [u8]) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        (0..self.len()).map(move |index| self.arg(input, index))
    }

    fn clear(&mut self, inline: bool) {
        self.ranges.clear();
        self.scratch.clear();
        self.inline = inline;
    }
}

/// Parses the request at the start of `input` into `request`.
///
/// Returns [`Parsed::Incomplete`] on every strict prefix of a valid request, and an error as soon
/// as the bytes seen so far cannot start a valid one; a size over `limits` is refused when its
/// header arrives, before its bytes do.
pub fn parse(
    input: &[u8],
    limits: &Limits,
    request: &mut Request,
) -> Result<Parsed, ProtocolError> {
    match input.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'*') => parse_multibulk(input, limits, request),
        Some(_) => parse_inline(input, limits, request),
    }
}

/// A header line's content (between its type byte and `\r\n`) and where the next line starts.
enum Line {
    Complete { content: Range<usize>, next: usize },
    Incomplete,
}

/// Finds the `\r\n` ending the header line whose content starts at `start`. A `\r` not followed by
/// `\n` makes `malformed`; a line longer than the limit makes `too_big`.
fn header_line(
    input: &[u8],
    start: usize,
    limits: &Limits,
    too_big: ProtocolError,
    malformed: ProtocolError,
) -> Result<Line, ProtocolError> {
    let window_end = input.len().min(
        start
            .saturating_add(limits.inline_bytes_max)
            .saturating_add(1),
    );
    let Some(offset) = input[start..window_end]
        .iter()
        .position(|&byte| byte == b'\r')
    else {
        return if input.len() - start > limits.inline_bytes_max {
            Err(too_big)
        } else {
            Ok(Line::Incomplete)
        };
    };
    let carriage_return = start + offset;
    match input.get(carriage_return + 1) {
        None => Ok(Line::Incomplete),
        Some(b'\n') => Ok(Line::Complete {
            content: start..carriage_return,
            next: carriage_return + 2,
        }),
        Some(_) => Err(malformed),
    }
}

fn parse_multibulk(
    input: &[u8],
    limits: &Limits,
    request: &mut Request,
) -> Result<Parsed, ProtocolError> {
    request.clear(false);
    let count_error = ProtocolError::InvalidMultibulkLength;
    let (content, mut position) = match header_line(
        input,
        1,
        limits,
        ProtocolError::MultibulkCountTooBig,
        count_error,
    )? {
        Line::Complete { content, next } => (content, next),
        Line::Incomplete => return Ok(Parsed::Incomplete),
    };
    let count = parse_i64(&input[content]).ok_or(count_error)?;
    if count <= 0 {
        return Ok(Parsed::Complete { consumed: position });
    }
    let count = usize::try_from(count).map_err(|_| count_error)?;
    if count > limits.multibulk_elements_max {
        return Err(count_error);
    }
    for _ in 0..count {
        match input.get(position) {
            None => return Ok(Parsed::Incomplete),
            Some(b'$') => {}
            Some(&got) => return Err(ProtocolError::ExpectedDollar { got }),
        }
        let length_error = ProtocolError::InvalidBulkLength;
        let (content, data_start) = match header_line(
            input,
            position + 1,
            limits,
            ProtocolError::BulkCountTooBig,
            length_error,
        )? {
            Line::Complete { content, next } => (content, next),
            Line::Incomplete => return Ok(Parsed::Incomplete),
        };
        let length = parse_i64(&input[content]).ok_or(length_error)?;
        let length = usize::try_from(length).map_err(|_| length_error)?;
        if length > limits.bulk_bytes_max {
            return Err(length_error);
        }
        let data_end = data_start.saturating_add(length);
        // Matched by pattern: a slice compare of a run-time length is a memcmp call per bulk.
        match input.get(data_end..).unwrap_or_default() {
            [b'\r', b'\n', ..] => {}
            [] | [b'\r'] => return Ok(Parsed::Incomplete),
            _ => return Err(ProtocolError::BulkNotTerminated),
        }
        request.ranges.push(data_start..data_end);
        position = data_end + 2;
    }
    Ok(Parsed::Complete { consumed: position })
}

fn parse_inline(
    input: &[u8],
    limits: &Limits,
    request: &mut Request,
) -> Result<Parsed, ProtocolError> {
    request.clear(true);
    let window_end = input.len().min(limits.inline_bytes_max.saturating_add(1));
    let Some(newline) = input[..window_end].iter().position(|&byte| byte == b'\n') else {
        return if input.len() > limits.inline_bytes_max {
            Err(ProtocolError::InlineTooBig)
        } else {
            Ok(Parsed::Incomplete)
        };
    };
    let line = &input[..newline];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    split_arguments(line, request)?;
    Ok(Parsed::Complete {
        consumed: newline + 1,
    })
}

/// Splits an inline line into arguments as Redis' `sdssplitargs` does: spaces separate,
/// `"..."` takes `\n \r \t \b \a \\ \"` and `\xHH` escapes, `'...'` takes `\'`, a closing quote
/// must be followed by a space or the end, and a NUL byte ends the line (it is a C string there).
fn split_arguments(line: &[u8], request: &mut Request) -> Result<(), ProtocolError> {
    let line = line.split(|&byte| byte == 0).next().unwrap_or_default();
    let mut position = 0;
    loop {
        while line
            .get(position)
            .is_some_and(|&byte| byte.is_ascii_whitespace() || byte == 0x0b)
        {
            position += 1;
        }
        if position == line.len() {
            return Ok(());
        }
        let start = request.scratch.len();
        position = split_one(line, position, &mut request.scratch)?;
        request.ranges.push(start..request.scratch.len());
    }
}

/// Unescapes the argument starting at `position` into `scratch`; returns where it ends.
fn split_one(
    line: &[u8],
    mut position: usize,
    scratch: &mut Vec<u8>,
) -> Result<usize, ProtocolError> {
    #[derive(PartialEq)]
    enum Quote {
        None,
        Double,
        Single,
    }
    let mut quote = Quote::None;
    loop {
        let Some(&byte) = line.get(position) else {
            return if quote == Quote::None {
                Ok(position)
            } else {
                Err(ProtocolError::UnbalancedQuotes)
            };
        };
        match quote {
            Quote::None => match byte {
                b' ' | b'\t' | b'\r' | b'\n' => return Ok(position),
                b'"' => quote = Quote::Double,
                b'\'' => quote = Quote::Single,
                _ => scratch.push(byte),
            },
            Quote::Double => match byte {
                b'\\'
                    if line.get(position + 1) == Some(&b'x')
                        && line.len() > position + 3
                        && line[position + 2].is_ascii_hexdigit()
                        && line[position + 3].is_ascii_hexdigit() =>
                {
                    scratch
                        .push(hex_value(line[position + 2]) << 4 | hex_value(line[position + 3]));
                    position += 3;
                }
                b'\\' if position + 1 < line.len() => {
                    position += 1;
                    scratch.push(match line[position] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                }
                b'"' => return closing_quote(line, position),
                _ => scratch.push(byte),
            },
            Quote::Single => match byte {
                b'\\' if line.get(position + 1) == Some(&b'\'') => {
                    scratch.push(b'\'');
                    position += 1;
                }
                b'\'' => return closing_quote(line, position),
                _ => scratch.push(byte),
            },
        }
        position += 1;
    }
}

/// A closing quote at `position` must be followed by a space or the end of the line.
fn closing_quote(line: &[u8], position: usize) -> Result<usize, ProtocolError> {
    match line.get(position + 1) {
        None => Ok(position + 1),
        Some(byte) if byte.is_ascii_whitespace() || *byte == 0x0b => Ok(position + 1),
        Some(_) => Err(ProtocolError::UnbalancedQuotes),
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

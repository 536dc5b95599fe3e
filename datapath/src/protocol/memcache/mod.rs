//! The memcached protocols: text (`get`, `set`, `incr`, ...) and meta (`mg`, `ms`, `md`, `ma`,
//! `me`, `mn`) as memcached 1.6 speaks them, on the same connection. Pure functions of bytes: no
//! I/O, no store.
//!
//! # Parsing requests
//!
//! ```
//! use datapath::protocol::memcache::{parse, Command, Limits, Parsed, StoreMode};
//!
//! let input = b"set k 5 0 2\r\nhi\r\nget k other\r\n";
//! let limits = Limits::default();
//! let Ok(Parsed::Complete { command, consumed }) = parse(input, &limits) else { panic!() };
//! assert_eq!(
//!     command,
//!     Command::Store { mode: StoreMode::Set, key: b"k", flags: 5, exptime: 0, data: b"hi", noreply: false }
//! );
//! let Ok(Parsed::Complete { command: Command::Get { keys, cas: false }, .. }) = parse(&input[consumed..], &limits)
//! else { panic!() };
//! assert_eq!(keys.iter().collect::<Vec<_>>(), [&b"k"[..], b"other"]);
//! assert_eq!(parse(b"get k", &limits), Ok(Parsed::Incomplete));
//! ```
//!
//! [`parse`] looks at the start of the input buffer and returns a [`Command`] borrowing its keys
//! and data from it plus the bytes it took, [`Parsed::Incomplete`] on any prefix of a request
//! (split reads are safe), or an [`Error`]. An error carries memcached's exact reply
//! ([`ErrorKind::message`]: `ERROR`, `CLIENT_ERROR bad command line format`, `CLIENT_ERROR bad
//! data chunk`, `SERVER_ERROR object too large for cache`, ...), how many bytes to drop, how many
//! more to discard as they arrive (the data block of a refused storage command, so the stream
//! stays in sync), whether to answer at all, and whether to close the connection: a line over its
//! limit without a newline, or a binary-protocol request (first byte 0x80), closes it. As in
//! memcached, a text command whose last token is `noreply` gets no reply, errors included, once
//! its token count is right; meta commands' errors are always answered.
//!
//! Keys are at most [`KEY_BYTES_MAX`] bytes without spaces or control characters; meta keys
//! with the `b` flag are base64 and decoded by the parser ([`MetaKey::bytes`]). Every limit is in
//! [`Limits`] and checked when its header arrives. Numbers are read as memcached's `strtol` /
//! `strtoull` read them: leading zeros and a leading `+` are fine.
//!
//! # Encoding replies
//!
//! [`reply`] appends replies to the connection's output buffer: text lines ([`reply::status`],
//! [`reply::value`], [`reply::stat`], ...) and meta replies ([`reply::meta`]), which return the
//! requested flags in request order and honour the `q` flag.
//!
//! ```
//! use datapath::protocol::memcache::{parse, reply, Command, Limits, Parsed};
//!
//! let Ok(Parsed::Complete { command: Command::Meta { kind, key, flags, .. }, .. }) =
//!     parse(b"mg k v f t O42\r\n", &Limits::default()) else { panic!() };
//! let item = reply::ItemInfo { client_flags: 5, ttl_seconds: -1, ..Default::default() };
//! let mut out = Vec::new();
//! reply::meta(&mut out, kind, &key, &flags, reply::MetaStatus::Value, Some(&item), b"hi");
//! assert_eq!(out, b"VA 2 f5 t-1 O42\r\nhi\r\n");
//! ```

mod error;
mod meta;
mod parse;
pub mod reply;

pub use error::{Error, ErrorKind};
pub use meta::{
    parse_flags, parse_key, MetaFlags, MetaKey, MetaKind, MetaMode, DECODED_KEY_BYTES_MAX,
};
pub use parse::{parse, Command, Keys, Parsed, StoreMode};

use crate::protocol::number::parse_u64;

/// Longest key, in bytes: memcached's `KEY_MAX_LENGTH`.
pub const KEY_BYTES_MAX: usize = 250;

/// Longest command line by default, without its `\n`: memcached closes a connection that sends
/// more than 2048 bytes without a newline (other than a multi-key get).
pub const LINE_BYTES_MAX: usize = 2048;

/// Longest `get` / `gets` / `gat` / `gats` line by default: enough for a thousand 250-byte keys.
/// memcached grows its buffer without bound for these; this keeps a connection's buffer bounded.
pub const RETRIEVAL_LINE_BYTES_MAX: usize = 256 * 1024;

/// Largest data block by default: memcached's default item size limit (`-I 1m`). A server
/// sets [`Limits::value_bytes_max`] to the largest item its store takes.
pub const VALUE_BYTES_MAX: usize = 1024 * 1024;

/// Largest data length a storage line may announce at all (memcached's `INT_MAX - 2`); a larger
/// or unreadable length is a bad command line, whose data block cannot be skipped.
pub const DATA_BYTES_CLAIM_MAX: usize = i32::MAX as usize - 2;

/// Most tokens a meta command line takes (command, key, `ms`'s data length and the flags):
/// memcached's `MFLAG_MAX_OPT_LENGTH` (20), which counts its end-of-line marker too.
pub const META_TOKENS_MAX: usize = 19;

/// Longest `O` (opaque) token of a meta command, its `O` included: memcached's
/// `MFLAG_MAX_OPAQUE_LENGTH`, so the opaque value itself is at most 31 bytes.
pub const OPAQUE_BYTES_MAX: usize = 32;

/// The limits the parser enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest data block of a storage command, in bytes.
    pub value_bytes_max: usize,
    /// Longest command line, without its `\n`.
    pub line_bytes_max: usize,
    /// Longest retrieval (`get`, `gets`, `gat`, `gats`) line, without its `\n`.
    pub retrieval_line_bytes_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            value_bytes_max: VALUE_BYTES_MAX,
            line_bytes_max: LINE_BYTES_MAX,
            retrieval_line_bytes_max: RETRIEVAL_LINE_BYTES_MAX,
        }
    }
}

/// An unsigned decimal number as memcached reads one (`strtoull`): digits, leading zeros allowed,
/// after an optional `+`; `None` on anything else or on overflow.
fn parse_unsigned(token: &[u8]) -> Option<u64> {
    parse_u64(token.strip_prefix(b"+").unwrap_or(token))
}

/// A signed decimal number as memcached reads one (`strtol`): digits, leading zeros allowed, after
/// an optional `+` or `-`; `None` on anything else or outside `i64`.
fn parse_signed(token: &[u8]) -> Option<i64> {
    let (negative, digits) = match token.split_first() {
        Some((b'-', digits)) => (true, digits),
        Some((b'+', digits)) => (false, digits),
        _ => (false, token),
    };
    let magnitude = parse_u64(digits)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// A key is 1 to [`KEY_BYTES_MAX`] bytes, none of them a space or a control character.
fn check_key(key: &[u8]) -> Result<(), ErrorKind> {
    let valid = !key.is_empty()
        && key.len() <= KEY_BYTES_MAX
        && key.iter().all(|&byte| byte > b' ' && byte != 0x7f);
    if valid {
        Ok(())
    } else {
        Err(ErrorKind::BadCommandLine)
    }
}

#[cfg(test)]
mod tests;

//! Errors of the memcached parser, each with memcached's exact reply text.

use std::fmt;

/// What is wrong with a request, and so what the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// An unknown command, or a known one with the wrong number of tokens: `ERROR`.
    UnknownCommand,
    /// A malformed token, key, or line: `CLIENT_ERROR bad command line format`.
    BadCommandLine,
    /// A data block not followed by `\r\n`: `CLIENT_ERROR bad data chunk`.
    BadDataChunk,
    /// A data block over [`Limits::value_bytes_max`](super::Limits::value_bytes_max):
    /// `SERVER_ERROR object too large for cache`.
    ObjectTooLarge,
    /// An `incr` / `decr` delta that is not an unsigned 64-bit number.
    InvalidDelta,
    /// A `touch` / `gat` / `flush_all` time that is not a number.
    InvalidExptime,
    /// `delete` with a hold time other than `0`, memcached's legacy form.
    DeleteUsage,
    /// A meta flag the command does not take.
    InvalidFlag,
    /// A meta flag given twice.
    DuplicateFlag,
    /// Any flag `md` or `ma` cannot read (unknown, repeated, a bad token, a key that does not
    /// decode): memcached gives these commands one word for all.
    InvalidOrDuplicateFlag,
    /// An `M` token of other than one letter.
    ModeTokenLength,
    /// An `ms`, `md` or `ma` line of more than [`META_TOKENS_MAX`](super::META_TOKENS_MAX)
    /// tokens.
    TooManyFlags,
    /// An `mg` line of more than [`META_TOKENS_MAX`](super::META_TOKENS_MAX) tokens (memcached
    /// words it apart).
    TooManyGetFlags,
    /// A meta flag whose token is not the number it must be.
    BadToken,
    /// An `O` (opaque) token over [`OPAQUE_BYTES_MAX`](super::OPAQUE_BYTES_MAX).
    OpaqueTooLong,
    /// An `ms` mode (`M`) other than `E A P R S`.
    InvalidStoreMode,
    /// An `ma` mode (`M`) other than `I + D -`.
    InvalidArithmeticMode,
    /// A `b` (base64) key that does not decode.
    KeyDecode,
    /// A line over its limit: the server answers and closes the connection.
    LineTooLong,
    /// A binary-protocol request (first byte 0x80): the server answers and closes the connection.
    BinaryProtocol,
}

impl ErrorKind {
    /// The reply line, without its `\r\n`.
    pub fn message(self) -> &'static str {
        match self {
            ErrorKind::UnknownCommand => "ERROR",
            ErrorKind::BadCommandLine => "CLIENT_ERROR bad command line format",
            ErrorKind::BadDataChunk => "CLIENT_ERROR bad data chunk",
            ErrorKind::ObjectTooLarge => "SERVER_ERROR object too large for cache",
            ErrorKind::InvalidDelta => "CLIENT_ERROR invalid numeric delta argument",
            ErrorKind::InvalidExptime => "CLIENT_ERROR invalid exptime argument",
            ErrorKind::DeleteUsage => {
                "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
            }
            ErrorKind::InvalidFlag => "CLIENT_ERROR invalid flag",
            ErrorKind::DuplicateFlag => "CLIENT_ERROR duplicate flag",
            ErrorKind::InvalidOrDuplicateFlag => "CLIENT_ERROR invalid or duplicate flag",
            ErrorKind::ModeTokenLength => "CLIENT_ERROR incorrect length for M token",
            ErrorKind::TooManyFlags => "CLIENT_ERROR options flags too long",
            ErrorKind::TooManyGetFlags => "CLIENT_ERROR options flags are too long",
            ErrorKind::BadToken => "CLIENT_ERROR bad token in command line format",
            ErrorKind::OpaqueTooLong => "CLIENT_ERROR opaque token too long",
            ErrorKind::InvalidStoreMode => "CLIENT_ERROR invalid mode for ms M token",
            ErrorKind::InvalidArithmeticMode => "CLIENT_ERROR invalid mode for ma M token",
            ErrorKind::KeyDecode => "CLIENT_ERROR error decoding key",
            ErrorKind::LineTooLong => "CLIENT_ERROR line too long",
            ErrorKind::BinaryProtocol => {
                "SERVER_ERROR binary protocol is not supported, use the text or meta protocol"
            }
        }
    }

    /// Whether the server closes the connection after answering: the stream cannot be resynced.
    pub fn closes_connection(self) -> bool {
        matches!(self, ErrorKind::LineTooLong | ErrorKind::BinaryProtocol)
    }
}

/// A request the parser refused. The server answers [`ErrorKind::message`] (unless `noreply`),
/// drops the first `consumed` bytes of its input, then discards the next `swallow` bytes as they
/// arrive (the data block of a refused storage command, so that the stream stays in sync); or
/// closes the connection when [`ErrorKind::closes_connection`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Bytes of input the refused request took.
    pub consumed: usize,
    /// Bytes after those to discard: a refused data block and its `\r\n`.
    pub swallow: usize,
    /// The request ended in `noreply`: memcached answers nothing for it, not even an error, once
    /// the command had the right number of tokens (a wrong count is still answered `ERROR`). Meta
    /// commands' errors are always answered, as are those that close the connection.
    pub noreply: bool,
}

impl fmt::Display for Error {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.kind.message())
    }
}

impl std::error::Error for Error {}

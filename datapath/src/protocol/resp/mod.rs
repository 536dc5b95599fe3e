//! RESP, the Redis protocol: a request parser for RESP2/RESP3 clients and a reply encoder for
//! both versions. Pure functions of bytes: no I/O, no store.
//!
//! # Parsing requests
//!
//! ```
//! use datapath::protocol::resp::{parse, Limits, Parsed, Request};
//!
//! let input = b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nPING\r\n";
//! let limits = Limits::default();
//! let mut request = Request::new(); // reused for every request of the connection
//! let Ok(Parsed::Complete { consumed }) = parse(input, &limits, &mut request) else { panic!() };
//! assert_eq!(request.args(input).collect::<Vec<_>>(), [&b"GET"[..], b"key"]);
//! let rest = &input[consumed..];
//! assert_eq!(parse(rest, &limits, &mut request), Ok(Parsed::Complete { consumed: 6 }));
//! assert_eq!(request.arg(rest, 0), b"PING"); // inline (telnet) form
//! assert_eq!(parse(&rest[6..], &limits, &mut request), Ok(Parsed::Incomplete));
//! ```
//!
//! [`parse`] looks at the start of the input buffer and returns [`Parsed::Complete`] with the
//! bytes the request took, [`Parsed::Incomplete`] when the buffer holds only a prefix of one (on
//! any prefix: split reads are safe), or a [`ProtocolError`] whose text is Redis' own (`Protocol
//! error: invalid bulk length`, ...): the server replies `-ERR <text>` and closes the connection.
//! Multibulk arguments are ranges of the input buffer, never copied; inline arguments (which may
//! hold quote escapes) are unescaped into the [`Request`]'s scratch buffer. A request with no
//! arguments (`*0`, a blank line) is complete and empty: skip it, as Redis does.
//!
//! Every size is checked against [`Limits`] when its header arrives, before its bytes are
//! buffered: a bulk over [`Limits::bulk_bytes_max`], a count over
//! [`Limits::multibulk_elements_max`], or a line over [`Limits::inline_bytes_max`] without its
//! end is an error at once.
//!
//! # Encoding replies
//!
//! ```
//! use datapath::protocol::resp::{Reply, Version};
//!
//! let mut out = Vec::new();
//! let mut reply = Reply::new(&mut out, Version::Resp2);
//! reply.map(1); // RESP2 has no map: a flat array of 2 × 1 elements
//! reply.bulk(b"proto");
//! reply.integer(2);
//! assert_eq!(out, b"*2\r\n$5\r\nproto\r\n:2\r\n");
//! ```
//!
//! [`Reply`] appends to the connection's output buffer in the connection's [`Version`]; the
//! RESP3-only types fall back to the forms Redis uses for RESP2 clients.

mod parse;
mod reply;

pub use parse::{
    parse, Limits, Parsed, ProtocolError, Request, BULK_BYTES_MAX, INLINE_BYTES_MAX,
    MULTIBULK_ELEMENTS_MAX,
};
pub use reply::{Reply, Version};

#[cfg(test)]
mod tests;

//! Wire protocols as pure functions of bytes: request parsers that borrow the input buffer and
//! reply encoders that append to an output buffer. No I/O, no store, no allocation per request
//! once the caller's reusable buffers have grown; so each is fuzzed (`datapath/fuzz`) and
//! benchmarked (`benches/benches`) on its own.
//!
//! - [`resp`]: Redis RESP2 / RESP3 requests (multibulk and inline) and replies.
//! - [`memcache`]: memcached text and meta requests and replies.

pub mod memcache;
pub(crate) mod number;
pub mod resp;

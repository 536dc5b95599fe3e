//! The event loops that move bytes between sockets and a [`Shard`](crate::shard::Shard):
//! [`epoll`] (readiness: one syscall per read or write) and [`uring`] (completions: multishot
//! accept and receive into provided buffers, many sends per submit). Both drive the same shard
//! through the same calls, so they behave the same to clients.

pub mod epoll;
pub mod listener;

use std::time::Duration;

/// How long a stopping shard keeps delivering owed replies before it gives up on slow readers.
pub const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(3);
/// How often a stopping shard looks at whether every shard has drained.
pub const SHUTDOWN_POLL_MS: i32 = 5;
/// Bytes a loop reads from one socket in one call.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Connections accepted from one listener per loop tick, so a connection storm cannot starve
/// the connections already open.
pub const ACCEPTS_PER_TICK_MAX: usize = 256;

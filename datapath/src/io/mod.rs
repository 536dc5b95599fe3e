//! The event loops that move bytes between sockets and a [`Shard`](crate::shard::Shard):
//! [`epoll`] (readiness: one syscall per read or write) and [`uring`] (completions: multishot
//! accept and receive into provided buffers, many sends per submit). Both drive the same shard
//! through the same calls, so they behave the same to clients.

pub mod epoll;
pub mod listener;
pub mod rdma;
pub mod uring;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::shard::Shard;

/// How long a stopping shard keeps delivering owed replies before it gives up on slow readers.
pub const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(3);
/// How often a stopping shard looks at whether every shard has drained.
pub const SHUTDOWN_POLL_MS: i32 = 5;
/// Bytes a loop reads from one socket in one call.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Connections accepted from one listener per loop tick, so a connection storm cannot starve
/// the connections already open.
pub const ACCEPTS_PER_TICK_MAX: usize = 256;

/// What a loop does next about a stop request.
#[derive(Debug, PartialEq, Eq)]
pub enum StopStep {
    Continue,
    /// The stop was just seen: close the listening sockets (input is already shut).
    CloseListeners,
    /// Every shard has drained (or the drain took too long): leave the loop.
    Exit,
}

/// A loop's progress through a stop: stop reading, deliver what is owed, wait for the others
/// (a shard that has drained still answers requests from shards that have not).
#[derive(Debug, Default)]
pub struct Stopping {
    started: Option<Instant>,
    counted_drained: bool,
}

impl Stopping {
    pub fn started(&self) -> bool {
        self.started.is_some()
    }

    /// Called once per loop tick, after the tick's output was handed to the kernel.
    pub fn check(&mut self, shard: &mut Shard) -> StopStep {
        let shared = std::sync::Arc::clone(&shard.core.shared);
        let Some(started) = self.started else {
            if !shared.stop_requested() {
                return StopStep::Continue;
            }
            self.started = Some(Instant::now());
            shard.stop_reading();
            return StopStep::CloseListeners;
        };
        if !self.counted_drained && (shard.owes_nothing() || started.elapsed() > SHUTDOWN_DRAIN_MAX)
        {
            self.counted_drained = true;
            shared.drained.fetch_add(1, Ordering::AcqRel);
        }
        if shared.drained.load(Ordering::Acquire) == shared.shard_count
            || started.elapsed() > 2 * SHUTDOWN_DRAIN_MAX
        {
            StopStep::Exit
        } else {
            StopStep::Continue
        }
    }
}

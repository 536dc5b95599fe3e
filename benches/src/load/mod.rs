//! The load generator: closed-loop, many connections per thread on epoll, pipelined batches.
//!
//! Load shape (that of redis-benchmark and `../shared/bench/loadgen.rs`, so figures compare): C
//! connections spread over T threads; each connection sends a batch of P requests, waits for all
//! P replies, then sends the next. The latency of a request runs from its batch's write to the
//! read that completed its reply.

pub mod cpu;
pub mod run;
pub mod transport;
pub mod wire;
pub mod workload;

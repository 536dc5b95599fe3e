//! `datapath`: the `ferrite` server.
//!
//! Goals: serve Redis (RESP2/RESP3) clients unchanged from thread-per-core shards, each owning
//! its event loop (io_uring, or epoll where io_uring is unusable), its connections and its
//! `persistent` store; keys hash to an owner shard and cross-shard requests travel by message,
//! batched per loop tick, replies always in request order.
//!
//! Non-goals: knowing how items are laid out (that is `persistent`), sharing locks between
//! shards on the request path.
//!
//! Code map: [`config`] (flags + TOML), [`server`] (start-up, signals), [`shard`] (the state
//! both loops drive: connections, routing, reply ordering), [`io`] (the loops), [`commands`]
//! (RESP commands → [`exec::Op`]), [`exec`] (ops on the store), [`mailbox`] (cross-shard
//! messages), [`protocol`] (pure parsers and encoders), [`observe`] (counters, latency
//! histograms, hot keys, slow log, anomaly signals, the Prometheus endpoint).

pub mod access;
pub mod commands;
pub mod config;
pub mod exec;
pub mod io;
pub mod mailbox;
pub mod memcache;
pub mod observe;
pub mod protocol;
pub mod rehome;
pub mod server;
pub mod shard;
pub mod syncer;
pub mod tunables;

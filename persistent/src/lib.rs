//! `persistent`: the segment store every shard keeps its items in.
//!
//! Non-goals: sockets, threads, protocols. A `Store` is single-threaded (one per shard).

//! `platform`: what the machine offers Ferrite, and nothing about items, protocols or sockets.
//!
//! Goals:
//! - say what the hardware and kernel provide (NUMA topology, cores, io_uring, RDMA devices)
//!   and pin threads to cores;
//! - define [`offload::Offload`], the one interface for CRC-64 and LZ4 block compression, with the
//!   software engine as the always-available reference.
//!
//! Non-goals: knowing what an item, a request or a connection is.

pub mod cache;
pub mod kernel;
pub mod offload;
pub mod rdma;
pub mod topology;
pub mod verbs;

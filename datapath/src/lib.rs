//! `datapath`: the `ferrite` server.

pub mod protocol;

//! `datapath`: the `ferrite` server.

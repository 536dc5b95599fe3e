//! Measuring Ferrite: criterion benches live in `benches/benches/`, the load generator in
//! `src/bin/`.

pub mod load;

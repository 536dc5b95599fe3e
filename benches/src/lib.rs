//! Measuring Ferrite: criterion benches live in `benches/benches/`, the load generator in
//! `src/bin/`.

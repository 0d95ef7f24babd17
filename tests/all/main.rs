//! Weir's integration tests, one binary (see `tests/lib.rs` for helpers).

mod cli;
mod failures;
mod harness;
mod parity;
mod recovery;
mod sandbox;
mod scenarios;
mod state_kinds;
mod wall_clock;

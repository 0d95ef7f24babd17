//! Weir's integration tests, one binary (see `tests/lib.rs` for helpers).

mod adversary;
mod boundary_fuzz;
mod cli;
mod commit_crash;
mod console;
mod failures;
mod harness;
mod jobs;
mod kafka;
mod kafka_broker;
mod languages;
mod parity;
mod recovery;
mod sandbox;
mod savepoints;
mod scaffold;
mod scenarios;
mod server_api;
mod server_e2e;
mod server_upgrade_crash;
mod server_upgrades;
mod server_views;
mod snapshots;
mod state_kinds;
mod upgrades;
mod wall_clock;

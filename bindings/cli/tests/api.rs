//! The `keysmith` binary as a user runs it: one test binary (`api/*.rs`).

use std::process::Command;

#[path = "api/cli.rs"]
mod cli;
#[path = "api/config.rs"]
mod config;
#[path = "api/conventions.rs"]
mod conventions;
#[path = "api/logging.rs"]
mod logging;
#[path = "api/operations.rs"]
mod operations;

/// The binary under test.
pub(crate) fn keysmith() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keysmith"))
}

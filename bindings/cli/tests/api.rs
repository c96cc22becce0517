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
#[path = "api/passkeys.rs"]
mod passkeys;

/// The binary under test, blind to the developer's own configuration (`KEYSMITH_CONFIG`,
/// `~/.config/keysmith/config.toml`).
pub(crate) fn keysmith() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keysmith"));
    cmd.env_remove("KEYSMITH_CONFIG")
        .env("XDG_CONFIG_HOME", "/nonexistent/keysmith-tests");
    cmd
}

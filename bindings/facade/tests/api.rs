//! The facade's integration tests, one binary (`api/*.rs`): the whole lifecycle, bulk
//! jobs and reconcile through the facade against the in-process Entra emulator, software
//! keys and SQLite/PostgreSQL; set-up from `keysmith-testkit`. The diagnostics test needs
//! a process of its own (the `tracing` subscriber is global) and starts one
//! ([`keysmith_testkit::in_own_process`]).

#[path = "api/files.rs"]
mod files;
#[path = "api/jobs.rs"]
mod jobs;
#[path = "api/lifecycle.rs"]
mod lifecycle;
#[path = "api/logging.rs"]
mod logging;
#[path = "api/misuse.rs"]
mod misuse;
#[path = "api/split.rs"]
mod split;
#[path = "api/trust.rs"]
mod trust;

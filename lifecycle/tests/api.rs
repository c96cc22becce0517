//! The integration tests of `lifecycle`, one binary: the engine end to end against the
//! Entra emulator, software keys and SQLite/PostgreSQL, the store suite, the planner and
//! the templates. Tests that need a process of their own (a process-global `tracing`
//! subscriber, a killed child) start one: the crash tests run `tests/bin/crash_child`,
//! the diagnostics tests run this binary again for one ignored test (see
//! [`common::in_own_process`]).

#[path = "api/common.rs"]
mod common;
#[path = "api/support.rs"]
mod support;

#[path = "api/bulk.rs"]
mod bulk;
#[path = "api/bulk_runners.rs"]
mod bulk_runners;
#[path = "api/coordinator.rs"]
mod coordinator;
#[path = "api/crash.rs"]
mod crash;
#[path = "api/device_faults.rs"]
mod device_faults;
#[path = "api/diagnostics.rs"]
mod diagnostics;
#[path = "api/diagnostics_foreign.rs"]
mod diagnostics_foreign;
#[path = "api/engine.rs"]
mod engine;
#[path = "api/entra2026.rs"]
mod entra2026;
#[path = "api/errors.rs"]
mod errors;
#[path = "api/graph_reads.rs"]
mod graph_reads;
#[path = "api/identity.rs"]
mod identity;
#[path = "api/passkeys.rs"]
mod passkeys;
#[path = "api/preflight_profiles.rs"]
mod preflight_profiles;
#[path = "api/provenance.rs"]
mod provenance;
#[path = "api/reconcile.rs"]
mod reconcile;
#[path = "api/rowmac.rs"]
mod rowmac;
#[path = "api/selfservice.rs"]
mod selfservice;
#[path = "api/selfservice_trust.rs"]
mod selfservice_trust;
#[path = "api/split.rs"]
mod split;
#[path = "api/split_link.rs"]
mod split_link;
#[path = "api/state.rs"]
mod state;
#[path = "api/store.rs"]
mod store;
#[path = "api/template.rs"]
mod template;

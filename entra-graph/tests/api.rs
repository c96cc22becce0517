//! Integration tests of entra-graph: one binary, modules under `tests/api/`.
//! The emulator tests need `--features emulator`.

#[path = "api/fixtures.rs"]
mod fixtures;

#[cfg(feature = "emulator")]
#[path = "api/contract.rs"]
mod contract;
#[cfg(feature = "emulator")]
#[path = "api/harness.rs"]
mod harness;
#[cfg(feature = "emulator")]
#[path = "api/oidc.rs"]
mod oidc;
#[cfg(feature = "emulator")]
#[path = "api/rejects.rs"]
mod rejects;
#[cfg(feature = "emulator")]
#[path = "api/soft_key.rs"]
mod soft_key;

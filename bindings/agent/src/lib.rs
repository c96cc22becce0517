//! The keysmith agent: the process that runs where keys are attached (an operator
//! station or a holder's computer) in a split deployment (`docs/agent.md`).
//!
//! It holds no Graph credential and no database URL: its build has no `lifecycle`,
//! `rusqlite`, `postgres`, `entra-graph` or `keysmith-facade` in its tree
//! (`tests/deps.rs`). What it has:
//! - [`config`]: the agent's TOML configuration (server URL and pinned server key,
//!   extra CA, OIDC issuer and client for holders, station name, class, UI channel);
//! - [`key`]: the agent's P-256 identity key, generated at first run, kept as a
//!   PKCS#8 PEM file only its owner can read;
//! - [`enroll`]: enrolment at `keysmith serve` with a one-time code (review G4:
//!   `HMAC(code, agent_pub)` for stations) and the fingerprint to compare;
//! - [`oidc`]: the holder's sign-in, OAuth 2.0 authorization code with PKCE (RFC 7636,
//!   S256 only) through the system browser and a loopback redirect (RFC 8252), the
//!   nonce bound to the device session by the caller;
//! - [`ui`]: the local UI channel between the agent service and the holder's UI
//!   process (review E11): a Unix socket checked with `SO_PEERCRED`, or on Windows a
//!   named pipe with a DACL for SYSTEM and the UI session's logon SID;
//! - [`session`]: the session loop (the signed wire messages to `keysmith serve` and a
//!   `DeviceSession` on the attached key);
//! - [`me`]: the holder's own Graph calls for delegated registration, with the delegated
//!   token of their sign-in (sent to the configured Graph only, never to the server).
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod cli;
pub mod config;
pub mod device;
pub mod enroll;
mod error;
pub mod holder;
pub mod http;
pub mod key;
pub mod me;
pub mod oidc;
pub mod pkce;
pub mod session;
pub mod ui;
#[cfg(windows)]
pub mod winsvc;

pub use error::AgentError;

//! # lifecycle
//!
//! The policy-driven passkey lifecycle engine that a credential management system embeds:
//! templates, the credential state machine, the durable repository (embedded SQLite or
//! shared PostgreSQL), the IdP side-effect journal and the audit log.
//!
//! How the layers fit: `fido-transport` drives the security key, `entra-graph` talks to
//! the identity provider; this crate decides what to do from (template, recorded state,
//! device facts, now) and records every step durably.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod diagnostics;
pub mod engine;
mod error;
pub mod idp;
pub mod model;
pub mod state;
pub mod store;
pub mod template;

pub use error::{DeviceError, Error, ErrorKind};
pub use model::CredentialState;

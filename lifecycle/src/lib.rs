//! # lifecycle
//!
//! The policy-driven passkey lifecycle engine that a credential management system embeds:
//! templates, the credential state machine, the durable repository (embedded SQLite or
//! shared PostgreSQL), the IdP side-effect journal and the audit log.
//!
//! How the layers fit: `fido-transport` drives the security key, `entra-graph` talks to
//! the identity provider; this crate decides what to do from (template, recorded state,
//! device facts, now) and records every step durably.
//!
//! ## Example: issue and activate a key
//!
//! The engine over an in-memory repository, the Entra emulator as the identity provider
//! and the software authenticator as the key; a real deployment swaps in
//! `SqliteStore::open`/`PgStore`, the tenant's Graph endpoint and a USB or NFC transport.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{SystemTime, UNIX_EPOCH};
//!
//! use entra_graph::auth::{Credential, Secret};
//! use entra_graph::emulator::{Emulator, EmulatorConfig};
//! use entra_graph::{ApiVersion, GraphClient};
//! use fido_transport::client::Authenticator;
//! use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
//! use lifecycle::engine::{Engine, IssueRequest};
//! use lifecycle::idp::EntraIdp;
//! use lifecycle::store::{PinKey, SqliteStore};
//! use lifecycle::template::{KeyTransport, TemplateSet};
//! use lifecycle::CredentialState;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The identity provider: the Entra emulator on loopback, reached through Graph.
//! let entra = Emulator::start(EmulatorConfig::default())?;
//! let graph = GraphClient::new(
//!     entra.graph_config(ApiVersion::Beta),
//!     Credential::ClientSecret {
//!         client_id: entra.client_id().to_owned(),
//!         secret: Secret::new(entra.client_secret().unwrap_or_default()),
//!     },
//! )?;
//!
//! // What a key gets: one Entra passkey, the key reset first, PINs of 8 or more.
//! let template = TemplateSet::from_toml_str(
//!     r#"
//! [passkey.entra]
//! idp = { connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }
//! display_name = "{displayName} {serial}"
//! rp_id = "login.microsoft.com"
//!
//! [credential]
//! name = "standard"
//! passkey_templates = ["entra"]
//! user_assignment = { directory = "contoso-entra" }
//!
//! [credential.fido2]
//! reset_before_issuance = true
//! min_pin_length = 8
//! "#,
//! )?;
//!
//! // The engine: repository, the key that seals transport PINs, this station's name.
//! let engine = Engine::builder(
//!     Arc::new(SqliteStore::open_in_memory()?),
//!     PinKey::from_bytes([7; 32]),
//!     "desk-1",
//! )
//! .idp(Arc::new(EntraIdp::new("contoso-entra", graph)))
//! .template(template)
//! .build()?;
//!
//! let mut key = Authenticator::new(SoftTransport::new(SoftAuthenticator::new(
//!     SoftConfig::default(),
//! )?));
//! let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
//!
//! // Central issuance at the operator's desk: the passkey is made, its registration waits.
//! let request = IssueRequest {
//!     actor: "operator:alice".into(),
//!     user: "kim@contoso.onmicrosoft.com".into(),
//!     serial: "SN0001".into(),
//!     transport: KeyTransport::Software,
//!     can_reset_in_place: true,
//! };
//! let issued = engine.issue(&request, "standard", &mut key, now)?;
//! assert_eq!(issued.state, CredentialState::Issued);
//!
//! // The holder activates: their PIN replaces the transport PIN, the passkey is registered.
//! let active = engine.activate("self:kim", &issued.key_id, "holder-pin-2468", &mut key, now + 1_000)?;
//! assert_eq!(active.state, CredentialState::Active);
//! assert_eq!(engine.passkeys(&active.key_id)?.len(), 1);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod coordinator;
pub mod diagnostics;
pub mod engine;
mod error;
pub mod files;
pub mod idp;
pub mod model;
pub mod remote;
pub mod state;
pub mod store;
pub mod template;

pub use error::{DeviceError, Error, ErrorKind};
pub use keysmith_device::DeviceFault;
pub use model::CredentialState;

//! # entra-graph
//!
//! The identity-provider half of keysmith: a Microsoft Graph client for provisioning
//! FIDO2 passkeys on behalf of users, and (feature `emulator`) a faithful Entra
//! emulator that runs as a real HTTP server on loopback for tests, demos and users' CI.
//!
//! How the layers fit: `fido-transport` makes the credential on a key; this crate asks
//! Entra for creation options, builds the WebAuthn registration body from the key's
//! makeCredential result, and registers, lists and deletes passkeys; `lifecycle` drives
//! both.
//!
//! - [`GraphClient`]: the blocking client (all operations), configured by [`GraphConfig`].
//! - [`auth`]: credentials (client secret, certificate assertion, callback).
//! - [`wire`]: the JSON shapes Graph sends and accepts.
//! - [`ids`]: lenient decoding and strict encoding of credential and method ids.
//! - [`policy`]: the FIDO2 policy pre-flight.
//! - [`signin`]: which registered passkeys the policy now blocks at sign-in, and the
//!   policy's limits (three passkey profiles, 20 KB).
//! - `emulator` (feature `emulator`): the Entra emulator.
//! - [`oidc`]: verifying a holder's OpenID Connect ID token against the issuer's keys.
//! - [`webauthn`]: clientDataJSON and the registration body from a makeCredential result.
//!
//! ```
//! # #[cfg(feature = "emulator")] {
//! use entra_graph::auth::Credential;
//! use entra_graph::emulator::{Emulator, EmulatorConfig};
//! use entra_graph::webauthn::ClientData;
//! use entra_graph::{ApiVersion, GraphClient};
//!
//! // A local Entra for the example; for a tenant use `GraphConfig::new(tenant_id)`.
//! let entra = Emulator::start(EmulatorConfig::default())?;
//! let client = GraphClient::new(
//!     entra.graph_config(ApiVersion::V1),
//!     Credential::ClientSecret {
//!         client_id: entra.client_id().into(),
//!         secret: entra.client_secret().unwrap_or_default().into(),
//!     },
//! )?;
//! let user = "kim@contoso.onmicrosoft.com";
//! // Before a key is spent: would the tenant accept a YubiKey 5 with attestation
//! // for this user (targets, passkey profiles, AAGUID lists)?
//! client.preflight(user, "cb69481e-8ff7-4039-93ec-0a2729a154a8", true)?;
//! let options = client.creation_options(user, None)?;
//! let client_data = ClientData::for_creation(&options, None)?;
//! // The key signs `client_data.hash` in makeCredential (fido-transport); then
//! // `webauthn::build_registration` + `client.register(user, &body)`.
//! assert_eq!(client_data.hash.len(), 32);
//! assert!(client.list_methods(user)?.is_empty());
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
mod client;
mod config;
pub mod delegated;
#[cfg(feature = "emulator")]
pub mod emulator;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod http;
pub mod ids;
pub mod net;
pub mod oidc;
pub mod pace;
pub mod policy;
pub mod signin;
pub mod webauthn;
pub mod wire;

/// Provenance (beta): how a passkey's holder was verified.
pub use client::provenance;
pub use client::{
    encode_segment, ClientStats, ConnectionReport, Deletion, GraphClient, Readiness, ReadinessUser,
    Registration, UserKey, UsersDelta, CHECK_MEMBER_GROUPS_MAX, CONNECTION_CHECK_USER,
    GUEST_REFUSAL, MAX_BATCH, MAX_GROUP_NESTING, PERMISSION_GROUP_MEMBER_READ,
    PERMISSION_METHODS_READ, PERMISSION_POLICY_READ, PERMISSION_REVOKE_SESSIONS,
    PERMISSION_USER_READ, POLICY_TTL, READINESS_METHOD_TYPES, RECONCILE_LISTINGS, TAP_MAX_MINUTES,
    TAP_MIN_MINUTES, USERS_PER_BATCH, USER_TTL,
};
pub use config::{
    ApiVersion, GraphConfig, RetryPolicy, MAX_CHALLENGE_MINUTES, MIN_CHALLENGE_MINUTES,
};
pub use error::GraphError;

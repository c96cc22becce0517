//! # fido-core
//!
//! The sans-IO heart of keysmith: everything about CTAP 2.0/2.1 that is pure data and
//! pure computation. Bytes and the current time go in, bytes and events come out; no
//! file, socket, device, thread or clock is touched here.
//!
//! How the layers fit: `fido-transport` moves the bytes this crate produces over USB HID
//! ([`ctaphid`]) or NFC/PC-SC ([`apdu`]) and drives the typed [`commands`];
//! `entra-graph` uses [`attestation`] and [`clientdata`] for WebAuthn registration;
//! `lifecycle` sits on top of both.
//!
//! - [`aaguid`]: AAGUIDs as hyphenated text, both ways.
//! - [`cbor`]: CTAP2 canonical CBOR writer and strict, bounded reader.
//! - [`status`]: lossless CTAP status codes.
//! - [`commands`]: every CTAP 2.1 command as a type tied to its response type.
//! - [`pin`]: PIN/UV auth protocols 1 and 2, PIN rules, permissions.
//! - [`cose`], [`authdata`], [`attestation`], [`clientdata`]: WebAuthn data structures
//!   and attestation verification.
//! - [`ctaphid`]: CTAPHID framing as a state machine.
//! - [`apdu`]: ISO 7816 / NFCCTAP APDU framing.
//! - [`verify`]: the signature-verification trait and its backends (*ring*, feature
//!   `verify-ring`; pure-Rust RustCrypto, feature `verify-rustcrypto`).
//! - `trust` (feature `trust`): the attestation trust store, from a verified FIDO MDS3
//!   BLOB and extra roots, with certificate path validation by OpenSSL.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aaguid;
pub mod apdu;
pub mod attestation;
pub mod authdata;
pub mod cbor;
pub mod clientdata;
pub mod commands;
pub mod cose;
pub mod ctaphid;
mod error;
pub mod pin;
pub mod status;
#[cfg(feature = "trust")]
pub mod trust;
pub mod verify;

pub use error::Error;
pub use status::CtapStatus;

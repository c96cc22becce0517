//! # fido-transport
//!
//! Moves the bytes that `fido-core` produces: USB HID (hidapi), NFC and contact cards
//! through PC/SC (pcsc), or a host product's own device handle through the
//! [`Transport`] trait; and the software authenticator used for tests and demos.
//!
//! Every transport carries whole CTAP2 messages (command byte + CBOR parameters in,
//! status byte + CBOR out). Progress ("touch your key") is reported through a callback
//! and any transaction can be cancelled from another thread with a [`CancelToken`].
// Unsafe code is denied everywhere but in `platform::windows` (the webauthn.dll FFI).
#![deny(unsafe_code)]
#![warn(missing_docs)]

// Its HID and PC/SC halves are used only with the `hid` and `nfc` features.
#[cfg_attr(not(all(feature = "hid", feature = "nfc")), allow(dead_code))]
mod elevation;
mod error;
mod transport;

pub use error::Error;
pub use transport::{CancelToken, Progress, Transport, TransportKind};

pub mod client;
pub mod hid;
pub mod nfc;
pub mod platform;
#[cfg(feature = "softkey")]
pub mod softkey;

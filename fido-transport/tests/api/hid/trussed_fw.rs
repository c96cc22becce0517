//! Interop with trussed's `fido-authenticator` firmware: the in-process firmware
//! harness (`firmware`), raw-CTAP tests (`interop`), and a full session of our
//! high-level client against it (`client`).

use super::*;

mod client;
mod extensions;
mod firmware;
mod interop;

//! The split protocol `keysmith/v1` between the server half (`Coordinator`, in `lifecycle`)
//! and the device half (`DeviceSession`, in `keysmith-device`): the message types, their
//! CTAP2-canonical CBOR form, COSE_Sign1 (ES256) envelopes and HPKE-sealed secrets.
//!
//! No IO: both halves consume `&[u8]` and produce `Vec<u8>`; whoever connects them (a CMS's
//! channel, `keysmith serve` + `keysmith agent`, or an in-memory link) carries the bytes.
//! The byte-level contract is `docs/split-protocol.md`; this crate's types mirror its tables.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod msg;

pub use msg::*;

//! fido-core integration tests: one binary, one module per area.

mod api {
    pub mod apdu;
    pub mod attestation;
    pub mod cbor;
    pub mod commands;
    pub mod ctaphid;
    pub mod fixtures;
    pub mod pin;
    pub mod support;
    #[cfg(feature = "trust")]
    pub mod trust;
    pub mod verify;
}

//! ISO 7816-4 / NFCCTAP APDU framing as pure functions and a state machine.

/// Errors of this module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApduError {
    /// Placeholder until the module lands.
    #[error("not yet implemented")]
    NotImplemented,
}

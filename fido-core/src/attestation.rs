//! Attestation objects and their verification (packed, fido-u2f, none).

/// Errors of this module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// Placeholder until the module lands.
    #[error("not yet implemented")]
    NotImplemented,
}

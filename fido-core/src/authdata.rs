//! Authenticator data: flags, counter, attested credential data, extensions.

/// Errors of this module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthDataError {
    /// Placeholder until the module lands.
    #[error("not yet implemented")]
    NotImplemented,
}

//! WebAuthn clientDataJSON: builder and parser.

/// Errors of this module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientDataError {
    /// Placeholder until the module lands.
    #[error("not yet implemented")]
    NotImplemented,
}

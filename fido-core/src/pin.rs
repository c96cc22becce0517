//! PIN/UV auth protocols 1 and 2, PIN rules and permissions.

/// Errors of this module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// Placeholder until the module lands.
    #[error("not yet implemented")]
    NotImplemented,
}

//! CTAPHID framing as a sans-IO state machine.

/// Errors of this module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HidError {
    /// Placeholder until the module lands.
    #[error("not yet implemented")]
    NotImplemented,
}

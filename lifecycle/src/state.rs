//! The credential state machine (SPEC section 2).

/// An action refused in the current state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// Placeholder until the module lands.
    #[error("not yet implemented")]
    NotImplemented,
}

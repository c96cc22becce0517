//! The crate's one error type.

/// Everything that can go wrong in the lifecycle engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A template failed validation; every problem is listed with its field.
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    /// An action is not allowed in the key's current state.
    #[error(transparent)]
    Transition(#[from] crate::state::TransitionError),
    /// The repository failed or refused (conflict, not found, corrupt record).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The engine failed (device, configuration, cancelled operation, sign-in).
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    /// An identity provider refused or failed a call.
    #[error(transparent)]
    Idp(#[from] crate::idp::IdpError),
    /// Logging could not be set up or switched.
    #[error(transparent)]
    Diagnostics(#[from] crate::diagnostics::DiagnosticsError),
}

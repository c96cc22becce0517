//! Passkey and credential templates, loaded from TOML or JSON and validated as a whole.

/// Template validation failures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// Placeholder until the module lands.
    #[error("not yet implemented")]
    NotImplemented,
}

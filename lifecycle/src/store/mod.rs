//! The durable repository: a store trait with SQLite and PostgreSQL implementations.

/// Repository failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Placeholder until the module lands.
    #[error("not yet implemented")]
    NotImplemented,
}

//! The repository's error type.

use super::{JournalStatus, UnixMillis};
use crate::model::CredentialState;

/// Repository failures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A record that must exist does not.
    #[error("{what} not found")]
    NotFound {
        /// Which record (kind and id).
        what: String,
    },
    /// The key changed since the caller read it (another operator or station won).
    #[error(
        "key {key_id}: expected {expected}@v{expected_version}, found {found}@v{found_version}"
    )]
    Conflict {
        /// The key.
        key_id: String,
        /// The state the caller expected.
        expected: CredentialState,
        /// The version the caller expected.
        expected_version: u64,
        /// The state recorded now.
        found: CredentialState,
        /// The version recorded now.
        found_version: u64,
    },
    /// A journal entry was already closed with another status.
    #[error("journal entry {id} is already {status:?}")]
    JournalClosed {
        /// The entry.
        id: i64,
        /// Its recorded status.
        status: JournalStatus,
    },
    /// Another station holds the lease on a journal entry.
    #[error("journal entry {id} is claimed by {claimed_by} until {until_ms}")]
    JournalBusy {
        /// The entry.
        id: i64,
        /// The station holding it.
        claimed_by: String,
        /// When its lease ends (unix millis).
        until_ms: UnixMillis,
    },
    /// A bulk row is claimed by another runner now: the caller's claim expired and was
    /// taken over (or never held), so it must not write anything for the row.
    #[error(
        "bulk item {job_id}:{line}: the claim with token {token} is no longer held by {owner}"
    )]
    ClaimLost {
        /// The job.
        job_id: i64,
        /// The row.
        line: u64,
        /// The runner whose claim was lost.
        owner: String,
        /// The token it held.
        token: u64,
    },
    /// A journal close, commit or lease renewal was fenced off: the station no longer
    /// holds the entry's claim (its lease ran out and another claim took the entry over).
    #[error("journal entry {id}: {station} lost its claim (now claimed by {claimed_by})")]
    JournalClaimLost {
        /// The entry.
        id: i64,
        /// The station whose claim was lost.
        station: String,
        /// The station holding the entry now (empty if none).
        claimed_by: String,
    },
    /// A record with the same identity exists.
    #[error("duplicate {what}")]
    Duplicate {
        /// What was duplicated (backend message).
        what: String,
    },
    /// A stored value cannot be read back (wrong type, unknown name, bad length).
    #[error("corrupt record: {what}")]
    Corrupt {
        /// Which field and why.
        what: String,
    },
    /// A row that is sent to the IdP failed its integrity check (its MAC does not match:
    /// changed outside keysmith, written under another host key, or written before rows
    /// were authenticated). Nothing was sent to the IdP.
    #[error("integrity check failed for {row}: {reason}")]
    Integrity {
        /// The row (table and key columns).
        row: String,
        /// Why.
        reason: String,
    },
    /// Sealing or opening a secret failed (wrong host key or tampered ciphertext).
    #[error("crypto failure: {what}")]
    Crypto {
        /// What failed.
        what: String,
    },
    /// The database failed (I/O, connection, SQL); the backend's message.
    #[error("database error: {0}")]
    Backend(String),
    /// A schema migration failed or the database is newer than this build.
    #[error("migration to schema version {version} failed: {reason}")]
    Migration {
        /// The version being reached.
        version: u32,
        /// Why.
        reason: String,
    },
    /// A value is outside what the store accepts.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A connection that would carry the repository in plaintext to a host that is not
    /// loopback was refused before anything was sent.
    #[error("insecure connection to {host} refused: {reason}")]
    InsecureConnection {
        /// The host (never the password or the whole connection string).
        host: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The TLS connection to the database failed: the server's certificate is not
    /// trusted or not for that host, the server has no TLS, or the handshake failed.
    #[error("TLS to the database failed: {reason}")]
    Tls {
        /// The TLS library's reason.
        reason: String,
    },
    /// A secret file (host key, client secret) may be read or changed by other users:
    /// it is refused until its permissions are fixed.
    #[error("{path}: permissions {mode:04o} are too open for a secret file (group or others may access it); chmod 600 it")]
    InsecureFile {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The database file was deleted, replaced or moved away under the running process:
    /// going on would write into a file nobody will see again.
    #[error("repository {path} was {what} while open; stopping (nothing after this was written)")]
    RepositoryGone {
        /// The database file.
        path: String,
        /// What happened (`deleted`, `replaced by another file`).
        what: String,
    },
    /// The database's integrity check failed: the file is damaged.
    #[error("repository {path} is damaged: {report}")]
    Damaged {
        /// The database (a file path, or `postgres`).
        path: String,
        /// The integrity check's first findings.
        report: String,
    },
}

/// Shorthand for store results.
pub type Result<T> = core::result::Result<T, StoreError>;

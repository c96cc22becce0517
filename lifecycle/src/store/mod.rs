//! The durable repository: a store trait with SQLite and PostgreSQL implementations.
//!
//! The engine talks to a [`Store`]: keys, users, passkeys, pending registrations, the
//! append-only audit log, the IdP side-effect journal and the encrypted transport PINs.
//! Two implementations pass the same test suite: [`SqliteStore`] (embedded, the default)
//! and [`PgStore`] (one PostgreSQL database shared by several CMS stations).
//!
//! Design rules:
//! - Records are owned, serde-friendly plain data; no dependency types cross the API.
//! - Time is passed in (`now`, unix milliseconds); the store never reads a clock.
//! - A key's state changes only by compare-and-set ([`Transition`]: expected state and
//!   version). A second operator racing for the same key gets [`StoreError::Conflict`],
//!   never a double issue.
//! - A [`UnitOfWork`] commits a state change, journal entries and audit records together
//!   or not at all, so "journal before the IdP call" is one atomic step.
//! - Transport PINs are sealed with AES-256-GCM under a host-provided [`PinKey`]; the
//!   store never holds that key.
//! - Rows that are replayed to the IdP (pending registrations, passkeys, journal entries)
//!   carry an HMAC-SHA256 under a key derived from the [`PinKey`]
//!   ([`Store::set_row_key`], done by the engine). With that key installed, a read of such
//!   a row whose MAC does not match fails with [`StoreError::Integrity`], so no IdP call
//!   is ever made from an altered row.
//! - The audit log is a hash chain, each record's hash under a MAC of the same key:
//!   [`Store::verify_audit`] names the first record that was changed, removed or
//!   inserted outside keysmith. Appends are serialised so two writers never fork it.

// Without a backend feature the shared SQL layer has no user (a host brings its own).
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_imports, unused_macros)
)]

mod agents;
pub mod atomic;
mod crypto;
mod error;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "postgres")]
mod pg_tls;
pub mod split;
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
pub mod watch;
mod work;

pub use agents::{AgentClass, AgentRecord, AgentStatus, EnrolmentCode};
pub use atomic::AtomicWrites;
pub use crypto::{PinKey, TransportPin};
pub use error::{Result, StoreError};
#[cfg(feature = "postgres")]
pub use pg::{PgOptions, PgStore};
#[cfg(feature = "postgres")]
pub use pg_tls::SslMode;
pub use split::{
    SplitDirection, SplitMessage, SplitSession, SplitSessionState, SplitStore, StationWork,
    StationWorkState,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use watch::{KeyUse, PasskeyWatch, ReissueReason, WatchStore};
pub use work::{
    Committed, FieldChange, JournalClose, JournalFence, KeyIdentity, PendingId, PendingPosition,
    Transition, UnitOfWork,
};

use crate::model::CredentialState;
use serde::{Deserialize, Serialize};

/// Serde for [`CredentialState`] by its stable name (until the model derives serde).
mod state_serde;

/// Unix time in milliseconds (the planner's, so the whole crate has one time type; the SQL
/// backends store it as BIGINT).
pub use crate::state::UnixMillis;

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: u32 = sql::MIGRATION_COUNT;

/// A managed security key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The CMS's identifier of the key (unique).
    pub key_id: String,
    /// The authenticator model's AAGUID.
    pub aaguid: [u8; 16],
    /// The manufacturer serial number (may be empty when the key does not report one).
    pub serial: String,
    /// The lifecycle state.
    #[serde(with = "state_serde")]
    pub state: CredentialState,
    /// The user the key is issued to, if any.
    pub user_id: Option<String>,
    /// The credential template the key was issued under, if any.
    pub template_id: Option<String>,
    /// The key must be reissued before it can be used again.
    pub needs_reissue: bool,
    /// Optimistic-concurrency version; starts at 1, incremented by every change.
    pub version: u64,
    /// When the key was recorded.
    pub created_ms: UnixMillis,
    /// When the key record last changed.
    pub updated_ms: UnixMillis,
    /// What the key proved about itself at its latest issuance (hex; see [`KeyIdentity`]).
    #[serde(default)]
    pub identity: Option<String>,
    /// Where the serial or identity comes from (see [`KeyIdentity`]).
    #[serde(default)]
    pub serial_source: Option<String>,
}

/// What is needed to record a new key; it starts [`CredentialState::Blank`] at version 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKey {
    /// The CMS's identifier of the key (unique).
    pub key_id: String,
    /// The authenticator model's AAGUID.
    pub aaguid: [u8; 16],
    /// The manufacturer serial number (may be empty).
    pub serial: String,
}

/// A directory user known to the CMS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The CMS's identifier of the user (unique).
    pub user_id: String,
    /// User principal name (unique).
    pub upn: String,
    /// Display name.
    pub display_name: String,
    /// The user's object id at the IdP, if known.
    pub idp_user_id: Option<String>,
}

/// A passkey made on a key for one IdP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyRecord {
    /// The key holding the passkey.
    pub key_id: String,
    /// The passkey template's name (one per IdP).
    pub passkey_template: String,
    /// The credential id returned by makeCredential.
    pub credential_id: Vec<u8>,
    /// The credential public key (COSE bytes).
    pub public_key: Vec<u8>,
    /// The IdP's id of the registered authentication method, once registered.
    pub idp_method_id: Option<String>,
    /// The passkey's lifecycle state.
    #[serde(with = "state_serde")]
    pub state: CredentialState,
    /// When the passkey was made.
    pub created_ms: UnixMillis,
}

/// A registration made on the key but not yet sent to the IdP (sent on activation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRegistration {
    /// The key holding the passkey.
    pub key_id: String,
    /// The passkey template's name (one per IdP).
    pub passkey_template: String,
    /// The user the passkey is for.
    pub user_id: String,
    /// The attestation object returned by makeCredential.
    pub attestation_object: Vec<u8>,
    /// The clientDataJSON the key signed.
    pub client_data_json: Vec<u8>,
    /// When the IdP's creation challenge expires.
    pub challenge_expires_ms: UnixMillis,
    /// When the registration was recorded.
    pub created_ms: UnixMillis,
    /// The passkey's display name as the key was given it, registered as is at activation
    /// (`None` in rows stored before schema 15: activation renders one from the user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// An audit event to append; the store assigns its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAuditRecord {
    /// Who acted: an operator id, or `self:<user id>` for the holder.
    pub actor: String,
    /// When it happened.
    pub time_ms: UnixMillis,
    /// What was done (an [`crate::model::Action`] name or another event name).
    pub action: String,
    /// The key concerned, if any.
    pub key_id: Option<String>,
    /// The user concerned, if any.
    pub user_id: Option<String>,
    /// The credential template concerned, if any.
    pub template_id: Option<String>,
    /// The outcome (`success`, `failure`, `refused`, ...).
    pub outcome: String,
    /// The IdP's request id for correlation, if an IdP call was made.
    pub idp_request_id: Option<String>,
    /// Free-form detail (never secrets).
    pub detail: Option<String>,
}

/// An appended audit event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log; strictly increasing in append order.
    pub id: i64,
    /// The event.
    #[serde(flatten)]
    pub event: NewAuditRecord,
}

/// Which audit records to return (all given filters must match), oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Only this key.
    pub key_id: Option<String>,
    /// Only this user.
    pub user_id: Option<String>,
    /// Only events at or after this time.
    pub from_ms: Option<UnixMillis>,
    /// Only events before this time.
    pub until_ms: Option<UnixMillis>,
    /// At most this many records.
    pub limit: Option<u32>,
}

/// What [`Store::verify_audit`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerification {
    /// Records checked (all of them).
    pub records: u64,
    /// Records from before the chain existed (schema < 6): a prefix of the log that
    /// carries no hash; they are counted, not verified.
    pub unchained: u64,
    /// The first record that breaks the chain or its MAC, if any.
    pub first_bad: Option<AuditBreak>,
}

impl AuditVerification {
    /// Whether the whole chain verified.
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// What [`Store::adopt_unauthenticated_rows`] authenticated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptedRows {
    /// Pending registrations.
    pub pending: u64,
    /// Passkeys.
    pub passkeys: u64,
    /// Pending journal entries.
    pub journal: u64,
    /// Agents (split deployment).
    pub agents: u64,
    /// Enrolment codes (split deployment).
    pub enrolment_codes: u64,
    /// The audit record of the adoption.
    pub audit_id: i64,
}

/// The first audit record that does not verify.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditBreak {
    /// Its id.
    pub id: i64,
    /// Why (hash mismatch, MAC mismatch, missing hash after the chain started, ...).
    pub reason: String,
}

/// The IdP side effect a journal entry stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum JournalOp {
    /// Register a passkey at the IdP.
    Register,
    /// Delete a passkey at the IdP.
    Delete,
    /// A key state change that follows IdP side effects (recorded before them, closed
    /// with the state change; replay finishes it after a crash in between).
    State,
}

impl JournalOp {
    /// The stable storage name.
    pub const fn as_str(self) -> &'static str {
        match self {
            JournalOp::Register => "register",
            JournalOp::Delete => "delete",
            JournalOp::State => "state",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "register" => Some(JournalOp::Register),
            "delete" => Some(JournalOp::Delete),
            "state" => Some(JournalOp::State),
            _ => None,
        }
    }
}

/// Where a journalled side effect stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JournalStatus {
    /// Recorded; the IdP call may or may not have happened. Replayed after a restart.
    Pending,
    /// The IdP confirmed the effect.
    Done,
    /// Given up (the engine decided the effect must not be retried).
    Failed,
}

impl JournalStatus {
    /// The stable storage name.
    pub const fn as_str(self) -> &'static str {
        match self {
            JournalStatus::Pending => "pending",
            JournalStatus::Done => "done",
            JournalStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(JournalStatus::Pending),
            "done" => Some(JournalStatus::Done),
            "failed" => Some(JournalStatus::Failed),
            _ => None,
        }
    }
}

/// A side effect to journal before it is made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewJournalEntry {
    /// The key concerned.
    pub key_id: String,
    /// The IdP that will be called.
    pub idp: String,
    /// The operation.
    pub operation: JournalOp,
    /// Everything needed to redo the call idempotently (engine-defined bytes, no secrets).
    pub payload: Vec<u8>,
}

/// A journalled side effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Journal position; strictly increasing.
    pub id: i64,
    /// The key concerned.
    pub key_id: String,
    /// The IdP that is called.
    pub idp: String,
    /// The operation.
    pub operation: JournalOp,
    /// The engine's payload.
    pub payload: Vec<u8>,
    /// Where it stands.
    pub status: JournalStatus,
    /// How many times the call was attempted.
    pub attempts: u32,
    /// The IdP's answer (method id, request id) or the failure reason.
    pub result: Option<String>,
    /// When it was journalled.
    pub created_ms: UnixMillis,
    /// When it last changed.
    pub updated_ms: UnixMillis,
    /// The station that last claimed the entry for an attempt, if any.
    pub claimed_by: Option<String>,
    /// Until when that claim holds (0 if never claimed).
    pub claimed_until_ms: UnixMillis,
}

/// How to find keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyQuery {
    /// Keys issued to this user.
    ByUser(String),
    /// Keys in this state.
    ByState(#[serde(with = "state_serde")] CredentialState),
    /// Keys with this serial number (any model).
    BySerial(String),
    /// Keys issued to the user with this user principal name, as the repository last
    /// recorded it (the `users` table; no IdP call). Keys record the IdP's object id, so a
    /// UPN the IdP renamed since is found under its old name only.
    ByUpn(String),
    /// The key of this model with this serial number.
    ByAaguidSerial([u8; 16], String),
    /// Keys that proved this identity (hex, [`KeyRecord::identity`]) at issuance.
    ByIdentity(String),
    /// Every key. With [`Store::find_keys`] this loads the whole repository: use
    /// [`Store::find_keys_page`] instead.
    All,
}

/// Where an item of a bulk job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BulkItemStatus {
    /// Not started.
    Pending,
    /// Claimed by a runner; once its claim has expired, the runner is taken to have
    /// died and the row is settled before it is run again.
    Running,
    /// Finished successfully.
    Done,
    /// Finished with an error (the outcome says which).
    Failed,
}

impl BulkItemStatus {
    /// The stable storage name.
    pub const fn as_str(self) -> &'static str {
        match self {
            BulkItemStatus::Pending => "pending",
            BulkItemStatus::Running => "running",
            BulkItemStatus::Done => "done",
            BulkItemStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(BulkItemStatus::Pending),
            "running" => Some(BulkItemStatus::Running),
            "done" => Some(BulkItemStatus::Done),
            "failed" => Some(BulkItemStatus::Failed),
            _ => None,
        }
    }
}

/// A bulk job to record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBulkJob {
    /// The job kind (`issue`, `revoke`, `reconcile`).
    pub kind: String,
    /// Hex SHA-256 of the source file; at most one *unfinished* job per kind and source
    /// (a finished job's source may make new jobs).
    pub source_hash: String,
    /// Who created the job.
    pub actor: String,
    /// The items, each pending.
    pub items: Vec<NewBulkItem>,
}

/// One item of a [`NewBulkJob`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBulkItem {
    /// Its source line number.
    pub line: u64,
    /// The row as the engine stores it.
    pub input: String,
}

/// A recorded bulk job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkJob {
    /// The job id (assigned by the store).
    pub job_id: i64,
    /// The job kind.
    pub kind: String,
    /// Hex SHA-256 of the source file.
    pub source_hash: String,
    /// Who created the job.
    pub actor: String,
    /// Number of items.
    pub total: u64,
    /// When the job was recorded.
    pub created_ms: UnixMillis,
    /// When every row of it had been run (`None`: unfinished, so submitting the same
    /// source again resumes it; see [`Store::bulk_finish_job`]).
    pub finished_ms: Option<UnixMillis>,
}

/// One item (source row) of a bulk job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkItem {
    /// The job.
    pub job_id: i64,
    /// The source line number (unique within the job).
    pub line: u64,
    /// The row as the engine stores it.
    pub input: String,
    /// Where it stands.
    pub status: BulkItemStatus,
    /// What happened (done: a summary; failed: the error).
    pub outcome: Option<String>,
    /// When the item last changed.
    pub updated_ms: UnixMillis,
    /// The runner holding (or that last held) the row's claim.
    pub claimed_by: Option<String>,
    /// The row's fencing token: raised by every claim; 0 for a row never claimed.
    pub claim_token: u64,
    /// When the current claim ends unless renewed (0: never claimed).
    pub claimed_until_ms: UnixMillis,
}

/// A runner's claim on one row of a bulk job. Every write the runner makes for the row
/// carries it (see [`UnitOfWork::bulk_fence`]) and is refused with
/// [`StoreError::ClaimLost`] once another runner has claimed the row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BulkFence {
    /// The job.
    pub job_id: i64,
    /// The row (source line).
    pub line: u64,
    /// The runner holding the claim.
    pub owner: String,
    /// The fencing token the claim got.
    pub token: u64,
}

/// What [`Store::bulk_claim_item`] got: the claim and the row as it was before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkClaim {
    /// The claim (carry it in every write for the row).
    pub fence: BulkFence,
    /// The row's status before this claim (the one the caller read; `running`: a runner
    /// that held it died or stalled past its lease, so its effect may already be in the
    /// repository).
    pub previous: BulkItemStatus,
}

/// How many items of a job are in each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkCounts {
    /// Not started.
    pub pending: u64,
    /// Started, not finished.
    pub running: u64,
    /// Done.
    pub done: u64,
    /// Failed.
    pub failed: u64,
}

/// The repository the lifecycle engine needs. Implementations are safe to share between
/// threads and, for [`PgStore`], between processes on several hosts.
pub trait Store:
    split::SplitStore + watch::WatchStore + atomic::AtomicWrites + Send + Sync
{
    /// The schema version of the opened database.
    fn schema_version(&self) -> Result<u32>;

    /// Checks the repository for damage: SQLite's full `PRAGMA integrity_check` (the
    /// quicker `quick_check` runs at every open) and the file's identity; on PostgreSQL
    /// (which checks its own pages) the connection and the schema version. Damage is
    /// [`StoreError::Damaged`], a deleted file [`StoreError::RepositoryGone`].
    fn check_integrity(&self) -> Result<()>;

    /// Inserts or updates a user (matched by `user_id`).
    fn upsert_user(&self, user: &UserRecord) -> Result<()>;
    /// Reads a user.
    fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>>;

    /// Records a new key in [`CredentialState::Blank`] at version 1.
    fn create_key(&self, key: &NewKey, now: UnixMillis) -> Result<KeyRecord>;
    /// Reads a key.
    fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>>;
    /// Finds keys, ordered by key id.
    fn find_keys(&self, query: &KeyQuery) -> Result<Vec<KeyRecord>>;
    /// One page of the keys matching `query`, ordered by key id: at most `limit` (1 to
    /// 10 000) keys whose id sorts after `after` (`None`: from the start). The next page
    /// starts after the last key id returned; an empty page ends the listing.
    fn find_keys_page(
        &self,
        query: &KeyQuery,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<KeyRecord>>;

    /// Commits a unit of work atomically.
    fn commit(&self, work: UnitOfWork, now: UnixMillis) -> Result<Committed>;

    /// Compare-and-set state change together with its audit record.
    fn transition(
        &self,
        change: &Transition,
        audit: &NewAuditRecord,
        now: UnixMillis,
    ) -> Result<KeyRecord> {
        let done = self.commit(
            UnitOfWork {
                transition: Some(change.clone()),
                audit: vec![audit.clone()],
                ..UnitOfWork::default()
            },
            now,
        )?;
        done.key.ok_or_else(|| StoreError::Corrupt {
            what: "transition committed without a key".into(),
        })
    }

    /// Adds a passkey.
    fn add_passkey(&self, passkey: &PasskeyRecord) -> Result<()> {
        self.commit(
            UnitOfWork {
                add_passkeys: vec![passkey.clone()],
                ..UnitOfWork::default()
            },
            passkey.created_ms,
        )
        .map(|_| ())
    }
    /// Updates a passkey's IdP method id and state.
    fn update_passkey(&self, passkey: &PasskeyRecord, now: UnixMillis) -> Result<()> {
        self.commit(
            UnitOfWork {
                update_passkeys: vec![passkey.clone()],
                ..UnitOfWork::default()
            },
            now,
        )
        .map(|_| ())
    }
    /// The passkeys on a key, oldest first.
    fn list_passkeys(&self, key_id: &str) -> Result<Vec<PasskeyRecord>>;
    /// The passkeys with this credential id (on any key), by key id.
    fn passkeys_by_credential(&self, credential_id: &[u8]) -> Result<Vec<PasskeyRecord>>;

    /// Puts a pending registration (replacing one for the same key and IdP).
    fn put_pending(&self, pending: &PendingRegistration) -> Result<()> {
        self.commit(
            UnitOfWork {
                put_pending: vec![pending.clone()],
                ..UnitOfWork::default()
            },
            pending.created_ms,
        )
        .map(|_| ())
    }
    /// Removes and returns the pending registration for a key and passkey template.
    fn take_pending(
        &self,
        key_id: &str,
        passkey_template: &str,
    ) -> Result<Option<PendingRegistration>>;
    /// Pending registrations of a key.
    fn pending_for_key(&self, key_id: &str) -> Result<Vec<PendingRegistration>>;
    /// Pending registrations whose challenge expires before `t`, soonest first.
    fn pending_expiring_before(&self, t: UnixMillis) -> Result<Vec<PendingRegistration>>;
    /// One page of [`Store::pending_expiring_before`]: at most `limit` (1 to 10 000)
    /// registrations, ordered by expiry, key id and passkey template, after the position
    /// `after` (the last one of the previous page).
    fn pending_expiring_page(
        &self,
        t: UnixMillis,
        after: Option<PendingPosition<'_>>,
        limit: u32,
    ) -> Result<Vec<PendingRegistration>>;

    /// Records a bulk job and its items (all pending) atomically. While an unfinished job
    /// of the same kind from the same source (hash) exists this gives
    /// [`StoreError::Duplicate`]; see [`Store::bulk_open_job`].
    fn bulk_create(&self, job: &NewBulkJob, now: UnixMillis) -> Result<BulkJob>;
    /// Reads a bulk job.
    fn bulk_job(&self, job_id: i64) -> Result<Option<BulkJob>>;
    /// The unfinished job of this kind created from this source, if any (a finished one
    /// is never returned: its source makes a new job).
    fn bulk_open_job(&self, kind: &str, source_hash: &str) -> Result<Option<BulkJob>>;
    /// Marks a job finished if none of its items is pending or running (atomically);
    /// returns whether it is finished now.
    fn bulk_finish_job(&self, job_id: i64, now: UnixMillis) -> Result<bool>;
    /// One page of a job's items, by line: at most `limit` (1 to 10 000) items after line
    /// `after_line` (`None`: from the start).
    fn bulk_items(&self, job_id: i64, after_line: Option<u64>, limit: u32)
        -> Result<Vec<BulkItem>>;
    /// Sets an item's status and outcome and clears its claim, unfenced (for tools and
    /// tests; a runner uses [`Store::bulk_finish_item`]).
    fn bulk_set_item(
        &self,
        job_id: i64,
        line: u64,
        status: BulkItemStatus,
        outcome: Option<&str>,
        now: UnixMillis,
    ) -> Result<()>;
    /// Claims item `line` of `job_id` for `owner` until `now + lease_ms` and marks it
    /// running, atomically, if it is as the caller read it (token `seen_token`, status
    /// `seen_status`: nobody claimed or finished it since), it is not done, and no other
    /// claim on it is live (its lease ended at or before `now`). The claim gets a new
    /// fencing token. `None`: another runner has it (or has finished it).
    #[allow(clippy::too_many_arguments)] // the row, what the caller read, who, when, how long
    fn bulk_claim_item(
        &self,
        job_id: i64,
        line: u64,
        seen_token: u64,
        seen_status: BulkItemStatus,
        owner: &str,
        now: UnixMillis,
        lease_ms: u64,
    ) -> Result<Option<BulkClaim>>;
    /// Extends a held claim to `now + lease_ms`; [`StoreError::ClaimLost`] if another
    /// runner has claimed the row since.
    fn bulk_renew_claim(&self, fence: &BulkFence, now: UnixMillis, lease_ms: u64) -> Result<()>;
    /// Records a claimed item's status and outcome and ends the claim, if the claim is
    /// still held ([`StoreError::ClaimLost`] otherwise: the row's new holder records it).
    fn bulk_finish_item(
        &self,
        fence: &BulkFence,
        status: BulkItemStatus,
        outcome: Option<&str>,
        now: UnixMillis,
    ) -> Result<()>;
    /// [`Store::put_transport_pin`] in one transaction with a check that `fence` is
    /// still held ([`StoreError::ClaimLost`] otherwise, and nothing is written).
    fn bulk_fenced_put_transport_pin(
        &self,
        fence: &BulkFence,
        key_id: &str,
        pin: &TransportPin,
        host_key: &PinKey,
        now: UnixMillis,
    ) -> Result<()>;
    /// [`Store::delete_transport_pin`] in one transaction with a check that `fence` is
    /// still held ([`StoreError::ClaimLost`] otherwise, and nothing is deleted).
    fn bulk_fenced_delete_transport_pin(&self, fence: &BulkFence, key_id: &str) -> Result<bool>;
    /// How many items of a job are in each status.
    fn bulk_counts(&self, job_id: i64) -> Result<BulkCounts>;

    /// Appends an audit event; returns its id.
    fn append_audit(&self, event: &NewAuditRecord) -> Result<i64> {
        let done = self.commit(
            UnitOfWork {
                audit: vec![event.clone()],
                ..UnitOfWork::default()
            },
            event.time_ms,
        )?;
        done.audit_ids
            .first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt {
                what: "audit append returned no id".into(),
            })
    }
    /// Audit events matching the query, in append order.
    fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>>;
    /// Walks the whole audit log in order and checks its hash chain and each record's MAC
    /// under the key derived from `host_key`; reports the first record that fails.
    fn verify_audit(&self, host_key: &PinKey) -> Result<AuditVerification>;

    /// Authenticates, as they are, the rows written before rows carried MACs (schema
    /// < 6: pending registrations, passkeys, pending journal entries without a MAC), under
    /// the key derived from `host_key`, and records that in the audit log. Run once, right
    /// after the upgrade, before the database is exposed to anyone else: it trusts what
    /// it finds. A second run gives [`StoreError::Duplicate`]. Until it runs, a store with
    /// the row key installed refuses those rows ([`StoreError::Integrity`]).
    fn adopt_unauthenticated_rows(
        &self,
        host_key: &PinKey,
        actor: &str,
        now: UnixMillis,
    ) -> Result<AdoptedRows>;

    /// Installs the row-authentication key derived from `host_key` (the engine does so
    /// when it is built). From then on pending registrations, passkeys, journal entries
    /// and audit records written through this store carry MACs, and reads of the rows sent
    /// to the IdP check them ([`StoreError::Integrity`] on a mismatch or a missing MAC).
    fn set_row_key(&self, host_key: &PinKey);

    /// Journals a side effect (status Pending) before it is made.
    fn journal_append(&self, entry: &NewJournalEntry, now: UnixMillis) -> Result<JournalEntry> {
        let done = self.commit(
            UnitOfWork {
                journal: vec![entry.clone()],
                ..UnitOfWork::default()
            },
            now,
        )?;
        done.journal
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Corrupt {
                what: "journal append returned no entry".into(),
            })
    }
    /// Claims a pending entry for one attempt by `station` for `lease_ms` and counts the
    /// attempt; call before each IdP call. Fails with [`StoreError::JournalBusy`] while
    /// another station's lease runs (so two stations replaying after a restart never make
    /// the same call at once), [`StoreError::JournalClosed`] once closed.
    fn journal_claim(
        &self,
        id: i64,
        station: &str,
        now: UnixMillis,
        lease_ms: i64,
    ) -> Result<JournalEntry>;
    /// Extends the lease of a claim `fence` holds to `now + lease_ms` without counting an
    /// attempt (a station keeps its claim during a long IdP call). Fails with
    /// [`StoreError::JournalClaimLost`] once another claim took the entry over (closed by
    /// it or not), [`StoreError::JournalClosed`] once closed under this claim.
    fn journal_renew(
        &self,
        id: i64,
        fence: &JournalFence,
        now: UnixMillis,
        lease_ms: i64,
    ) -> Result<JournalEntry>;
    /// Closes an entry as done (idempotent).
    fn journal_done(&self, id: i64, result: Option<&str>, now: UnixMillis) -> Result<()> {
        self.commit(
            UnitOfWork {
                close_journal: vec![JournalClose {
                    id,
                    status: JournalStatus::Done,
                    result: result.map(str::to_owned),
                    fence: None,
                }],
                ..UnitOfWork::default()
            },
            now,
        )
        .map(|_| ())
    }
    /// Closes an entry as failed (idempotent).
    fn journal_failed(&self, id: i64, reason: &str, now: UnixMillis) -> Result<()> {
        self.commit(
            UnitOfWork {
                close_journal: vec![JournalClose {
                    id,
                    status: JournalStatus::Failed,
                    result: Some(reason.to_owned()),
                    fence: None,
                }],
                ..UnitOfWork::default()
            },
            now,
        )
        .map(|_| ())
    }
    /// Reads a journal entry.
    fn journal_get(&self, id: i64) -> Result<Option<JournalEntry>>;
    /// Pending entries in journal order: what to replay after a restart.
    fn journal_unfinished(&self) -> Result<Vec<JournalEntry>>;

    /// Seals and stores a key's transport PIN under the host key (replacing any).
    fn put_transport_pin(
        &self,
        key_id: &str,
        pin: &TransportPin,
        host_key: &PinKey,
        now: UnixMillis,
    ) -> Result<()>;
    /// Opens a key's transport PIN; a wrong host key gives [`StoreError::Crypto`].
    fn get_transport_pin(&self, key_id: &str, host_key: &PinKey) -> Result<Option<TransportPin>>;
    /// Records an enrolment code (its hash, never the code) with its audit record; at most
    /// 16 unused, unexpired codes per station.
    fn put_enrolment_code(&self, code: &EnrolmentCode, audit: &NewAuditRecord) -> Result<()>;
    /// The unused, unexpired enrolment codes of `station`.
    fn open_enrolment_codes(&self, station: &str, now: UnixMillis) -> Result<Vec<EnrolmentCode>>;
    /// Records `agent` and `audit`; with `code_id`, uses that code in the same transaction
    /// (false, nothing recorded, when it is used or expired). A known agent id is refused.
    fn enrol_agent(
        &self,
        agent: &AgentRecord,
        code_id: Option<&str>,
        audit: &NewAuditRecord,
        now: UnixMillis,
    ) -> Result<bool>;
    /// The agent `agent_id`, if enrolled.
    fn get_agent(&self, agent_id: &str) -> Result<Option<AgentRecord>>;
    /// Every enrolled agent, oldest first.
    fn list_agents(&self) -> Result<Vec<AgentRecord>>;
    /// Moves an agent whose status is one of `from` to `to`, with `audit`; false when its
    /// status is another ([`StoreError::NotFound`] for an unknown agent).
    fn set_agent_status(
        &self,
        agent_id: &str,
        from: &[AgentStatus],
        to: AgentStatus,
        audit: &NewAuditRecord,
        now: UnixMillis,
    ) -> Result<bool>;
    /// Records a self-service sign-in nonce (its digest, never the nonce) valid until
    /// `expires_ms`; drops expired nonces and used-token records.
    fn put_nonce(&self, nonce_hash: &str, expires_ms: UnixMillis, now: UnixMillis) -> Result<()>;
    /// Takes (deletes) an unexpired nonce: false when unknown, expired or already taken.
    /// Atomic: of two stations taking the same nonce, one gets true.
    fn take_nonce(&self, nonce_hash: &str, now: UnixMillis) -> Result<bool>;
    /// Records that the ID token `token_id` of `issuer` was used; kept until
    /// `expires_ms` (the token's expiry). False when it was already recorded (a replay).
    fn use_token_id(
        &self,
        issuer: &str,
        token_id: &str,
        expires_ms: UnixMillis,
        now: UnixMillis,
    ) -> Result<bool>;
    /// Forgets a key's transport PIN; returns whether one was stored.
    fn delete_transport_pin(&self, key_id: &str) -> Result<bool>;
}

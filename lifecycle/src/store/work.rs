//! A unit of work: the changes the store commits together, and what it produced.

use super::*;

/// A compare-and-set change of a key's state.
///
/// Applied only if the key is in `expected_state` at `expected_version`; otherwise the
/// whole unit of work fails with [`StoreError::Conflict`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The key.
    pub key_id: String,
    /// The state the caller read.
    #[serde(with = "state_serde")]
    pub expected_state: CredentialState,
    /// The version the caller read.
    pub expected_version: u64,
    /// The new state.
    #[serde(with = "state_serde")]
    pub new_state: CredentialState,
    /// What happens to the key's user.
    pub user_id: FieldChange<String>,
    /// What happens to the key's template.
    pub template_id: FieldChange<String>,
    /// `Some(b)` sets the needs-reissue flag; `None` leaves it.
    pub needs_reissue: Option<bool>,
    /// Why, with `needs_reissue: Some(true)` (stored with the flag; cleared with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reissue_reason: Option<super::watch::ReissueReason>,
    /// What the key proved about itself (recorded with the transition; `None` leaves
    /// the recorded identity as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<KeyIdentity>,
}

/// What a key proved about itself, and how (recorded as [`KeyRecord::identity`] and
/// [`KeyRecord::serial_source`] with an issuance).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyIdentity {
    /// The identity as hex: the key's CTAP 2.2 device identifier (`encIdentifier`) or
    /// its enterprise attestation certificate's serial. `None`: the key proved nothing
    /// (or was issued before schema 14); only the source is recorded.
    pub identity: Option<String>,
    /// Where the serial or identity comes from: `enc_identifier`,
    /// `attestation_certificate`, `usb_serial_string` or `claimed` (the CSV row or the
    /// caller said so; not verified). `None`: not recorded.
    pub serial_source: Option<String>,
}

impl Transition {
    /// A transition that changes only the state.
    pub fn new(key: &KeyRecord, new_state: CredentialState) -> Self {
        Transition {
            key_id: key.key_id.clone(),
            expected_state: key.state,
            expected_version: key.version,
            new_state,
            user_id: FieldChange::Keep,
            template_id: FieldChange::Keep,
            needs_reissue: None,
            reissue_reason: None,
            identity: None,
        }
    }
}

/// A change to an optional field of a record: leave it, set it, or clear it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldChange<T> {
    /// Leave the field as it is.
    #[default]
    Keep,
    /// Set the field to this value.
    Set(T),
    /// Clear the field.
    Clear,
}

impl<T: Clone> FieldChange<T> {
    /// Set to `value`, or cleared when it is `None`.
    pub fn to(value: Option<T>) -> Self {
        match value {
            Some(v) => FieldChange::Set(v),
            None => FieldChange::Clear,
        }
    }

    /// The field's value after the change, given its value `current` before.
    pub fn apply(&self, current: Option<T>) -> Option<T> {
        match self {
            FieldChange::Keep => current,
            FieldChange::Set(v) => Some(v.clone()),
            FieldChange::Clear => None,
        }
    }
}

/// Changes committed together or not at all, applied in field order: users, new keys, the
/// transition, passkeys, pending registrations, journal, audit (after the bulk fence check).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitOfWork {
    /// Users to insert or update.
    pub users: Vec<UserRecord>,
    /// Keys to record (bulk import); each starts Blank at version 1.
    pub create_keys: Vec<NewKey>,
    /// A compare-and-set state change.
    pub transition: Option<Transition>,
    /// Passkeys to add (duplicate -> [`StoreError::Duplicate`]).
    pub add_passkeys: Vec<PasskeyRecord>,
    /// Passkeys whose `idp_method_id` and `state` to update (matched by key, IdP, credential id).
    pub update_passkeys: Vec<PasskeyRecord>,
    /// Pending registrations to put (replacing one for the same key and passkey template).
    pub put_pending: Vec<PendingRegistration>,
    /// Pending registrations to remove; absent ones are ignored.
    pub remove_pending: Vec<PendingId>,
    /// Side effects to journal.
    pub journal: Vec<NewJournalEntry>,
    /// Journal entries to close. Closing is idempotent for the same status.
    pub close_journal: Vec<JournalClose>,
    /// Audit events to append.
    pub audit: Vec<NewAuditRecord>,
    /// When set, the unit commits only while this bulk row claim is still held (checked
    /// first, in the same transaction, with the row locked): otherwise nothing is written
    /// and the commit fails with [`StoreError::ClaimLost`].
    pub bulk_fence: Option<BulkFence>,
}

/// A pending registration, named by its key and passkey template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingId {
    /// The key id.
    pub key_id: String,
    /// The passkey template.
    pub passkey_template: String,
}

/// A journal entry to close.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalClose {
    /// The entry.
    pub id: i64,
    /// Its new status.
    pub status: JournalStatus,
    /// The IdP's answer (method id, request id) or the failure reason.
    pub result: Option<String>,
    /// The claim the closer holds (from [`super::Store::journal_claim`]): with one, the
    /// close (and the unit of work it is part of) is refused with
    /// [`super::StoreError::JournalClaimLost`] unless the entry is still claimed by that
    /// station with that token. `None`: an entry the closer never claimed.
    #[serde(default)]
    pub fence: Option<JournalFence>,
}

/// A journal claim's fencing token: the claiming station and the entry's attempt count
/// its claim set. A later claim (another station's, or a new one) changes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalFence {
    /// The station that claimed the entry.
    pub station: String,
    /// The entry's `attempts` after the claim.
    pub token: u32,
}

impl JournalFence {
    /// The fence of a claim [`super::Store::journal_claim`] returned.
    pub fn of(claimed: &JournalEntry) -> Self {
        JournalFence {
            station: claimed.claimed_by.clone().unwrap_or_default(),
            token: claimed.attempts,
        }
    }
}

/// Where a page of [`Store::pending_expiring_page`] starts: after the registration with
/// this expiry, key id and passkey template (the last one of the previous page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingPosition<'a> {
    /// Its challenge expiry.
    pub challenge_expires_ms: UnixMillis,
    /// Its key id.
    pub key_id: &'a str,
    /// Its passkey template.
    pub passkey_template: &'a str,
}

/// What a committed [`UnitOfWork`] produced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The keys created, in order.
    pub created_keys: Vec<KeyRecord>,
    /// The key after the transition, if there was one.
    pub key: Option<KeyRecord>,
    /// The journal entries created, in order.
    pub journal: Vec<JournalEntry>,
    /// The ids of the audit records appended, in order.
    pub audit_ids: Vec<i64>,
}

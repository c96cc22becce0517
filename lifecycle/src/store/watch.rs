//! What keysmith keeps learning about its passkeys after issuance (issue 19 item 5 and
//! issue 13 item 12): the user name each passkey carries (the holder's UPN when it was
//! made, which Entra cannot change afterwards), when the IdP last saw it sign in, and why
//! a key was marked as needing reissue.
//!
//! The user name is noted by the store itself when a passkey is added: the UPN of the
//! key's user as the same unit of work recorded it (issuance upserts the user first).
//! Reconciliation records the last use it reads (Entra: beta `lastUsedDateTime`) and
//! compares the name with the holder's UPN now. None of these columns decides an IdP
//! call, so they carry no row MAC (see `docs/database-trust.md`): a tampered value can
//! only make a key look renamed or stale, never send or delete anything.

use serde::{Deserialize, Serialize};

use super::{Result, UnixMillis};

/// Why a key was marked as needing reissue (stored with the mark; cleared with it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReissueReason {
    /// The holder's user principal name changed since the passkey was made; Entra cannot
    /// change the user name stored in a passkey, so the holder sees the old one.
    UserRenamed,
    /// A registered passkey is gone at the IdP.
    MissingAtIdp,
    /// A pending registration's challenge expired before it was sent.
    ChallengeExpired,
}

impl ReissueReason {
    /// The stable snake_case name (as stored and in JSON).
    pub const fn as_str(self) -> &'static str {
        match self {
            ReissueReason::UserRenamed => "user_renamed",
            ReissueReason::MissingAtIdp => "missing_at_idp",
            ReissueReason::ChallengeExpired => "challenge_expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user_renamed" => Some(ReissueReason::UserRenamed),
            "missing_at_idp" => Some(ReissueReason::MissingAtIdp),
            "challenge_expired" => Some(ReissueReason::ChallengeExpired),
            _ => None,
        }
    }
}

impl std::fmt::Display for ReissueReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known about one passkey beyond its record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyWatch {
    /// The key holding the passkey.
    pub key_id: String,
    /// The passkey template.
    pub passkey_template: String,
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The user name the passkey carries (the holder's UPN when it was made), if known.
    pub user_name: Option<String>,
    /// When the IdP last saw it sign in (as last read), if ever.
    pub last_used_ms: Option<UnixMillis>,
}

/// The last use of an active key: the latest sign-in of any of its registered passkeys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUse {
    /// The key.
    pub key_id: String,
    /// The latest last use the IdP reported for its passkeys (`None`: none reported).
    pub last_used_ms: Option<UnixMillis>,
    /// When its oldest registered passkey was made (the baseline of a key never used).
    pub made_ms: UnixMillis,
}

/// The store's side of [`PasskeyWatch`], [`KeyUse`] and [`ReissueReason`].
pub trait WatchStore {
    /// Why the key was marked as needing reissue, if the mark said.
    fn reissue_reason(&self, key_id: &str) -> Result<Option<ReissueReason>>;
    /// What is known about the passkeys of a key (those added since schema 11, and those
    /// the migration found with a user).
    fn passkey_watch(&self, key_id: &str) -> Result<Vec<PasskeyWatch>>;
    /// Records the user name a passkey carries when none is recorded yet (the baseline
    /// for a passkey made before the name was kept).
    fn note_user_name(
        &self,
        key_id: &str,
        passkey_template: &str,
        credential_id: &[u8],
        user_name: &str,
    ) -> Result<()>;
    /// Records the IdP's last use of a passkey; an older value than the one recorded is
    /// ignored.
    fn record_last_used(
        &self,
        key_id: &str,
        passkey_template: &str,
        credential_id: &[u8],
        last_used_ms: UnixMillis,
    ) -> Result<()>;
    /// Active keys with a registered active passkey, none of whose passkeys was used at
    /// or after `before_ms` (a key never used counts from when its passkey was made),
    /// ordered by key id.
    fn unused_keys(&self, before_ms: UnixMillis) -> Result<Vec<KeyUse>>;
}

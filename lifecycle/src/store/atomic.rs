//! Writes that belong in one transaction because something else may run between them:
//! a journal entry and its claim (another node's replay), a sign-in's token id and nonce.

use super::{JournalEntry, NewJournalEntry, Result, UnixMillis};

/// Atomic pairs of repository writes. Every [`super::Store`] implements it.
pub trait AtomicWrites {
    /// Journals a side effect (status Pending) already claimed by `station` for
    /// `lease_ms`: what a flow about to make the side effect writes, so that no other
    /// station's replay can take the entry over between its append and the flow's claim
    /// (a node's own replay is kept off by its live flows; another node's is not).
    /// Returns the claimed entry (one attempt counted), as
    /// [`super::Store::journal_claim`] would.
    fn journal_append_claimed(
        &self,
        entry: &NewJournalEntry,
        station: &str,
        now: UnixMillis,
        lease_ms: i64,
    ) -> Result<JournalEntry>;
    /// A sign-in's two single-use checks in one transaction: records the ID token (as
    /// [`super::Store::use_token_id`]) and, when it was its first use, takes the nonce (as
    /// [`super::Store::take_nonce`]). Returns (first use of the token, nonce taken); a
    /// replayed token leaves the nonce alone.
    fn use_sign_in(
        &self,
        issuer: &str,
        token_id: &str,
        expires_ms: UnixMillis,
        nonce_hash: &str,
        now: UnixMillis,
    ) -> Result<(bool, bool)>;
}

/// Implements [`AtomicWrites`] for a SQL backend type shaped as for `impl_store!`.
macro_rules! impl_atomic_writes {
    ($ty:ty) => {
        impl $crate::store::atomic::AtomicWrites for $ty {
            fn journal_append_claimed(
                &self,
                entry: &$crate::store::NewJournalEntry,
                station: &str,
                now: $crate::store::UnixMillis,
                lease_ms: i64,
            ) -> $crate::store::Result<$crate::store::JournalEntry> {
                let k = self.row_key.get();
                self.tx(|s| {
                    let e = $crate::store::sql::journal_append(s, k.as_deref(), entry, now)?;
                    $crate::store::sql::journal_claim(s, k.as_deref(), e.id, station, now, lease_ms)
                })
            }
            fn use_sign_in(
                &self,
                issuer: &str,
                token_id: &str,
                expires_ms: $crate::store::UnixMillis,
                nonce_hash: &str,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<(bool, bool)> {
                self.tx(|s| {
                    if !$crate::store::sql::use_token_id(s, issuer, token_id, expires_ms, now)? {
                        return Ok((false, false));
                    }
                    Ok((true, $crate::store::sql::take_nonce(s, nonce_hash, now)?))
                })
            }
        }
    };
}
pub(crate) use impl_atomic_writes;

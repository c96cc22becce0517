//! Row authentication: HMAC-SHA256 over the rows that are replayed to the IdP (pending
//! registrations, passkeys, journal entries) and over the audit chain, under keys derived
//! (HKDF-SHA256) from the host's [`PinKey`].
//!
//! The database is not trusted: anyone who can write to it could otherwise swap the user
//! or the attestation of a pending registration and have the next activation register
//! their passkey for someone else. Each authenticated row carries `mac` =
//! `FORMAT || HMAC(row key, label || fields)`, every field length-prefixed so no two
//! field lists encode alike. Binary fields that can be large (attestation object,
//! clientDataJSON, public key, journal payload) enter as their SHA-256 digests.

use super::PinKey;
use crate::store::{Result, StoreError};
use core::fmt;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::sync::{Arc, PoisonError, RwLock};
use zeroize::{Zeroize, ZeroizeOnDrop};

type HmacSha256 = Hmac<Sha256>;

/// Format byte of a row MAC (lets the construction evolve).
const MAC_FORMAT_V1: u8 = 1;
/// Length of a stored MAC: format byte + 32-byte tag.
pub(crate) const MAC_LEN: usize = 33;
/// HKDF salt: names the scheme, so no other use of the PIN key derives the same keys.
const HKDF_SALT: &[u8] = b"keysmith/row-authentication/v1";

/// The audit chain's starting point: the "previous hash" of the first chained record.
pub(crate) const AUDIT_GENESIS: [u8; 32] = [0; 32];

/// The keys derived from the host's [`PinKey`] that authenticate rows. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct RowKey {
    rows: [u8; 32],
    audit: [u8; 32],
}

impl fmt::Debug for RowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RowKey(<redacted>)")
    }
}

impl RowKey {
    /// Derives the row and audit keys from the host key (HKDF-SHA256, distinct `info`).
    pub(crate) fn derive(host: &PinKey) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), host.expose_bytes());
        let mut rows = [0u8; 32];
        let mut audit = [0u8; 32];
        // 32 bytes is far below HKDF's limit (255 * 32): expand cannot fail.
        let _ = hk.expand(b"rows", &mut rows);
        let _ = hk.expand(b"audit", &mut audit);
        RowKey { rows, audit }
    }

    fn tag(key: &[u8; 32], label: &str, fields: &[Field<'_>]) -> HmacSha256 {
        // HMAC accepts keys of any length: new_from_slice cannot fail.
        let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
        m.update(&encode(label, fields));
        m
    }

    /// The stored MAC of a row: `FORMAT || HMAC`.
    pub(crate) fn seal_row(&self, label: &str, fields: &[Field<'_>]) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAC_LEN);
        out.push(MAC_FORMAT_V1);
        out.extend_from_slice(&Self::tag(&self.rows, label, fields).finalize().into_bytes());
        out
    }

    /// Checks a row's stored MAC (constant-time); `row` names it in the error.
    pub(crate) fn check_row(
        &self,
        row: impl FnOnce() -> String,
        stored: Option<&[u8]>,
        label: &str,
        fields: &[Field<'_>],
    ) -> Result<()> {
        check(&self.rows, row, stored, label, fields)
    }

    /// The MAC of an audit record's chain hash.
    pub(crate) fn seal_audit(&self, hash: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAC_LEN);
        out.push(MAC_FORMAT_V1);
        let fields = [Field::Bytes(hash)];
        out.extend_from_slice(
            &Self::tag(&self.audit, "audit", &fields)
                .finalize()
                .into_bytes(),
        );
        out
    }

    /// Checks an audit record's MAC over its chain hash.
    pub(crate) fn check_audit(&self, hash: &[u8; 32], stored: Option<&[u8]>) -> bool {
        check(
            &self.audit,
            String::new,
            stored,
            "audit",
            &[Field::Bytes(hash)],
        )
        .is_ok()
    }
}

fn check(
    key: &[u8; 32],
    row: impl FnOnce() -> String,
    stored: Option<&[u8]>,
    label: &str,
    fields: &[Field<'_>],
) -> Result<()> {
    let fail = |reason: &str| StoreError::Integrity {
        row: row(),
        reason: reason.to_owned(),
    };
    let Some(stored) = stored else {
        return Err(fail(
            "the row carries no MAC (written before schema 6 or without the host key)",
        ));
    };
    match stored.split_first() {
        Some((&MAC_FORMAT_V1, tag)) => RowKey::tag(key, label, fields)
            .verify_slice(tag)
            .map_err(|_| fail("MAC mismatch: the row was changed outside keysmith or another host key wrote it")),
        _ => Err(fail("malformed MAC")),
    }
}

/// One field of an authenticated row.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Field<'a> {
    /// A text value.
    Text(&'a str),
    /// A text value or NULL.
    OptText(Option<&'a str>),
    /// An unsigned number (times, versions).
    Uint(u64),
    /// A signed number (ids).
    Int(i64),
    /// Raw bytes (short: ids, hashes).
    Bytes(&'a [u8]),
    /// Bytes entered as their SHA-256 digest (attestation, clientDataJSON, payloads).
    Digest(&'a [u8]),
}

/// `label` and the fields, each with a type byte and a length prefix.
fn encode(label: &str, fields: &[Field<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + 48 * fields.len());
    let mut put = |ty: u8, bytes: &[u8]| {
        out.push(ty);
        out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    put(b'L', label.as_bytes());
    for f in fields {
        match f {
            Field::Text(s) => put(b'T', s.as_bytes()),
            Field::OptText(None) => put(b'N', &[]),
            Field::OptText(Some(s)) => put(b'T', s.as_bytes()),
            Field::Uint(v) => put(b'U', &v.to_be_bytes()),
            Field::Int(v) => put(b'I', &v.to_be_bytes()),
            Field::Bytes(b) => put(b'B', b),
            Field::Digest(b) => put(b'D', &Sha256::digest(b)),
        }
    }
    out
}

/// The chain hash of an audit record: SHA-256 over the previous record's hash and the
/// record's fields (the id is not hashed: the store assigns it on insert; order is bound
/// by the previous hash).
pub(crate) fn audit_hash(prev: &[u8; 32], fields: &[Field<'_>]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(encode("audit-record", fields));
    h.finalize().into()
}

/// Where a store keeps the row key the engine installed (none until then: a store used
/// without an engine writes rows without MACs and reads them unchecked).
#[derive(Default)]
pub(crate) struct RowKeySlot(RwLock<Option<Arc<RowKey>>>);

impl fmt::Debug for RowKeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.get().is_some();
        f.debug_struct("RowKeySlot").field("set", &set).finish()
    }
}

impl RowKeySlot {
    /// Installs (or replaces) the key derived from `host`.
    pub(crate) fn set(&self, host: &PinKey) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) =
            Some(Arc::new(RowKey::derive(host)));
    }

    /// The installed key, if any.
    pub(crate) fn get(&self) -> Option<Arc<RowKey>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> RowKey {
        RowKey::derive(&PinKey::from_bytes([b; 32]))
    }

    #[test]
    fn row_mac_binds_every_field_and_the_key() {
        let k = key(7);
        let f = [
            Field::Text("key-1"),
            Field::Text("alice"),
            Field::Digest(b"att"),
        ];
        let mac = k.seal_row("pending", &f);
        assert_eq!(mac.len(), MAC_LEN);
        k.check_row(|| "r".into(), Some(&mac), "pending", &f)
            .unwrap();
        let bob = [
            Field::Text("key-1"),
            Field::Text("bob"),
            Field::Digest(b"att"),
        ];
        let err = k
            .check_row(|| "r".into(), Some(&mac), "pending", &bob)
            .unwrap_err();
        assert!(matches!(err, StoreError::Integrity { ref row, .. } if row == "r"));
        assert!(key(8)
            .check_row(String::new, Some(&mac), "pending", &f)
            .is_err());
        assert!(k.check_row(String::new, Some(&mac), "passkey", &f).is_err());
        assert!(k.check_row(String::new, None, "pending", &f).is_err());
        assert!(k
            .check_row(String::new, Some(&[2; 33]), "pending", &f)
            .is_err());
    }

    #[test]
    fn encoding_is_unambiguous() {
        let a = encode("x", &[Field::Text("ab"), Field::Text("c")]);
        let b = encode("x", &[Field::Text("a"), Field::Text("bc")]);
        assert_ne!(a, b);
        let n = encode("x", &[Field::OptText(None)]);
        let e = encode("x", &[Field::OptText(Some(""))]);
        assert_ne!(n, e);
    }

    #[test]
    fn audit_hash_chains_and_mac_checks() {
        let k = key(1);
        let h1 = audit_hash(&AUDIT_GENESIS, &[Field::Text("issue")]);
        let h2 = audit_hash(&h1, &[Field::Text("issue")]);
        assert_ne!(h1, h2);
        let mac = k.seal_audit(&h1);
        assert!(k.check_audit(&h1, Some(&mac)));
        assert!(!k.check_audit(&h2, Some(&mac)));
        assert!(!key(2).check_audit(&h1, Some(&mac)));
        assert!(!k.check_audit(&h1, None));
        assert_eq!(format!("{k:?}"), "RowKey(<redacted>)");
    }
}

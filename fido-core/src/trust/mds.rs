//! The FIDO Metadata Service (MDS3) BLOB: a JWS (RS256 or ES256) whose `x5c` header
//! chains to the FIDO MDS root, read offline from a file the operator downloads.
//!
//! The signature is checked by `jsonwebtoken` with the key of `x5c[0]`, and `x5c` is
//! validated up to the configured MDS root(s) by OpenSSL (`X509_verify_cert`). Only then
//! is the payload read: `no`, `nextUpdate` and, for each entry with an `aaguid`, its
//! `attestationRootCertificates` and latest `statusReports` status. Every size is
//! bounded before anything is decoded.

use std::collections::{BTreeMap, HashSet};

use base64::Engine as _;
use serde::Deserialize;

use super::chain;

/// Largest BLOB accepted, in bytes (the real one is a few MB).
pub const MAX_BLOB_BYTES: usize = 32 << 20;
/// Most entries read from a BLOB.
pub const MAX_ENTRIES: usize = 20_000;
/// Most `attestationRootCertificates` per entry.
pub const MAX_ROOTS_PER_ENTRY: usize = 32;
/// Largest certificate accepted (in `x5c` or as a root), in bytes of DER.
pub const MAX_CERT_BYTES: usize = 16 << 10;
/// Most certificates in the BLOB's `x5c` header.
pub const MAX_HEADER_X5C: usize = 5;

/// Statuses that mean a model's keys must not be trusted (FIDO MDS3 §3.1.4).
pub const COMPROMISED_STATUSES: [&str; 5] = [
    "REVOKED",
    "USER_VERIFICATION_BYPASS",
    "ATTESTATION_KEY_COMPROMISE",
    "USER_KEY_REMOTE_COMPROMISE",
    "USER_KEY_PHYSICAL_COMPROMISE",
];

/// What is wrong with an MDS BLOB.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MdsError {
    /// The BLOB is larger than [`MAX_BLOB_BYTES`].
    #[error("MDS BLOB is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not a compact JWS (three base64url parts), or its header is unreadable.
    #[error("MDS BLOB is not a JWS: {0}")]
    NotJws(String),
    /// The JWS `alg` is neither RS256 nor ES256.
    #[error("MDS BLOB alg {0} is not accepted (RS256 or ES256)")]
    Algorithm(String),
    /// The header has no `x5c`, too many certificates, or one that is not base64 DER.
    #[error("MDS BLOB x5c: {0}")]
    Header(String),
    /// `x5c` does not chain to the configured MDS root (or is not valid now).
    #[error("MDS BLOB signer is not trusted: {0}")]
    Untrusted(String),
    /// The signature does not verify with `x5c[0]`, or the payload is not the expected JSON.
    #[error("MDS BLOB signature or payload: {0}")]
    Signature(String),
    /// The payload breaks a bound or has a malformed field.
    #[error("MDS BLOB payload: {0}")]
    Payload(String),
    /// `nextUpdate` is in the past: the operator must download a current BLOB.
    #[error(
        "MDS BLOB no. {no} is stale: nextUpdate {next_update} has passed; download a current BLOB"
    )]
    Stale {
        /// The BLOB's serial number.
        no: u64,
        /// Its `nextUpdate` date.
        next_update: String,
    },
}

/// One authenticator model from the BLOB.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MdsEntry {
    /// The model's AAGUID.
    pub aaguid: [u8; 16],
    /// `metadataStatement.description`, if any.
    pub description: Option<String>,
    /// `metadataStatement.attestationRootCertificates`, as DER.
    pub roots: Vec<Vec<u8>>,
    /// The latest `statusReports` status (by `effectiveDate`), if any.
    pub status: Option<String>,
}

impl MdsEntry {
    /// The latest status says the model's keys must not be trusted.
    pub fn compromised(&self) -> bool {
        self.status
            .as_deref()
            .is_some_and(|s| COMPROMISED_STATUSES.contains(&s))
    }
}

/// A verified MDS BLOB: its serial number, next update and FIDO2 entries by AAGUID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdsBlob {
    no: u64,
    next_update: String,
    entries: BTreeMap<[u8; 16], MdsEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPayload {
    no: u64,
    next_update: String,
    #[serde(default)]
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    #[serde(default)]
    aaguid: Option<String>,
    #[serde(default)]
    metadata_statement: Option<RawStatement>,
    #[serde(default)]
    status_reports: Vec<RawStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatement {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    attestation_root_certificates: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatus {
    status: String,
    #[serde(default)]
    effective_date: Option<String>,
}

/// Decodes standard base64 (as MDS and JWS `x5c` use) into DER of bounded size.
fn cert_der(b64: &str, what: &str) -> Result<Vec<u8>, String> {
    if b64.len() > MAX_CERT_BYTES * 4 / 3 + 4 {
        return Err(format!(
            "{what}: certificate larger than {MAX_CERT_BYTES} bytes"
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("{what}: not base64: {e}"))
}

pub use crate::aaguid::parse_aaguid;

/// `YYYY-MM-DD` of a Unix time (UTC), for comparing with `nextUpdate` (past year 9999:
/// its last day).
fn date_of(unix: u64) -> String {
    let d = i64::try_from(unix)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .map(|t| t.date())
        .unwrap_or(time::Date::MAX);
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

impl MdsBlob {
    /// Verifies `blob` (the JWS as downloaded) against the MDS root certificates `roots`
    /// (DER) at `now` (seconds since the Unix epoch) and reads its FIDO2 entries.
    /// Entries without an AAGUID (U2F and UAF models) are skipped.
    pub fn verify(blob: &[u8], roots: &[Vec<u8>], now: u64) -> Result<MdsBlob, MdsError> {
        if blob.len() > MAX_BLOB_BYTES {
            return Err(MdsError::TooLarge {
                size: blob.len(),
                max: MAX_BLOB_BYTES,
            });
        }
        let token = std::str::from_utf8(blob)
            .map_err(|_| MdsError::NotJws("not UTF-8".into()))?
            .trim();
        if token.split('.').count() != 3 {
            return Err(MdsError::NotJws(
                "expected three dot-separated parts".into(),
            ));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| MdsError::NotJws(e.to_string()))?;
        let alg = header.alg;
        if !matches!(
            alg,
            jsonwebtoken::Algorithm::RS256 | jsonwebtoken::Algorithm::ES256
        ) {
            return Err(MdsError::Algorithm(format!("{alg:?}")));
        }
        let x5c = header
            .x5c
            .ok_or_else(|| MdsError::Header("missing".into()))?;
        if x5c.is_empty() || x5c.len() > MAX_HEADER_X5C {
            return Err(MdsError::Header(format!(
                "{} certificates (1 to {MAX_HEADER_X5C} accepted)",
                x5c.len()
            )));
        }
        let chain = x5c
            .iter()
            .map(|c| cert_der(c, "x5c"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(MdsError::Header)?;
        chain::verify_path(&chain, roots, now).map_err(|e| MdsError::Untrusted(e.to_string()))?;
        let key = signer_key(&chain[0], alg)?;
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<RawPayload>(token, &key, &validation)
            .map_err(|e| MdsError::Signature(e.to_string()))?;
        Self::from_payload(data.claims, now)
    }

    fn from_payload(raw: RawPayload, now: u64) -> Result<MdsBlob, MdsError> {
        if raw.entries.len() > MAX_ENTRIES {
            return Err(MdsError::Payload(format!(
                "{} entries; at most {MAX_ENTRIES} are read",
                raw.entries.len()
            )));
        }
        let next_ok = raw.next_update.len() == 10
            && raw.next_update.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !next_ok {
            return Err(MdsError::Payload(format!(
                "nextUpdate {:?} is not YYYY-MM-DD",
                raw.next_update
            )));
        }
        if raw.next_update < date_of(now) {
            return Err(MdsError::Stale {
                no: raw.no,
                next_update: raw.next_update,
            });
        }
        let mut entries = BTreeMap::new();
        for (index, e) in raw.entries.into_iter().enumerate() {
            let Some(text) = e.aaguid else { continue };
            let aaguid = parse_aaguid(&text).ok_or_else(|| {
                MdsError::Payload(format!("entries[{index}].aaguid {text:?} is not an AAGUID"))
            })?;
            let statement = e.metadata_statement;
            let root_texts = statement
                .as_ref()
                .map(|s| s.attestation_root_certificates.as_slice())
                .unwrap_or_default();
            if root_texts.len() > MAX_ROOTS_PER_ENTRY {
                return Err(MdsError::Payload(format!(
                    "entries[{index}] has {} root certificates; at most {MAX_ROOTS_PER_ENTRY}",
                    root_texts.len()
                )));
            }
            let roots = root_texts
                .iter()
                .map(|c| cert_der(c, &format!("entries[{index}].attestationRootCertificates")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(MdsError::Payload)?;
            // The latest report by effectiveDate (ISO dates sort as text); ties go to
            // the later one in the list.
            let status = e
                .status_reports
                .iter()
                .enumerate()
                .max_by(|(ia, a), (ib, b)| {
                    (a.effective_date.as_deref(), ia).cmp(&(b.effective_date.as_deref(), ib))
                })
                .map(|(_, r)| r.status.clone());
            entries.insert(
                aaguid,
                MdsEntry {
                    aaguid,
                    description: statement.and_then(|s| s.description),
                    roots,
                    status,
                },
            );
        }
        Ok(MdsBlob {
            no: raw.no,
            next_update: raw.next_update,
            entries,
        })
    }

    /// The BLOB's serial number (`no`).
    pub fn no(&self) -> u64 {
        self.no
    }

    /// When the next BLOB is due (`nextUpdate`, `YYYY-MM-DD`).
    pub fn next_update(&self) -> &str {
        &self.next_update
    }

    /// The entry for `aaguid`, if the BLOB lists the model.
    pub fn entry(&self, aaguid: &[u8; 16]) -> Option<&MdsEntry> {
        self.entries.get(aaguid)
    }

    /// Number of FIDO2 entries read.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The BLOB lists no FIDO2 model.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Fuzz entry: reads `data` as a BLOB payload (what follows the signature check), so the
/// payload bounds are exercised without a signature.
#[cfg(feature = "fuzzing")]
pub fn fuzz_payload(data: &[u8]) {
    if let Ok(raw) = serde_json::from_slice::<RawPayload>(data) {
        let _ = MdsBlob::from_payload(raw, 0);
    }
}

/// The JWS verification key from the signer certificate (`x5c[0]`).
fn signer_key(
    der: &[u8],
    alg: jsonwebtoken::Algorithm,
) -> Result<jsonwebtoken::DecodingKey, MdsError> {
    let bad = |e: String| MdsError::Header(format!("x5c[0] key: {e}"));
    let cert = openssl::x509::X509::from_der(der).map_err(|e| bad(e.to_string()))?;
    let key = cert.public_key().map_err(|e| bad(e.to_string()))?;
    match alg {
        jsonwebtoken::Algorithm::RS256 => {
            let rsa = key.rsa().map_err(|e| bad(e.to_string()))?;
            let der = rsa
                .public_key_to_der_pkcs1()
                .map_err(|e| bad(e.to_string()))?;
            Ok(jsonwebtoken::DecodingKey::from_rsa_der(&der))
        }
        _ => {
            let ec = key.ec_key().map_err(|e| bad(e.to_string()))?;
            let mut ctx = openssl::bn::BigNumContext::new().map_err(|e| bad(e.to_string()))?;
            let point = ec
                .public_key()
                .to_bytes(
                    ec.group(),
                    openssl::ec::PointConversionForm::UNCOMPRESSED,
                    &mut ctx,
                )
                .map_err(|e| bad(e.to_string()))?;
            Ok(jsonwebtoken::DecodingKey::from_ec_der(&point))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_aaguids() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(1_780_272_000), "2026-06-01");
        assert_eq!(date_of(951_782_400), "2000-02-29");
        assert_eq!(
            parse_aaguid("cb69481e-8ff7-4039-93ec-0a2729a154a8"),
            Some([
                0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1,
                0x54, 0xa8
            ])
        );
        assert_eq!(parse_aaguid("cb69481e8ff7403993ec0a2729a154a8"), None);
        assert_eq!(parse_aaguid("zz69481e-8ff7-4039-93ec-0a2729a154a8"), None);
        // A sign is not a hex digit (`from_str_radix` read "+b" as 0x0b).
        assert_eq!(parse_aaguid("+b69481e-8ff7-4039-93ec-0a2729a154a8"), None);
    }

    #[test]
    fn oversized_and_malformed_blobs_are_typed_errors() {
        let big = vec![b'a'; MAX_BLOB_BYTES + 1];
        assert!(matches!(
            MdsBlob::verify(&big, &[], 0),
            Err(MdsError::TooLarge { .. })
        ));
        assert!(matches!(
            MdsBlob::verify(b"not a jws", &[], 0),
            Err(MdsError::NotJws(_))
        ));
        assert!(matches!(
            MdsBlob::verify(b"e30.e30.AA", &[], 0),
            Err(MdsError::NotJws(_) | MdsError::Algorithm(_))
        ));
        assert!(matches!(
            MdsBlob::verify(&[0xff, b'.', b'.'], &[], 0),
            Err(MdsError::NotJws(_))
        ));
    }
}

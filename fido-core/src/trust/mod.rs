//! The attestation trust store (feature `trust`): which roots an authenticator model's
//! attestation must chain to, from a verified FIDO MDS3 BLOB ([`MdsBlob`]) plus optional
//! extra roots the operator adds (PEM).
//!
//! [`TrustStore::verify`] checks, for a new credential's attestation object:
//! 1. the statement (`packed`, `fido-u2f`, `tpm`): its signature and the WebAuthn leaf
//!    requirements, including the id-fido-gen-ce-aaguid extension equal to authData's
//!    AAGUID ([`AttestationObject::verify`]);
//! 2. a certificate chain is present (`none` and self attestation are not attested);
//! 3. the model is in the BLOB and its latest status is not a compromise, or an extra
//!    root is configured;
//! 4. the chain validates at `now` up to a root listed for that AAGUID, or an extra root
//!    (OpenSSL's `X509_verify_cert`, trust anchors may be intermediates).
//!
//! The caller still compares the AAGUID with getInfo's and checks the UV flag.

use crate::attestation::{AttestationError, AttestationObject, AttestationType};

mod chain;
pub mod mds;

pub use mds::{MdsBlob, MdsEntry, MdsError};

/// Most extra roots accepted.
pub const MAX_EXTRA_ROOTS: usize = 256;

/// Why an attestation is not trusted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The attestation statement itself is malformed or does not verify (including an
    /// AAGUID extension that differs from authData's).
    #[error(transparent)]
    Statement(#[from] AttestationError),
    /// `none` or self attestation: there is no certificate chain to trust.
    #[error("the key gave {fmt} attestation without a certificate chain")]
    NotAttested {
        /// The statement format.
        fmt: String,
    },
    /// The AAGUID is not in the MDS BLOB and no extra root is configured.
    #[error("AAGUID {aaguid} is not in the FIDO metadata (MDS) and no extra root is configured")]
    UnknownModel {
        /// The AAGUID, hex with dashes.
        aaguid: String,
    },
    /// The model's latest MDS status says its keys must not be trusted.
    #[error("AAGUID {aaguid} has MDS status {status}")]
    Compromised {
        /// The AAGUID, hex with dashes.
        aaguid: String,
        /// The status.
        status: String,
    },
    /// The chain does not validate to a root for the AAGUID at the given time (wrong
    /// root, expired or not-yet-valid certificate, bad signature, CA constraints).
    #[error("attestation certificate chain: {reason}")]
    ChainInvalid {
        /// OpenSSL's reason.
        reason: String,
    },
    /// A certificate (in the chain or as a root) is not DER X.509.
    #[error("{what}: {reason}")]
    Certificate {
        /// Which certificate.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Extra roots could not be read (not PEM certificates, or too many).
    #[error("extra attestation roots: {0}")]
    ExtraRoots(String),
}

/// Where a trusted attestation's root came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustSource {
    /// A root the MDS BLOB lists for the AAGUID.
    Mds,
    /// One of the operator's extra roots (the model may not be in MDS).
    ExtraRoot,
}

/// A verified, trusted attestation.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TrustedAttestation {
    /// The statement format.
    pub fmt: String,
    /// The AAGUID in authData.
    pub aaguid: [u8; 16],
    /// The certificate chain, leaf first (DER).
    pub chain: Vec<Vec<u8>>,
    /// Where the root came from.
    pub source: TrustSource,
    /// The MDS description of the model, if listed.
    pub description: Option<String>,
}

/// Roots for attestation: a verified MDS BLOB and/or extra roots.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustStore {
    mds: Option<MdsBlob>,
    extra_roots: Vec<Vec<u8>>,
}

pub use crate::aaguid::format_aaguid;

/// Reads PEM certificates (`-----BEGIN CERTIFICATE-----`) into DER.
pub fn pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, TrustError> {
    let bad = |e: openssl::error::ErrorStack| TrustError::ExtraRoots(e.to_string());
    let certs = openssl::x509::X509::stack_from_pem(pem).map_err(bad)?;
    if certs.is_empty() {
        return Err(TrustError::ExtraRoots("no PEM certificate found".into()));
    }
    if certs.len() > MAX_EXTRA_ROOTS {
        return Err(TrustError::ExtraRoots(format!(
            "{} certificates; at most {MAX_EXTRA_ROOTS}",
            certs.len()
        )));
    }
    certs.iter().map(|c| c.to_der().map_err(bad)).collect()
}

impl TrustStore {
    /// A store from a verified BLOB (if any) and extra roots (DER).
    pub fn new(mds: Option<MdsBlob>, extra_roots: Vec<Vec<u8>>) -> Result<TrustStore, TrustError> {
        if extra_roots.len() > MAX_EXTRA_ROOTS {
            return Err(TrustError::ExtraRoots(format!(
                "{} certificates; at most {MAX_EXTRA_ROOTS}",
                extra_roots.len()
            )));
        }
        for der in &extra_roots {
            openssl::x509::X509::from_der(der).map_err(|e| TrustError::Certificate {
                what: "extra root",
                reason: e.to_string(),
            })?;
        }
        Ok(TrustStore { mds, extra_roots })
    }

    /// The MDS BLOB, if one is loaded.
    pub fn mds(&self) -> Option<&MdsBlob> {
        self.mds.as_ref()
    }

    /// Whether a key of model `aaguid` can be trusted at all: it is in the BLOB with a
    /// good status, or an extra root is configured. (What pre-flight predicts before
    /// makeCredential; [`TrustStore::verify`] decides afterwards.)
    pub fn knows(&self, aaguid: &[u8; 16]) -> bool {
        let listed = self
            .mds
            .as_ref()
            .and_then(|m| m.entry(aaguid))
            .is_some_and(|e| !e.compromised() && !e.roots.is_empty());
        listed || !self.extra_roots.is_empty()
    }

    /// Whether the BLOB lists `aaguid` with a good status.
    pub fn in_mds(&self, aaguid: &[u8; 16]) -> bool {
        self.mds
            .as_ref()
            .and_then(|m| m.entry(aaguid))
            .is_some_and(|e| !e.compromised())
    }

    /// Verifies `attestation` for `client_data_hash` at `now` (Unix seconds): see the
    /// module docs for the checks.
    pub fn verify(
        &self,
        attestation: &AttestationObject,
        client_data_hash: &[u8; 32],
        now: u64,
    ) -> Result<TrustedAttestation, TrustError> {
        let v = attestation.verify(client_data_hash)?;
        let AttestationType::BasicOrAttCa { chain } = v.attestation_type else {
            return Err(TrustError::NotAttested { fmt: v.fmt });
        };
        let aaguid_text = format_aaguid(&v.aaguid);
        let entry = self.mds.as_ref().and_then(|m| m.entry(&v.aaguid));
        if let Some(e) = entry {
            if let Some(status) = e.status.as_ref().filter(|_| e.compromised()) {
                return Err(TrustError::Compromised {
                    aaguid: aaguid_text,
                    status: status.clone(),
                });
            }
        }
        let mds_roots = entry.map(|e| e.roots.as_slice()).unwrap_or_default();
        if mds_roots.is_empty() && self.extra_roots.is_empty() {
            return Err(TrustError::UnknownModel {
                aaguid: aaguid_text,
            });
        }
        // MDS roots first: they bind the root to the model.
        let mds_result = if mds_roots.is_empty() {
            None
        } else {
            Some(chain::verify_path(&chain, mds_roots, now))
        };
        let source = match mds_result {
            Some(Ok(())) => TrustSource::Mds,
            other => {
                if self.extra_roots.is_empty() {
                    return Err(other
                        .and_then(Result::err)
                        .unwrap_or(TrustError::UnknownModel {
                            aaguid: aaguid_text,
                        }));
                }
                match chain::verify_path(&chain, &self.extra_roots, now) {
                    Ok(()) => TrustSource::ExtraRoot,
                    // Report the MDS failure when there was one: it is the more telling.
                    Err(e) => return Err(other.and_then(Result::err).unwrap_or(e)),
                }
            }
        };
        Ok(TrustedAttestation {
            fmt: v.fmt,
            aaguid: v.aaguid,
            chain,
            source,
            description: entry.and_then(|e| e.description.clone()),
        })
    }
}

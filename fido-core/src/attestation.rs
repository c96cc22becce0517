//! Attestation objects and their verification (`packed`, `fido-u2f`, `tpm`, `none`),
//! assertion signature checks, and the generator side a software authenticator uses.
//!
//! Verification here proves that the attestation statement is internally consistent:
//! the signature verifies with the attestation key and, for `packed` with `x5c`, the leaf
//! certificate meets the WebAuthn requirements. It does **not** validate the certificate
//! chain up to a root: trust anchors (e.g. from the FIDO Metadata Service) belong to the
//! caller, who gets the chain as DER in [`AttestationType::BasicOrAttCa`].
//!
//! ```
//! use fido_core::attestation::{none_att_stmt, AttestationObject, AttestationType};
//! use fido_core::authdata::{rp_id_hash, AttestedCredentialData, AuthDataFlags, AuthenticatorData};
//! use fido_core::clientdata::{ClientDataType, CollectedClientData};
//! use fido_core::cose::{CoseKey, ALG_ES256};
//!
//! // What a software authenticator produces...
//! let key = CoseKey::Ec2 { alg: ALG_ES256, x: [1; 32], y: [2; 32] };
//! let credential = AttestedCredentialData::new([0; 16], vec![7; 16], key)?;
//! let auth_data = AuthenticatorData::new(rp_id_hash("login.microsoft.com"), AuthDataFlags::UP, 0)
//!     .with_attested_credential(credential)
//!     .to_bytes();
//! let object = AttestationObject::from_parts("none", &auth_data, &none_att_stmt())?;
//!
//! // ...and what a relying party checks.
//! let client_data = CollectedClientData::new(
//!     ClientDataType::Create, vec![9; 32], "https://login.microsoft.com");
//! let parsed = AttestationObject::from_cbor(&object.to_cbor())?;
//! let verified = parsed.verify(&client_data.hash())?;
//! assert_eq!(verified.attestation_type, AttestationType::None);
//! assert!(verified.auth_data.is_for_rp_id("login.microsoft.com"));
//! # Ok::<(), fido_core::Error>(())
//! ```

use crate::authdata::{AuthDataError, AuthenticatorData};
use crate::cbor::{self, CborError, Limits, Value};
use crate::cose::{CoseError, CoseKey, ALG_EDDSA, ALG_ES256, ALG_PS256, ALG_RS256};
use crate::verify::{default_verifier, SignatureVerifier};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Tag, Tagged};

mod tpm;
#[cfg(feature = "verify-rustcrypto")]
pub(crate) use tpm::sha1;
pub use tpm::ALG_RS1;

/// Attestation statement format `packed`.
pub const FMT_PACKED: &str = "packed";
/// Attestation statement format `fido-u2f`.
pub const FMT_FIDO_U2F: &str = "fido-u2f";
/// Attestation statement format `none`.
pub const FMT_NONE: &str = "none";
/// Attestation statement format `tpm`.
pub const FMT_TPM: &str = "tpm";

/// Most certificates accepted in an `x5c` array.
const MAX_X5C: usize = 8;

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_FIDO_AAGUID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.45724.1.1.4");

/// What is wrong with an attestation object, statement or assertion.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// The authenticator data is malformed.
    #[error(transparent)]
    AuthData(#[from] AuthDataError),
    /// The attestation object or statement is malformed CBOR or has a wrongly typed field.
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// The authenticator data has no attested credential data (AT flag clear).
    #[error("authenticator data carries no attested credential data")]
    NoAttestedCredential,
    /// The attestation statement format is not one this crate verifies.
    #[error("attestation format {0:?} is not supported")]
    UnsupportedFormat(String),
    /// `packed` self attestation whose `alg` differs from the credential key's.
    #[error("attestation alg {statement} does not match the credential key alg {credential}")]
    AlgorithmMismatch {
        /// `attStmt.alg`.
        statement: i64,
        /// The credential public key's `alg`.
        credential: i64,
    },
    /// `attStmt.alg` does not fit the attestation certificate's key type.
    #[error("attestation alg {statement} does not fit the certificate key (alg {certificate})")]
    CertificateAlgorithmMismatch {
        /// `attStmt.alg`.
        statement: i64,
        /// The algorithm the certificate key supports.
        certificate: i64,
    },
    /// The signature does not verify, or the key cannot verify it.
    #[error("attestation signature: {0}")]
    Signature(CoseError),
    /// An `x5c` certificate cannot be parsed or its key is not supported.
    #[error("attestation certificate {index}: {reason}")]
    Certificate {
        /// Position in `x5c` (0 is the leaf).
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The leaf certificate breaks a WebAuthn attestation-certificate requirement.
    #[error("attestation certificate requirement not met: {0}")]
    CertificateRequirement(String),
    /// The certificate's AAGUID extension differs from the AAGUID in authData.
    #[error("certificate AAGUID {certificate:02x?} differs from authenticator data AAGUID {auth_data:02x?}")]
    AaguidMismatch {
        /// AAGUID in the certificate extension.
        certificate: [u8; 16],
        /// AAGUID in the attested credential data.
        auth_data: [u8; 16],
    },
    /// A `none` attestation statement that is not an empty map.
    #[error("attestation format none requires an empty attStmt")]
    NoneStatementNotEmpty,
    /// `x5c` is present but empty, or holds more certificates than accepted.
    #[error("attStmt.x5c holds {count} certificates (1 to 8 accepted)")]
    BadCertificateCount {
        /// Number of certificates found.
        count: usize,
    },
    /// `fido-u2f` requires exactly one certificate and a P-256 credential key.
    #[error("fido-u2f: {0}")]
    U2fRequirement(&'static str),
    /// ECDAA attestation (`ecdaaKeyId`) was removed from WebAuthn and is not supported.
    #[error("ECDAA attestation is not supported")]
    EcdaaNotSupported,
    /// A TPM structure (`certInfo` or `pubArea`) is truncated or malformed.
    #[error("tpm: {structure}.{field} is truncated or malformed")]
    TpmMalformed {
        /// `certInfo` or `pubArea`.
        structure: &'static str,
        /// The field being read.
        field: &'static str,
    },
    /// A `tpm` statement check failed (named in the message).
    #[error("tpm: {0}")]
    TpmCheckFailed(&'static str),
}

/// How much of the leaf certificate to check for `packed` attestation with `x5c`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificatePolicy {
    /// The WebAuthn §8.2.1 requirements: X.509 v3, subject OU "Authenticator
    /// Attestation", basicConstraints CA false (an absent extension means CA false),
    /// and a matching, non-critical AAGUID extension when present.
    #[default]
    Strict,
    /// Only the signature (and a present AAGUID extension) is checked; for old
    /// authenticators whose U2F-era certificates predate those requirements.
    /// (For `tpm` the AIK certificate checks are skipped likewise.)
    SignatureOnly,
}

/// The kind of attestation that was verified.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttestationType {
    /// `none`: no attestation.
    None,
    /// Self attestation: signed with the credential key itself.
    Self_,
    /// Basic or AttCA attestation (telling them apart needs trust anchors): the
    /// certificate chain as DER, leaf first. Not validated against any root.
    BasicOrAttCa {
        /// `x5c`, leaf first.
        chain: Vec<Vec<u8>>,
    },
}

/// The result of a successful [`AttestationObject::verify`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VerifiedAttestation {
    /// The statement format.
    pub fmt: String,
    /// The attestation type, with the certificate chain when there is one.
    pub attestation_type: AttestationType,
    /// The authenticator model's AAGUID.
    pub aaguid: [u8; 16],
    /// The new credential's id.
    pub credential_id: Vec<u8>,
    /// The new credential's public key.
    pub public_key: CoseKey,
    /// The parsed authenticator data.
    pub auth_data: AuthenticatorData,
}

/// An attestation object: format, authenticator data (parsed and raw) and statement.
#[derive(Clone, Debug, PartialEq)]
pub struct AttestationObject {
    fmt: String,
    auth_data: AuthenticatorData,
    auth_data_bytes: Vec<u8>,
    att_stmt: Value,
    /// The key returned an enterprise attestation (CTAP makeCredential `epAtt`).
    ep_att: bool,
}

impl AttestationObject {
    /// Builds an attestation object from the parts of a CTAP makeCredential response.
    pub fn from_parts(
        fmt: &str,
        auth_data: &[u8],
        att_stmt: &Value,
    ) -> Result<Self, AttestationError> {
        att_stmt.as_map("attStmt")?;
        let parsed = AuthenticatorData::parse(auth_data)?;
        Ok(AttestationObject {
            fmt: fmt.to_owned(),
            auth_data: parsed,
            auth_data_bytes: auth_data.to_vec(),
            att_stmt: att_stmt.clone(),
            ep_att: false,
        })
    }

    /// The same attestation object, marked as an enterprise attestation (the key's
    /// makeCredential response said `epAtt: true`) or not.
    #[must_use]
    pub fn with_enterprise_attestation(mut self, ep_att: bool) -> Self {
        self.ep_att = ep_att;
        self
    }

    /// The key returned an enterprise attestation (`epAtt`): the attestation certificate
    /// is the key's own, not its model batch's, so its serial identifies the key.
    pub fn enterprise_attestation(&self) -> bool {
        self.ep_att
    }

    /// The serial number of the leaf attestation certificate (`x5c[0]`, big-endian as
    /// DER carries it); `None` without `x5c` (self or `none` attestation) or when the
    /// certificate does not parse. Only an enterprise attestation's certificate is the
    /// key's own: a batch certificate is shared by every key of the batch.
    pub fn leaf_certificate_serial(&self) -> Option<Vec<u8>> {
        let x5c = self.att_stmt.as_map("attStmt").ok()?.get_text("x5c")?;
        let leaf = read_x5c(x5c).ok()?.into_iter().next()?;
        let cert = parse_cert(&leaf, 0).ok()?;
        Some(cert.tbs_certificate.serial_number.as_bytes().to_vec())
    }

    /// Reads a CTAP authenticatorMakeCredential response map (keys 1 fmt, 2 authData,
    /// 3 attStmt).
    pub fn from_ctap_response(response: &Value) -> Result<Self, AttestationError> {
        let m = response.as_map("makeCredential response")?;
        let fmt = m
            .require_int(1, "makeCredential.fmt")?
            .as_text("makeCredential.fmt")?;
        let auth_data = m
            .require_int(2, "makeCredential.authData")?
            .as_bytes("makeCredential.authData")?;
        let att_stmt = m.require_int(3, "makeCredential.attStmt")?;
        let ep_att = match m.get_int(4) {
            Some(v) => v.as_bool("makeCredential.epAtt")?,
            None => false,
        };
        Ok(Self::from_parts(fmt, auth_data, att_stmt)?.with_enterprise_attestation(ep_att))
    }

    /// Reads a WebAuthn attestationObject (CBOR map with `fmt`, `attStmt`, `authData`).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, AttestationError> {
        let value = cbor::decode_with(bytes, Limits::RESPONSE)?;
        let m = value.as_map("attestationObject")?;
        let fmt = m
            .require_text("fmt", "attestationObject.fmt")?
            .as_text("attestationObject.fmt")?;
        let auth_data = m
            .require_text("authData", "attestationObject.authData")?
            .as_bytes("attestationObject.authData")?;
        let att_stmt = m.require_text("attStmt", "attestationObject.attStmt")?;
        let ep_att = match m.get_text("epAtt") {
            Some(v) => v.as_bool("attestationObject.epAtt")?,
            None => false,
        };
        Ok(Self::from_parts(fmt, auth_data, att_stmt)?.with_enterprise_attestation(ep_att))
    }

    /// The CTAP authenticatorMakeCredential response map (1 fmt, 2 authData,
    /// 3 attStmt, and 4 epAtt when it is an enterprise attestation), as a software
    /// authenticator answers.
    pub fn to_ctap_response(&self) -> Value {
        let mut m = vec![
            (Value::from(1u8), Value::from(self.fmt.as_str())),
            (Value::from(2u8), Value::from(self.auth_data_bytes.clone())),
            (Value::from(3u8), self.att_stmt.clone()),
        ];
        if self.ep_att {
            m.push((Value::from(4u8), Value::from(true)));
        }
        Value::map(m)
    }

    /// The WebAuthn attestationObject CBOR (canonical); an enterprise attestation
    /// also carries `epAtt: true` (WebAuthn Level 3).
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut m = vec![
            ("fmt", Value::from(self.fmt.as_str())),
            ("attStmt", self.att_stmt.clone()),
            ("authData", Value::from(self.auth_data_bytes.clone())),
        ];
        if self.ep_att {
            m.push(("epAtt", Value::from(true)));
        }
        cbor::encode(&Value::map(m))
    }

    /// The statement format.
    pub fn fmt(&self) -> &str {
        &self.fmt
    }

    /// The parsed authenticator data.
    pub fn auth_data(&self) -> &AuthenticatorData {
        &self.auth_data
    }

    /// The authenticator data exactly as received (what the signature covers).
    pub fn auth_data_bytes(&self) -> &[u8] {
        &self.auth_data_bytes
    }

    /// The attestation statement.
    pub fn att_stmt(&self) -> &Value {
        &self.att_stmt
    }

    /// Verifies the statement with [`CertificatePolicy::Strict`]. See the module docs
    /// for what is and is not checked. The RP id hash, flags (UP/UV) and counter are the
    /// caller's to check against its policy ([`AuthenticatorData::is_for_rp_id`]).
    ///
    /// `tpm` checks (WebAuthn §8.3): `ver` "2.0", pubArea key equals the credential key,
    /// certInfo magic/type, attested name = nameAlg || H(pubArea), signature over certInfo
    /// with the AIK certificate (ES256, RS256 or RS1), AIK certificate v3 / empty subject /
    /// subjectAltName present (its TPM manufacturer fields are not interpreted) / EKU
    /// tcg-kp-AIKCertificate / not a CA / AAGUID, and extraData = H(authData || cdh).
    pub fn verify(
        &self,
        client_data_hash: &[u8; 32],
    ) -> Result<VerifiedAttestation, AttestationError> {
        self.verify_with(client_data_hash, CertificatePolicy::Strict)
    }

    /// Verifies the statement with the given leaf-certificate policy.
    pub fn verify_with(
        &self,
        client_data_hash: &[u8; 32],
        policy: CertificatePolicy,
    ) -> Result<VerifiedAttestation, AttestationError> {
        self.verify_using(client_data_hash, policy, default_verifier())
    }

    /// [`verify_with`](Self::verify_with), checking signatures with the given backend.
    pub fn verify_using(
        &self,
        client_data_hash: &[u8; 32],
        policy: CertificatePolicy,
        verifier: &dyn SignatureVerifier,
    ) -> Result<VerifiedAttestation, AttestationError> {
        let acd = self
            .auth_data
            .attested_credential()
            .ok_or(AttestationError::NoAttestedCredential)?;
        let stmt = self.att_stmt.as_map("attStmt")?;
        let attestation_type = match self.fmt.as_str() {
            FMT_NONE => {
                if !stmt.entries().is_empty() {
                    return Err(AttestationError::NoneStatementNotEmpty);
                }
                AttestationType::None
            }
            FMT_PACKED => {
                if stmt.get_text("ecdaaKeyId").is_some() {
                    return Err(AttestationError::EcdaaNotSupported);
                }
                let alg = stmt
                    .require_text("alg", "attStmt.alg")?
                    .as_i64("attStmt.alg")?;
                let sig = stmt
                    .require_text("sig", "attStmt.sig")?
                    .as_bytes("attStmt.sig")?;
                let signed = signed_data(&self.auth_data_bytes, client_data_hash);
                match stmt.get_text("x5c") {
                    None => {
                        let key = acd.public_key();
                        if key.alg() != alg {
                            return Err(AttestationError::AlgorithmMismatch {
                                statement: alg,
                                credential: key.alg(),
                            });
                        }
                        key.verify_using(verifier, &signed, sig)
                            .map_err(AttestationError::Signature)?;
                        AttestationType::Self_
                    }
                    Some(x5c) => {
                        let chain = read_x5c(x5c)?;
                        let leaf_der = chain
                            .first()
                            .ok_or(AttestationError::BadCertificateCount { count: 0 })?;
                        let leaf = parse_cert(leaf_der, 0)?;
                        // The rest of the chain is the caller's to validate, but it
                        // must at least be certificates.
                        for (index, der) in chain.iter().enumerate().skip(1) {
                            parse_cert(der, index)?;
                        }
                        let key = cert_key(&leaf, alg, 0)?;
                        key.verify_using(verifier, &signed, sig)
                            .map_err(AttestationError::Signature)?;
                        check_packed_leaf(&leaf, acd.aaguid(), policy)?;
                        AttestationType::BasicOrAttCa { chain }
                    }
                }
            }
            FMT_FIDO_U2F => {
                let sig = stmt
                    .require_text("sig", "attStmt.sig")?
                    .as_bytes("attStmt.sig")?;
                let chain = read_x5c(stmt.require_text("x5c", "attStmt.x5c")?)?;
                let [leaf_der] = chain.as_slice() else {
                    return Err(AttestationError::U2fRequirement(
                        "x5c must hold exactly one certificate",
                    ));
                };
                let leaf = parse_cert(leaf_der, 0)?;
                let key = cert_key(&leaf, ALG_ES256, 0)?;
                if !matches!(key, CoseKey::Ec2 { .. }) {
                    return Err(AttestationError::U2fRequirement(
                        "certificate key must be P-256",
                    ));
                }
                let data = u2f_verification_data(
                    self.auth_data.rp_id_hash(),
                    client_data_hash,
                    acd.credential_id(),
                    acd.public_key(),
                )?;
                key.verify_using(verifier, &data, sig)
                    .map_err(AttestationError::Signature)?;
                AttestationType::BasicOrAttCa { chain }
            }
            FMT_TPM => tpm::verify(
                stmt,
                &self.auth_data_bytes,
                client_data_hash,
                acd,
                policy,
                verifier,
            )?,
            other => return Err(AttestationError::UnsupportedFormat(other.to_owned())),
        };
        Ok(VerifiedAttestation {
            fmt: self.fmt.clone(),
            attestation_type,
            aaguid: acd.aaguid(),
            credential_id: acd.credential_id().to_vec(),
            public_key: acd.public_key().clone(),
            auth_data: self.auth_data.clone(),
        })
    }
}

/// What `packed` and assertion signatures cover: `authData || clientDataHash`.
pub fn signed_data(auth_data: &[u8], client_data_hash: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(auth_data.len() + 32);
    m.extend_from_slice(auth_data);
    m.extend_from_slice(client_data_hash);
    m
}

/// What a `fido-u2f` signature covers:
/// `0x00 || rpIdHash || clientDataHash || credentialId || 0x04 || x || y`.
/// The credential key must be a P-256 EC2 key.
pub fn u2f_verification_data(
    rp_id_hash: &[u8; 32],
    client_data_hash: &[u8; 32],
    credential_id: &[u8],
    credential_key: &CoseKey,
) -> Result<Vec<u8>, AttestationError> {
    let CoseKey::Ec2 { x, y, .. } = credential_key else {
        return Err(AttestationError::U2fRequirement(
            "credential key must be P-256",
        ));
    };
    let mut d = Vec::with_capacity(1 + 32 + 32 + credential_id.len() + 65);
    d.push(0x00);
    d.extend_from_slice(rp_id_hash);
    d.extend_from_slice(client_data_hash);
    d.extend_from_slice(credential_id);
    d.push(0x04);
    d.extend_from_slice(x);
    d.extend_from_slice(y);
    Ok(d)
}

/// Verifies a getAssertion signature over `authData || clientDataHash` with the
/// credential's public key and returns the parsed authenticator data. The caller still
/// checks the RP id hash, flags and counter against its policy.
pub fn verify_assertion(
    public_key: &CoseKey,
    auth_data: &[u8],
    client_data_hash: &[u8; 32],
    signature: &[u8],
) -> Result<AuthenticatorData, AttestationError> {
    verify_assertion_using(
        default_verifier(),
        public_key,
        auth_data,
        client_data_hash,
        signature,
    )
}

/// [`verify_assertion`] with the given signature backend.
pub fn verify_assertion_using(
    verifier: &dyn SignatureVerifier,
    public_key: &CoseKey,
    auth_data: &[u8],
    client_data_hash: &[u8; 32],
    signature: &[u8],
) -> Result<AuthenticatorData, AttestationError> {
    let parsed = AuthenticatorData::parse(auth_data)?;
    public_key
        .verify_using(
            verifier,
            &signed_data(auth_data, client_data_hash),
            signature,
        )
        .map_err(AttestationError::Signature)?;
    Ok(parsed)
}

/// A `packed` attestation statement: `{alg, sig}` for self attestation, plus `x5c`
/// (DER certificates, leaf first) for basic attestation. `sig` is the signature over
/// [`signed_data`].
pub fn packed_att_stmt(alg: i64, sig: &[u8], x5c: Option<&[Vec<u8>]>) -> Value {
    let mut entries = vec![
        (Value::from("alg"), Value::from(alg)),
        (Value::from("sig"), Value::from(sig)),
    ];
    if let Some(certs) = x5c {
        entries.push((
            Value::from("x5c"),
            Value::Array(certs.iter().map(|c| Value::from(c.as_slice())).collect()),
        ));
    }
    Value::Map(entries)
}

/// A `fido-u2f` attestation statement: `{sig, x5c: [cert]}`; `sig` is over
/// [`u2f_verification_data`].
pub fn fido_u2f_att_stmt(sig: &[u8], certificate: &[u8]) -> Value {
    Value::map([
        ("sig", Value::from(sig)),
        ("x5c", Value::Array(vec![Value::from(certificate)])),
    ])
}

/// The `none` attestation statement: an empty map.
pub fn none_att_stmt() -> Value {
    Value::Map(Vec::new())
}

fn read_x5c(value: &Value) -> Result<Vec<Vec<u8>>, AttestationError> {
    let certs = value.as_array("attStmt.x5c")?;
    if certs.is_empty() || certs.len() > MAX_X5C {
        return Err(AttestationError::BadCertificateCount { count: certs.len() });
    }
    certs
        .iter()
        .map(|c| Ok(c.as_bytes("attStmt.x5c")?.to_vec()))
        .collect()
}

fn parse_cert(der: &[u8], index: usize) -> Result<x509_cert::Certificate, AttestationError> {
    x509_cert::Certificate::from_der(der).map_err(|e| AttestationError::Certificate {
        index,
        reason: format!("not a DER X.509 certificate: {e}"),
    })
}

/// The certificate's subject public key as a COSE key with the statement's `alg`.
fn cert_key(
    cert: &x509_cert::Certificate,
    alg: i64,
    index: usize,
) -> Result<CoseKey, AttestationError> {
    let bad = |reason: String| AttestationError::Certificate { index, reason };
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let key_bytes = spki.subject_public_key.raw_bytes();
    let oid = spki.algorithm.oid;
    let key = if oid == OID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if curve == Some(OID_P384) {
            let point = p384::PublicKey::from_sec1_bytes(key_bytes)
                .map_err(|_| bad("EC point is not a valid P-384 point".into()))?;
            let encoded =
                p384::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&point, false);
            let x = encoded
                .x()
                .and_then(|c| <[u8; 48]>::try_from(c.as_slice()).ok());
            let y = encoded
                .y()
                .and_then(|c| <[u8; 48]>::try_from(c.as_slice()).ok());
            return match (x, y) {
                (Some(x), Some(y)) => expect_alg(CoseKey::Ec2P384 { alg, x, y }, alg),
                _ => Err(bad("EC point has no coordinates".into())),
            };
        }
        if curve != Some(OID_P256) {
            return Err(bad("EC key is not on P-256 or P-384".into()));
        }
        let point = p256::PublicKey::from_sec1_bytes(key_bytes)
            .map_err(|_| bad("EC point is not a valid P-256 point".into()))?;
        let encoded = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&point, false);
        let x = encoded
            .x()
            .and_then(|c| <[u8; 32]>::try_from(c.as_slice()).ok());
        let y = encoded
            .y()
            .and_then(|c| <[u8; 32]>::try_from(c.as_slice()).ok());
        match (x, y) {
            (Some(x), Some(y)) => CoseKey::Ec2 { alg, x, y },
            _ => return Err(bad("EC point has no coordinates".into())),
        }
    } else if oid == OID_RSA {
        use rsa::pkcs1::DecodeRsaPublicKey;
        use rsa::traits::PublicKeyParts;
        let k = rsa::RsaPublicKey::from_pkcs1_der(key_bytes)
            .map_err(|e| bad(format!("RSA key: {e}")))?;
        CoseKey::Rsa {
            alg,
            n: k.n().to_bytes_be(),
            e: k.e().to_bytes_be(),
        }
    } else if oid == OID_ED25519 {
        let x = <[u8; 32]>::try_from(key_bytes)
            .map_err(|_| bad("Ed25519 key is not 32 bytes".into()))?;
        CoseKey::Okp { alg, x }
    } else {
        return Err(bad(format!("public key algorithm {oid} is not supported")));
    };
    expect_alg(key, alg)
}

/// `key` when the statement's `alg` is the one its type signs with.
fn expect_alg(key: CoseKey, alg: i64) -> Result<CoseKey, AttestationError> {
    let expected = match &key {
        CoseKey::Ec2 { .. } => ALG_ES256,
        CoseKey::Ec2P384 { .. } => crate::cose::ALG_ES384,
        CoseKey::Okp { .. } => ALG_EDDSA,
        CoseKey::Rsa { .. } if alg == ALG_PS256 => ALG_PS256,
        CoseKey::Rsa { .. } => ALG_RS256,
    };
    if alg != expected {
        return Err(AttestationError::CertificateAlgorithmMismatch {
            statement: alg,
            certificate: expected,
        });
    }
    Ok(key)
}

fn check_packed_leaf(
    cert: &x509_cert::Certificate,
    aaguid: [u8; 16],
    policy: CertificatePolicy,
) -> Result<(), AttestationError> {
    let tbs = &cert.tbs_certificate;
    let extensions = tbs.extensions.as_deref().unwrap_or_default();
    // The AAGUID extension is checked under every policy: a mismatch is never benign.
    if let Some(ext) = extensions.iter().find(|e| e.extn_id == OID_FIDO_AAGUID) {
        if ext.critical {
            return Err(AttestationError::CertificateRequirement(
                "AAGUID extension must not be critical".into(),
            ));
        }
        let inner = OctetString::from_der(ext.extn_value.as_bytes()).map_err(|_| {
            AttestationError::CertificateRequirement(
                "AAGUID extension is not an OCTET STRING".into(),
            )
        })?;
        let cert_aaguid = <[u8; 16]>::try_from(inner.as_bytes()).map_err(|_| {
            AttestationError::CertificateRequirement(format!(
                "AAGUID extension holds {} bytes, not 16",
                inner.as_bytes().len()
            ))
        })?;
        if cert_aaguid != aaguid {
            return Err(AttestationError::AaguidMismatch {
                certificate: cert_aaguid,
                auth_data: aaguid,
            });
        }
    }
    if policy == CertificatePolicy::SignatureOnly {
        return Ok(());
    }
    if tbs.version != x509_cert::Version::V3 {
        return Err(AttestationError::CertificateRequirement(format!(
            "certificate is X.509 {:?}, not V3",
            tbs.version
        )));
    }
    let has_ou = tbs
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .any(|atv| {
            atv.oid == OID_OU
                && matches!(
                    atv.value.tag(),
                    Tag::Utf8String | Tag::PrintableString | Tag::Ia5String
                )
                && atv.value.value() == b"Authenticator Attestation"
        });
    if !has_ou {
        return Err(AttestationError::CertificateRequirement(
            "subject OU is not \"Authenticator Attestation\"".into(),
        ));
    }
    if let Some(ext) = extensions
        .iter()
        .find(|e| e.extn_id == OID_BASIC_CONSTRAINTS)
    {
        let bc = x509_cert::ext::pkix::BasicConstraints::from_der(ext.extn_value.as_bytes())
            .map_err(|_| {
                AttestationError::CertificateRequirement("malformed basicConstraints".into())
            })?;
        if bc.ca {
            return Err(AttestationError::CertificateRequirement(
                "basicConstraints CA must be false".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authdata::{AttestedCredentialData, AuthDataFlags};
    use p256::ecdsa::{signature::Signer, Signature, SigningKey};

    fn credential() -> (SigningKey, Vec<u8>) {
        let sk = SigningKey::from_slice(&[5; 32]).unwrap();
        let p = sk.verifying_key().to_encoded_point(false);
        let key = CoseKey::Ec2 {
            alg: ALG_ES256,
            x: p.x().unwrap().as_slice().try_into().unwrap(),
            y: p.y().unwrap().as_slice().try_into().unwrap(),
        };
        let acd = AttestedCredentialData::new([9; 16], vec![1, 2, 3], key).unwrap();
        let ad = AuthenticatorData::new([4; 32], AuthDataFlags::UP, 0)
            .with_attested_credential(acd)
            .to_bytes();
        (sk, ad)
    }

    #[test]
    fn packed_statement_shape() {
        let stmt = packed_att_stmt(ALG_ES256, &[1, 2], None);
        let m = stmt.as_map("s").unwrap();
        assert_eq!(m.entries().len(), 2);
        assert_eq!(m.get_text("alg"), Some(&Value::from(ALG_ES256)));
        let stmt = packed_att_stmt(ALG_ES256, &[1, 2], Some(&[vec![3]]));
        let x5c = stmt.as_map("s").unwrap().get_text("x5c").cloned();
        assert_eq!(x5c, Some(Value::Array(vec![Value::from(vec![3u8])])));
        assert_eq!(none_att_stmt(), Value::Map(Vec::new()));
    }

    #[test]
    fn self_attestation_through_ctap_response() {
        let (sk, ad) = credential();
        let cdh = [8; 32];
        let sig: Signature = sk.sign(&signed_data(&ad, &cdh));
        let stmt = packed_att_stmt(ALG_ES256, sig.to_der().as_bytes(), None);
        let obj = AttestationObject::from_parts(FMT_PACKED, &ad, &stmt).unwrap();
        let back = AttestationObject::from_ctap_response(&obj.to_ctap_response()).unwrap();
        assert_eq!(back, obj);
        let v = back.verify(&cdh).unwrap();
        assert_eq!(v.attestation_type, AttestationType::Self_);
        assert_eq!(v.credential_id, vec![1, 2, 3]);
        assert_eq!(v.aaguid, [9; 16]);
    }

    #[test]
    fn statement_must_be_a_map() {
        let (_, ad) = credential();
        assert!(matches!(
            AttestationObject::from_parts(FMT_NONE, &ad, &Value::Array(vec![])),
            Err(AttestationError::Cbor(CborError::WrongType { .. }))
        ));
    }

    #[test]
    fn packed_missing_sig_is_named() {
        let (_, ad) = credential();
        let stmt = Value::map([("alg", Value::from(ALG_ES256))]);
        let obj = AttestationObject::from_parts(FMT_PACKED, &ad, &stmt).unwrap();
        assert_eq!(
            obj.verify(&[0; 32]),
            Err(AttestationError::Cbor(CborError::MissingField {
                field: "attStmt.sig"
            }))
        );
        let stmt = Value::map([
            ("alg", Value::from(ALG_ES256)),
            ("sig", Value::from(vec![0u8])),
            ("ecdaaKeyId", Value::from(vec![0u8])),
        ]);
        let obj = AttestationObject::from_parts(FMT_PACKED, &ad, &stmt).unwrap();
        assert_eq!(
            obj.verify(&[0; 32]),
            Err(AttestationError::EcdaaNotSupported)
        );
    }

    #[test]
    fn u2f_data_needs_ec2_key() {
        let key = CoseKey::Okp {
            alg: ALG_EDDSA,
            x: [0; 32],
        };
        assert!(matches!(
            u2f_verification_data(&[0; 32], &[0; 32], &[], &key),
            Err(AttestationError::U2fRequirement(_))
        ));
    }
}

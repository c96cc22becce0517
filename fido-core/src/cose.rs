//! COSE keys (RFC 9052/9053) as CTAP uses them: ES256 (P-256), ES384 (P-384), EdDSA
//! (Ed25519), RS256, PS256, and the ECDH-ES+HKDF-256 key-agreement key of the PIN/UV auth protocols.
//! Signatures are checked by a [`SignatureVerifier`].

use crate::cbor::{self, CborError, Limits, Value};
use crate::verify::{self, PublicKeyRef, SignatureAlgorithm, SignatureVerifier, VerifyError};

/// COSE algorithm identifier for ES256 (ECDSA P-256 with SHA-256).
pub const ALG_ES256: i64 = -7;
/// COSE algorithm identifier for ES384 (ECDSA P-384 with SHA-384).
pub const ALG_ES384: i64 = -35;
/// COSE algorithm identifier for EdDSA.
pub const ALG_EDDSA: i64 = -8;
/// COSE algorithm identifier for RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
pub const ALG_RS256: i64 = -257;
/// COSE algorithm identifier for PS256 (RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt).
pub const ALG_PS256: i64 = -37;
/// COSE algorithm identifier ECDH-ES+HKDF-256, used by CTAP key agreement.
pub const ALG_ECDH_ES_HKDF_256: i64 = -25;

const KTY_OKP: i64 = 1;
const KTY_EC2: i64 = 2;
const KTY_RSA: i64 = 3;
const CRV_P256: i64 = 1;
const CRV_P384: i64 = 2;
const CRV_ED25519: i64 = 6;

/// What is wrong with a COSE key or a signature made with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoseError {
    /// The key's CBOR is malformed or a parameter has the wrong type.
    #[error("COSE key: {0}")]
    Cbor(#[from] CborError),
    /// The key type (`kty`) is not OKP, EC2 or RSA.
    #[error("COSE key type {0} is not supported")]
    UnsupportedKeyType(i64),
    /// The curve is not P-256 (EC2) or Ed25519 (OKP).
    #[error("COSE curve {0} is not supported")]
    UnsupportedCurve(i64),
    /// The algorithm is not one this crate can verify with.
    #[error("COSE algorithm {0} is not supported")]
    UnsupportedAlgorithm(i64),
    /// The key material is not a valid key (e.g. a point not on the curve).
    #[error("invalid COSE key: {0}")]
    InvalidKey(String),
    /// The signature is malformed or does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The signature bytes are not in the form the algorithm requires (e.g. not DER).
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// The RSA modulus is shorter than 2048 bits.
    #[error("RSA modulus of {bits} bits is too short (at least 2048 required)")]
    RsaKeyTooShort {
        /// The modulus length in bits.
        bits: usize,
    },
    /// Bytes follow the COSE_Key where the whole input should have been the key.
    #[error("{count} unexpected bytes after the COSE_Key")]
    TrailingBytes {
        /// How many extra bytes there are.
        count: usize,
    },
}

/// A public key in COSE_Key form.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoseKey {
    /// An elliptic-curve key with x and y coordinates (kty 2), P-256 only.
    Ec2 {
        /// The `alg` parameter (ES256, or ECDH-ES+HKDF-256 for key agreement).
        alg: i64,
        /// x coordinate, big-endian.
        x: [u8; 32],
        /// y coordinate, big-endian.
        y: [u8; 32],
    },
    /// An elliptic-curve key on P-384 (kty 2, crv 2): ES384.
    Ec2P384 {
        /// The `alg` parameter (ES384).
        alg: i64,
        /// x coordinate, big-endian.
        x: [u8; 48],
        /// y coordinate, big-endian.
        y: [u8; 48],
    },
    /// An octet key pair (kty 1), Ed25519 only.
    Okp {
        /// The `alg` parameter (EdDSA).
        alg: i64,
        /// The public key.
        x: [u8; 32],
    },
    /// An RSA key (kty 3).
    Rsa {
        /// The `alg` parameter (RS256).
        alg: i64,
        /// Modulus, big-endian.
        n: Vec<u8>,
        /// Public exponent, big-endian.
        e: Vec<u8>,
    },
}

impl CoseKey {
    /// The key's `alg`.
    pub fn alg(&self) -> i64 {
        match self {
            CoseKey::Ec2 { alg, .. }
            | CoseKey::Ec2P384 { alg, .. }
            | CoseKey::Okp { alg, .. }
            | CoseKey::Rsa { alg, .. } => *alg,
        }
    }

    /// Reads a COSE_Key from a decoded CBOR map.
    pub fn from_value(value: &Value) -> Result<CoseKey, CoseError> {
        let m = value.as_map("COSE_Key")?;
        let kty = m.require_int(1, "COSE_Key.kty")?.as_i64("COSE_Key.kty")?;
        let alg = match m.get_int(3) {
            Some(v) => v.as_i64("COSE_Key.alg")?,
            None if kty == KTY_EC2 => ALG_ECDH_ES_HKDF_256,
            None => {
                return Err(CborError::MissingField {
                    field: "COSE_Key.alg",
                }
                .into())
            }
        };
        match kty {
            KTY_EC2 => {
                let crv = m.require_int(-1, "COSE_Key.crv")?.as_i64("COSE_Key.crv")?;
                let x = m.require_int(-2, "COSE_Key.x")?;
                let y = m.require_int(-3, "COSE_Key.y")?;
                match crv {
                    CRV_P256 => Ok(CoseKey::Ec2 {
                        alg,
                        x: x.as_byte_array("COSE_Key.x")?,
                        y: y.as_byte_array("COSE_Key.y")?,
                    }),
                    CRV_P384 => Ok(CoseKey::Ec2P384 {
                        alg,
                        x: x.as_byte_array("COSE_Key.x")?,
                        y: y.as_byte_array("COSE_Key.y")?,
                    }),
                    crv => Err(CoseError::UnsupportedCurve(crv)),
                }
            }
            KTY_OKP => {
                let crv = m.require_int(-1, "COSE_Key.crv")?.as_i64("COSE_Key.crv")?;
                if crv != CRV_ED25519 {
                    return Err(CoseError::UnsupportedCurve(crv));
                }
                let x = m
                    .require_int(-2, "COSE_Key.x")?
                    .as_byte_array("COSE_Key.x")?;
                Ok(CoseKey::Okp { alg, x })
            }
            KTY_RSA => {
                let n = m.require_int(-1, "COSE_Key.n")?.as_bytes("COSE_Key.n")?;
                let e = m.require_int(-2, "COSE_Key.e")?.as_bytes("COSE_Key.e")?;
                if n.is_empty() || e.is_empty() || n.len() > 1024 || e.len() > 8 {
                    return Err(CoseError::InvalidKey(format!(
                        "RSA modulus of {} bytes / exponent of {} bytes",
                        n.len(),
                        e.len()
                    )));
                }
                Ok(CoseKey::Rsa {
                    alg,
                    n: n.to_vec(),
                    e: e.to_vec(),
                })
            }
            other => Err(CoseError::UnsupportedKeyType(other)),
        }
    }

    /// Reads a COSE_Key from CTAP2 canonical CBOR filling all of `bytes`; duplicate,
    /// unsorted or non-shortest map keys are rejected.
    pub fn from_cbor_canonical(bytes: &[u8]) -> Result<CoseKey, CoseError> {
        let (key, used) = Self::from_cbor_canonical_prefix(bytes)?;
        if used != bytes.len() {
            return Err(CoseError::TrailingBytes {
                count: bytes.len() - used,
            });
        }
        Ok(key)
    }

    /// Reads a canonical COSE_Key from the start of `bytes` (authenticator data carries
    /// more after it) and returns it with the number of bytes it used.
    pub fn from_cbor_canonical_prefix(bytes: &[u8]) -> Result<(CoseKey, usize), CoseError> {
        let (value, used) = cbor::decode_prefix_with(bytes, Limits::CANONICAL)?;
        Ok((CoseKey::from_value(&value)?, used))
    }

    /// The key in CTAP2 canonical CBOR.
    pub fn to_cbor(&self) -> Vec<u8> {
        cbor::encode(&self.to_value())
    }

    /// Verifies `signature` over `message` as WebAuthn signatures are made, with the
    /// [default backend](crate::verify::default_verifier):
    /// ES256 takes a DER-encoded ECDSA signature (the point is validated to be on P-256;
    /// high-S signatures are accepted), EdDSA a 64-byte Ed25519 signature (strict
    /// verification), RS256 a PKCS#1 v1.5 SHA-256 and PS256 a PSS SHA-256 signature with
    /// a modulus of 2048 to 4096 bits.
    ///
    /// The key's `alg` selects the algorithm; an EC2 key must say ES256 (a key-agreement
    /// key is not a signing key).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CoseError> {
        self.verify_using(verify::default_verifier(), message, signature)
    }

    /// [`verify`](Self::verify) with the given backend.
    pub fn verify_using(
        &self,
        verifier: &dyn SignatureVerifier,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CoseError> {
        let alg = self.signature_algorithm()?;
        verify::verify_signature(verifier, alg, self.verify_key(), message, signature)
            .map_err(CoseError::from)
    }

    /// The signature algorithm the key's `alg` names, if it fits the key type.
    pub fn signature_algorithm(&self) -> Result<SignatureAlgorithm, CoseError> {
        let fits = match (self, SignatureAlgorithm::from_cose(self.alg())) {
            (CoseKey::Ec2 { .. }, Some(a @ SignatureAlgorithm::Es256))
            | (CoseKey::Ec2P384 { .. }, Some(a @ SignatureAlgorithm::Es384))
            | (CoseKey::Okp { .. }, Some(a @ SignatureAlgorithm::EdDsa))
            | (
                CoseKey::Rsa { .. },
                Some(a @ (SignatureAlgorithm::Rs256 | SignatureAlgorithm::Ps256)),
            ) => Some(a),
            _ => None,
        };
        fits.ok_or(CoseError::UnsupportedAlgorithm(self.alg()))
    }

    /// The key as a [`SignatureVerifier`] takes it.
    pub fn verify_key(&self) -> PublicKeyRef<'_> {
        match self {
            CoseKey::Ec2 { x, y, .. } => PublicKeyRef::P256 { x, y },
            CoseKey::Ec2P384 { x, y, .. } => PublicKeyRef::P384 { x, y },
            CoseKey::Okp { x, .. } => PublicKeyRef::Ed25519(x),
            CoseKey::Rsa { n, e, .. } => PublicKeyRef::Rsa { n, e },
        }
    }

    /// The key as a CBOR map (canonical when encoded).
    pub fn to_value(&self) -> Value {
        match self {
            CoseKey::Ec2 { alg, x, y } => Value::map([
                (Value::from(1i64), Value::from(KTY_EC2)),
                (Value::from(3i64), Value::from(*alg)),
                (Value::from(-1i64), Value::from(CRV_P256)),
                (Value::from(-2i64), Value::from(x.to_vec())),
                (Value::from(-3i64), Value::from(y.to_vec())),
            ]),
            CoseKey::Ec2P384 { alg, x, y } => Value::map([
                (Value::from(1i64), Value::from(KTY_EC2)),
                (Value::from(3i64), Value::from(*alg)),
                (Value::from(-1i64), Value::from(CRV_P384)),
                (Value::from(-2i64), Value::from(x.to_vec())),
                (Value::from(-3i64), Value::from(y.to_vec())),
            ]),
            CoseKey::Okp { alg, x } => Value::map([
                (Value::from(1i64), Value::from(KTY_OKP)),
                (Value::from(3i64), Value::from(*alg)),
                (Value::from(-1i64), Value::from(CRV_ED25519)),
                (Value::from(-2i64), Value::from(x.to_vec())),
            ]),
            CoseKey::Rsa { alg, n, e } => Value::map([
                (Value::from(1i64), Value::from(KTY_RSA)),
                (Value::from(3i64), Value::from(*alg)),
                (Value::from(-1i64), Value::from(n.clone())),
                (Value::from(-2i64), Value::from(e.clone())),
            ]),
        }
    }
}

impl From<VerifyError> for CoseError {
    fn from(err: VerifyError) -> Self {
        match err {
            VerifyError::KeyMismatch { alg } => CoseError::UnsupportedAlgorithm(alg),
            VerifyError::InvalidKey(why) => CoseError::InvalidKey(why.into()),
            VerifyError::RsaKeyTooShort { bits } => CoseError::RsaKeyTooShort { bits },
            VerifyError::MalformedSignature(why) => CoseError::MalformedSignature(why.into()),
            VerifyError::BadSignature => CoseError::BadSignature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::{signature::Signer, SigningKey};

    fn es256_pair() -> (SigningKey, CoseKey) {
        let sk = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = sk.verifying_key().to_encoded_point(false);
        let key = CoseKey::Ec2 {
            alg: ALG_ES256,
            x: point.x().unwrap().as_slice().try_into().unwrap(),
            y: point.y().unwrap().as_slice().try_into().unwrap(),
        };
        (sk, key)
    }

    #[test]
    fn es256_verifies_and_rejects_tampering() {
        let (sk, key) = es256_pair();
        let sig: p256::ecdsa::Signature = sk.sign(b"hello");
        let der = sig.to_der();
        key.verify(b"hello", der.as_bytes()).unwrap();
        assert_eq!(
            key.verify(b"hellp", der.as_bytes()),
            Err(CoseError::BadSignature)
        );
        assert!(matches!(
            key.verify(b"hello", &sig.to_bytes()),
            Err(CoseError::MalformedSignature(_))
        ));
    }

    #[test]
    fn es256_rejects_point_off_curve_and_wrong_alg() {
        let (_, key) = es256_pair();
        let CoseKey::Ec2 { x, mut y, .. } = key else {
            unreachable!()
        };
        y[31] ^= 1;
        let bad = CoseKey::Ec2 {
            alg: ALG_ES256,
            x,
            y,
        };
        assert!(matches!(
            bad.verify(b"m", &[0x30, 0]),
            Err(CoseError::InvalidKey(_))
        ));
        let agreement = CoseKey::Ec2 {
            alg: ALG_ECDH_ES_HKDF_256,
            x,
            y,
        };
        assert_eq!(
            agreement.verify(b"m", &[]),
            Err(CoseError::UnsupportedAlgorithm(ALG_ECDH_ES_HKDF_256))
        );
    }

    #[test]
    fn eddsa_verifies() {
        use ed25519_dalek::Signer as _;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
        let key = CoseKey::Okp {
            alg: ALG_EDDSA,
            x: sk.verifying_key().to_bytes(),
        };
        let sig = sk.sign(b"msg").to_bytes();
        key.verify(b"msg", &sig).unwrap();
        assert_eq!(key.verify(b"msh", &sig), Err(CoseError::BadSignature));
        assert!(matches!(
            key.verify(b"msg", &sig[..63]),
            Err(CoseError::MalformedSignature(_))
        ));
    }

    #[test]
    fn rs256_rejects_short_modulus() {
        let key = CoseKey::Rsa {
            alg: ALG_RS256,
            n: vec![0xff; 128],
            e: vec![1, 0, 1],
        };
        assert_eq!(
            key.verify(b"m", &[0; 128]),
            Err(CoseError::RsaKeyTooShort { bits: 1024 })
        );
    }

    #[test]
    fn canonical_parse_round_trips_and_rejects_unsorted() {
        let (_, key) = es256_pair();
        let bytes = key.to_cbor();
        assert_eq!(CoseKey::from_cbor_canonical(&bytes).unwrap(), key);
        let mut extra = bytes.clone();
        extra.push(0);
        assert_eq!(
            CoseKey::from_cbor_canonical(&extra),
            Err(CoseError::TrailingBytes { count: 1 })
        );
        // {3: -7, 1: 2, ...}: alg before kty is not canonical.
        let mut unsorted = vec![0xa5, 0x03, 0x26, 0x01, 0x02];
        unsorted.extend_from_slice(&bytes[5..]);
        assert!(matches!(
            CoseKey::from_cbor_canonical(&unsorted),
            Err(CoseError::Cbor(CborError::UnsortedMapKeys { .. }))
        ));
    }
}

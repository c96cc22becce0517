//! COSE keys (RFC 9052/9053) as CTAP uses them: ES256 (P-256), EdDSA (Ed25519), RS256,
//! and the ECDH-ES+HKDF-256 key-agreement key of the PIN/UV auth protocols.

use crate::cbor::{CborError, Value};

/// COSE algorithm identifier for ES256 (ECDSA P-256 with SHA-256).
pub const ALG_ES256: i64 = -7;
/// COSE algorithm identifier for EdDSA.
pub const ALG_EDDSA: i64 = -8;
/// COSE algorithm identifier for RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
pub const ALG_RS256: i64 = -257;
/// COSE algorithm identifier ECDH-ES+HKDF-256, used by CTAP key agreement.
pub const ALG_ECDH_ES_HKDF_256: i64 = -25;

const KTY_OKP: i64 = 1;
const KTY_EC2: i64 = 2;
const KTY_RSA: i64 = 3;
const CRV_P256: i64 = 1;
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
            CoseKey::Ec2 { alg, .. } | CoseKey::Okp { alg, .. } | CoseKey::Rsa { alg, .. } => *alg,
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
                if crv != CRV_P256 {
                    return Err(CoseError::UnsupportedCurve(crv));
                }
                let x = m
                    .require_int(-2, "COSE_Key.x")?
                    .as_byte_array("COSE_Key.x")?;
                let y = m
                    .require_int(-3, "COSE_Key.y")?
                    .as_byte_array("COSE_Key.y")?;
                Ok(CoseKey::Ec2 { alg, x, y })
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

//! Signature verification behind a small trait of fido-core's own.
//!
//! Every signature fido-core checks (packed, fido-u2f and tpm attestation statements,
//! getAssertion signatures) goes through [`verify_signature`] with a
//! [`SignatureVerifier`]. Two backends are built in:
//!
//! - `RingVerifier` (feature `verify-ring`): *ring*'s P-256 and RSA code (assembly on
//!   the common targets). It needs a C toolchain to build. It is the default whenever the
//!   feature is on; the CLI, the server and the C/Python bindings turn it on.
//! - `RustCryptoVerifier` (feature `verify-rustcrypto`, on by default): the pure-Rust
//!   `p256`, `rsa` and `ed25519-dalek` crates; no C toolchain needed (for targets *ring*
//!   does not build for, or builds without a C compiler). A wasm build was not tried.
//!
//! [`default_verifier`] is *ring* when it is compiled in, otherwise RustCrypto. At least
//! one of the two features must be on.
//!
//! # The same answer from both backends
//!
//! [`verify_signature`] first runs checks shared by every backend ([`check_inputs`]), so
//! that a key or signature rejected for its form gets the same [`VerifyError`] whichever
//! backend is used; the backends then decide the signature itself. Both accept and reject
//! the same inputs; `fido-core/tests/api/verify.rs` runs the Wycheproof vectors and the
//! libfido2 recordings through each backend to show it. What is accepted:
//!
//! - **ES256**: an uncompressed P-256 point on the curve (not the identity); a strict DER
//!   `SEQUENCE { INTEGER r, INTEGER s }` with `0 < r, s < n` and nothing after it.
//!   **High-S signatures are accepted** by both backends (ECDSA does not require low S and
//!   authenticators produce both forms); a relying party needing non-malleable signatures
//!   must not rely on signature bytes being unique.
//! - **EdDSA**: Ed25519 with strict verification (canonical encodings, no small-order key
//!   or R). Both backends use `ed25519-dalek`'s `verify_strict` for it: *ring* accepts some
//!   small-order keys that strict verification rejects, and Ed25519 is not where the cost
//!   is.
//! - **RS256 / PS256 / RS1**: a modulus of 2048 to 4096 bits, odd, and an odd public
//!   exponent from 3 to 2^33 − 1 (*ring*'s bounds; the `rsa` crate's are wider). PS256 is
//!   RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (RFC 8230). RS1
//!   (PKCS#1 v1.5 with SHA-1) exists for TPM attestation only.

use std::fmt;

use crate::cose::{ALG_EDDSA, ALG_ES256, ALG_ES384, ALG_PS256, ALG_RS256};

#[cfg(feature = "verify-ring")]
mod ring_backend;
#[cfg(feature = "verify-rustcrypto")]
mod rustcrypto;

#[cfg(feature = "verify-ring")]
pub use ring_backend::RingVerifier;
#[cfg(feature = "verify-rustcrypto")]
pub use rustcrypto::RustCryptoVerifier;

#[cfg(not(any(feature = "verify-ring", feature = "verify-rustcrypto")))]
compile_error!("fido-core needs a signature backend: enable `verify-ring` or `verify-rustcrypto`");

/// A signature algorithm fido-core verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// ECDSA on P-256 with SHA-256; DER signature (COSE -7).
    Es256,
    /// ECDSA on P-384 with SHA-384; DER signature (COSE -35).
    Es384,
    /// Ed25519 (COSE -8); 64-byte signature.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (COSE -257).
    Rs256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt (COSE -37).
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-1 (COSE -65535), for TPM attestation only.
    Rs1,
}

impl SignatureAlgorithm {
    /// The algorithm for a COSE `alg` value, if it is one fido-core verifies.
    pub fn from_cose(alg: i64) -> Option<Self> {
        match alg {
            ALG_ES256 => Some(Self::Es256),
            ALG_ES384 => Some(Self::Es384),
            ALG_EDDSA => Some(Self::EdDsa),
            ALG_RS256 => Some(Self::Rs256),
            ALG_PS256 => Some(Self::Ps256),
            crate::attestation::ALG_RS1 => Some(Self::Rs1),
            _ => None,
        }
    }

    /// The COSE `alg` value.
    pub fn cose(self) -> i64 {
        match self {
            Self::Es256 => ALG_ES256,
            Self::Es384 => ALG_ES384,
            Self::EdDsa => ALG_EDDSA,
            Self::Rs256 => ALG_RS256,
            Self::Ps256 => ALG_PS256,
            Self::Rs1 => crate::attestation::ALG_RS1,
        }
    }
}

/// A public key as a [`SignatureVerifier`] receives it (borrowed, no parsing left to do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKeyRef<'a> {
    /// A P-256 point by its big-endian affine coordinates.
    P256 {
        /// x coordinate.
        x: &'a [u8; 32],
        /// y coordinate.
        y: &'a [u8; 32],
    },
    /// A P-384 point by its big-endian affine coordinates.
    P384 {
        /// x coordinate.
        x: &'a [u8; 48],
        /// y coordinate.
        y: &'a [u8; 48],
    },
    /// An Ed25519 public key (its 32-byte encoding).
    Ed25519(&'a [u8; 32]),
    /// An RSA public key; leading zero bytes in `n` and `e` are allowed.
    Rsa {
        /// Modulus, big-endian.
        n: &'a [u8],
        /// Public exponent, big-endian.
        e: &'a [u8],
    },
}

/// Why a signature was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The algorithm cannot be used with this kind of key (e.g. ES256 with an RSA key).
    #[error("algorithm {alg} does not fit the key type")]
    KeyMismatch {
        /// The COSE `alg` value asked for.
        alg: i64,
    },
    /// The key is not a valid key of its kind (named in the message).
    #[error("invalid public key: {0}")]
    InvalidKey(&'static str),
    /// The RSA modulus is shorter than 2048 bits.
    #[error("RSA modulus of {bits} bits is too short (at least 2048 required)")]
    RsaKeyTooShort {
        /// The modulus length in bits.
        bits: usize,
    },
    /// The signature is not in the form the algorithm requires (named in the message).
    #[error("malformed signature: {0}")]
    MalformedSignature(&'static str),
    /// The signature is well formed but does not verify with this key and message.
    #[error("signature does not verify")]
    BadSignature,
}

/// A signature-verification backend.
///
/// Implementations decide whether `signature` is a valid `alg` signature over `message`
/// by `key`. They must reject anything that is not (including keys and signatures in the
/// wrong form), but need not tell malformed input from a wrong signature: callers go
/// through [`verify_signature`], which classifies malformed input the same way for every
/// backend before the backend is asked.
pub trait SignatureVerifier: fmt::Debug + Send + Sync {
    /// A short name for reports and benchmarks (`"ring"`, `"rustcrypto"`).
    fn name(&self) -> &'static str;

    /// Verifies `signature` over `message` (the message itself, not a digest).
    fn verify(
        &self,
        alg: SignatureAlgorithm,
        key: PublicKeyRef<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError>;
}

/// The backend fido-core uses when the caller names none: `RingVerifier` with feature
/// `verify-ring`, otherwise `RustCryptoVerifier`.
pub fn default_verifier() -> &'static dyn SignatureVerifier {
    #[cfg(feature = "verify-ring")]
    {
        &RingVerifier
    }
    #[cfg(all(not(feature = "verify-ring"), feature = "verify-rustcrypto"))]
    {
        &RustCryptoVerifier
    }
}

/// Every backend compiled into this build (for tests and benchmarks that compare them).
pub fn compiled_verifiers() -> Vec<&'static dyn SignatureVerifier> {
    [
        #[cfg(feature = "verify-ring")]
        Some(&RingVerifier as &'static dyn SignatureVerifier),
        #[cfg(feature = "verify-rustcrypto")]
        Some(&RustCryptoVerifier as &'static dyn SignatureVerifier),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Checks the form of `key` and `signature` for `alg` ([`check_inputs`]), then asks
/// `verifier` about the signature.
pub fn verify_signature(
    verifier: &dyn SignatureVerifier,
    alg: SignatureAlgorithm,
    key: PublicKeyRef<'_>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    check_inputs(alg, key, signature)?;
    verifier.verify(alg, key, message, signature)
}

/// The checks every backend shares (see the module docs): key type against algorithm,
/// key validity and size, and the signature's encoding. Passing them does not mean the
/// signature verifies.
pub fn check_inputs(
    alg: SignatureAlgorithm,
    key: PublicKeyRef<'_>,
    signature: &[u8],
) -> Result<(), VerifyError> {
    match (alg, key) {
        (SignatureAlgorithm::Es256, PublicKeyRef::P256 { x, y }) => {
            p256_point(x, y)?;
            p256::ecdsa::Signature::from_der(signature)
                .map_err(|_| VerifyError::MalformedSignature("ES256 signature is not DER ECDSA"))?;
            Ok(())
        }
        (SignatureAlgorithm::Es384, PublicKeyRef::P384 { x, y }) => {
            p384_point(x, y)?;
            p384::ecdsa::Signature::from_der(signature)
                .map_err(|_| VerifyError::MalformedSignature("ES384 signature is not DER ECDSA"))?;
            Ok(())
        }
        (SignatureAlgorithm::EdDsa, PublicKeyRef::Ed25519(x)) => {
            ed25519_dalek::VerifyingKey::from_bytes(x)
                .map_err(|_| VerifyError::InvalidKey("OKP x is not an Ed25519 point"))?;
            if signature.len() != 64 {
                return Err(VerifyError::MalformedSignature(
                    "Ed25519 signature is not 64 bytes",
                ));
            }
            Ok(())
        }
        (
            SignatureAlgorithm::Rs256 | SignatureAlgorithm::Ps256 | SignatureAlgorithm::Rs1,
            PublicKeyRef::Rsa { n, e },
        ) => rsa_key(n, e).map(|_| ()),
        (alg, _) => Err(VerifyError::KeyMismatch { alg: alg.cose() }),
    }
}

/// `04 || x || y`, checked to be a point on P-256.
fn p256_point(x: &[u8; 32], y: &[u8; 32]) -> Result<[u8; 65], VerifyError> {
    let sec1 = sec1_uncompressed(x, y);
    p256::PublicKey::from_sec1_bytes(&sec1)
        .map_err(|_| VerifyError::InvalidKey("EC2 point is not on P-256"))?;
    Ok(sec1)
}

/// `04 || x || y`, checked to be a point on P-384.
fn p384_point(x: &[u8; 48], y: &[u8; 48]) -> Result<[u8; 97], VerifyError> {
    let sec1 = sec1_uncompressed_p384(x, y);
    p384::PublicKey::from_sec1_bytes(&sec1)
        .map_err(|_| VerifyError::InvalidKey("EC2 point is not on P-384"))?;
    Ok(sec1)
}

fn sec1_uncompressed_p384(x: &[u8; 48], y: &[u8; 48]) -> [u8; 97] {
    let mut sec1 = [0u8; 97];
    sec1[0] = 0x04;
    sec1[1..49].copy_from_slice(x);
    sec1[49..].copy_from_slice(y);
    sec1
}

fn sec1_uncompressed(x: &[u8; 32], y: &[u8; 32]) -> [u8; 65] {
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04;
    sec1[1..33].copy_from_slice(x);
    sec1[33..].copy_from_slice(y);
    sec1
}

/// An RSA key within the shared bounds, with leading zero bytes stripped.
struct RsaKey<'a> {
    n: &'a [u8],
    e: &'a [u8],
}

const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 4096;

fn rsa_key<'a>(n: &'a [u8], e: &'a [u8]) -> Result<RsaKey<'a>, VerifyError> {
    let n = strip_zeros(n);
    let e = strip_zeros(e);
    let bits = match n.first() {
        Some(top) => n.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    };
    if bits < RSA_MIN_BITS {
        return Err(VerifyError::RsaKeyTooShort { bits });
    }
    if bits > RSA_MAX_BITS {
        return Err(VerifyError::InvalidKey(
            "RSA modulus is longer than 4096 bits",
        ));
    }
    if n.last().is_some_and(|b| b & 1 == 0) {
        return Err(VerifyError::InvalidKey("RSA modulus is even"));
    }
    // 3 <= e <= 2^33 - 1, odd.
    let e_value = match e.len() {
        1..=5 => e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
        _ => u64::MAX,
    };
    if !(3..(1u64 << 33)).contains(&e_value) || e_value & 1 == 0 {
        return Err(VerifyError::InvalidKey(
            "RSA public exponent is not an odd number from 3 to 2^33 - 1",
        ));
    }
    Ok(RsaKey { n, e })
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

/// Ed25519 strict verification; both backends use it (see the module docs).
fn verify_ed25519(x: &[u8; 32], message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
    let key = ed25519_dalek::VerifyingKey::from_bytes(x)
        .map_err(|_| VerifyError::InvalidKey("OKP x is not an Ed25519 point"))?;
    let sig = ed25519_dalek::Signature::from_slice(signature)
        .map_err(|_| VerifyError::MalformedSignature("Ed25519 signature is not 64 bytes"))?;
    key.verify_strict(message, &sig)
        .map_err(|_| VerifyError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cose_round_trip() {
        for alg in [
            SignatureAlgorithm::Es256,
            SignatureAlgorithm::EdDsa,
            SignatureAlgorithm::Rs256,
            SignatureAlgorithm::Ps256,
            SignatureAlgorithm::Rs1,
        ] {
            assert_eq!(SignatureAlgorithm::from_cose(alg.cose()), Some(alg));
        }
        assert_eq!(SignatureAlgorithm::from_cose(-25), None);
    }

    #[test]
    fn rsa_bounds() {
        let mut n = vec![0xffu8; 256];
        assert!(rsa_key(&n, &[1, 0, 1]).is_ok());
        assert!(rsa_key(&[&[0, 0][..], &n].concat(), &[0, 1, 0, 1]).is_ok());
        assert_eq!(
            rsa_key(&n[..128], &[1, 0, 1]).err(),
            Some(VerifyError::RsaKeyTooShort { bits: 1024 })
        );
        assert!(matches!(
            rsa_key(&[0xff; 513], &[3]),
            Err(VerifyError::InvalidKey(_))
        ));
        for e in [
            &[1u8][..],
            &[2],
            &[1, 0, 0],
            &[2, 0, 0, 0, 1],
            &[1, 0, 0, 0, 0, 1],
        ] {
            assert!(
                matches!(rsa_key(&n, e), Err(VerifyError::InvalidKey(_))),
                "{e:?}"
            );
        }
        assert!(rsa_key(&n, &[1, 0xff, 0xff, 0xff, 0xff]).is_ok());
        n[255] = 0xfe;
        assert!(matches!(rsa_key(&n, &[3]), Err(VerifyError::InvalidKey(_))));
    }

    #[test]
    fn key_type_must_fit() {
        let x = [1u8; 32];
        assert_eq!(
            check_inputs(SignatureAlgorithm::Rs256, PublicKeyRef::Ed25519(&x), &[]),
            Err(VerifyError::KeyMismatch { alg: ALG_RS256 })
        );
        assert_eq!(
            check_inputs(
                SignatureAlgorithm::EdDsa,
                PublicKeyRef::P256 { x: &x, y: &x },
                &[]
            ),
            Err(VerifyError::KeyMismatch { alg: ALG_EDDSA })
        );
    }
}

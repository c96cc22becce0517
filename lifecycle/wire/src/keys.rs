//! Signing keys, public keys and entropy, as this crate's own types (no p256 type leaks).

use p256::ecdsa::signature::Signer;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::WireError;
use crate::msg::KeyId;

/// A source of random bytes. [`OsEntropy`] is the one to use; tests pass a seeded one to get
/// reproducible keys and ciphertexts.
pub trait Entropy {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]);
}

/// The operating system's CSPRNG.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, out: &mut [u8]) {
        rand_core::OsRng.fill_bytes(out);
    }
}

/// Adapts an [`Entropy`] to the RNG traits the crypto crates want.
pub(crate) struct Rng<'a>(pub(crate) &'a mut dyn Entropy);

impl RngCore for Rng<'_> {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl CryptoRng for Rng<'_> {}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// An ES256 (ECDSA P-256, SHA-256) signing key: the server's key or an agent's key. The
/// secret scalar is zeroized on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct SigningKey {
    inner: p256::ecdsa::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self::generate_with(&mut OsEntropy)
    }

    /// A fresh key from `entropy`.
    pub fn generate_with(entropy: &mut dyn Entropy) -> Self {
        SigningKey {
            inner: p256::ecdsa::SigningKey::random(&mut Rng(entropy)),
        }
    }

    /// The key whose secret scalar is `scalar` (big-endian); for fixed test keys and for
    /// keys held elsewhere in raw form.
    pub fn from_scalar(scalar: &[u8; 32]) -> Result<Self, WireError> {
        p256::ecdsa::SigningKey::from_slice(scalar)
            .map(|inner| SigningKey { inner })
            .map_err(|_| WireError::InvalidKey {
                reason: "not a valid P-256 scalar",
            })
    }

    /// Reads a PKCS#8 (RFC 5958) DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, WireError> {
        p256::ecdsa::SigningKey::from_pkcs8_der(der)
            .map(|inner| SigningKey { inner })
            .map_err(|_| WireError::InvalidKey {
                reason: "not a PKCS#8 P-256 private key",
            })
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, WireError> {
        p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map(|inner| SigningKey { inner })
            .map_err(|_| WireError::InvalidKey {
                reason: "not a PKCS#8 P-256 private key",
            })
    }

    /// The key as PKCS#8 DER (zeroized when dropped).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, WireError> {
        self.inner
            .to_pkcs8_der()
            .map(|d| Zeroizing::new(d.as_bytes().to_vec()))
            .map_err(|_| WireError::InvalidKey {
                reason: "PKCS#8 encoding failed",
            })
    }

    /// The key as PKCS#8 PEM (zeroized when dropped).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, WireError> {
        self.inner
            .to_pkcs8_pem(LineEnding::LF)
            .map(|p| Zeroizing::new(p.as_str().to_owned()))
            .map_err(|_| WireError::InvalidKey {
                reason: "PKCS#8 encoding failed",
            })
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_verifying(*self.inner.verifying_key())
    }

    /// SHA-256 of the public key in SEC1 uncompressed form.
    pub fn key_id(&self) -> KeyId {
        self.public_key().key_id()
    }

    /// ES256 over `data`: RFC 6979 deterministic ECDSA, raw `r‖s`. Signing stays on `p256`
    /// even with `verify-ring`: *ring* signs with random nonces only, and the golden vectors
    /// (`tests/golden/`) pin deterministic signatures.
    pub(crate) fn sign_raw(&self, data: &[u8]) -> [u8; 64] {
        let sig: p256::ecdsa::Signature = self.inner.sign(data);
        sig.to_bytes().into()
    }
}

/// A P-256 public key (what a verifier pins), held with its SEC1 uncompressed form.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    inner: p256::ecdsa::VerifyingKey,
    sec1: [u8; 65],
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("key_id", &self.key_id())
            .finish()
    }
}

impl PublicKey {
    fn from_verifying(inner: p256::ecdsa::VerifyingKey) -> Self {
        let point = inner.to_encoded_point(false);
        let mut sec1 = [0u8; 65];
        sec1.copy_from_slice(point.as_bytes());
        PublicKey { inner, sec1 }
    }

    /// Reads a SEC1 uncompressed point (65 bytes, `0x04 ‖ x ‖ y`) on P-256.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() != 65 || bytes[0] != 0x04 {
            return Err(WireError::InvalidKey {
                reason: "not a SEC1 uncompressed point (65 bytes)",
            });
        }
        p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
            .map(Self::from_verifying)
            .map_err(|_| WireError::InvalidKey {
                reason: "not a point on P-256",
            })
    }

    /// Reads a SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_spki_pem(pem: &str) -> Result<Self, WireError> {
        p256::ecdsa::VerifyingKey::from_public_key_pem(pem)
            .map(Self::from_verifying)
            .map_err(|_| WireError::InvalidKey {
                reason: "not a P-256 SubjectPublicKeyInfo",
            })
    }

    /// Reads a SubjectPublicKeyInfo DER.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, WireError> {
        p256::ecdsa::VerifyingKey::from_public_key_der(der)
            .map(Self::from_verifying)
            .map_err(|_| WireError::InvalidKey {
                reason: "not a P-256 SubjectPublicKeyInfo",
            })
    }

    /// The key as SubjectPublicKeyInfo PEM.
    pub fn to_spki_pem(&self) -> Result<String, WireError> {
        self.inner
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| WireError::InvalidKey {
                reason: "SubjectPublicKeyInfo encoding failed",
            })
    }

    /// SEC1 uncompressed form.
    pub fn to_sec1(&self) -> [u8; 65] {
        self.sec1
    }

    /// SHA-256 of [`PublicKey::to_sec1`]: the key id in envelopes (an agent's is its agent id).
    pub fn key_id(&self) -> KeyId {
        KeyId(sha256(&self.sec1))
    }

    /// Checks a raw `r‖s` ES256 signature over `data`: with *ring* when the `verify-ring`
    /// feature is on, otherwise with `p256`. Both accept exactly the 64-byte signatures with
    /// `0 < r, s < n` that verify, high S included (`tests::ring_and_p256_agree`).
    pub(crate) fn verify_raw(&self, data: &[u8], sig: &[u8]) -> Result<(), WireError> {
        #[cfg(feature = "verify-ring")]
        return self.verify_raw_ring(data, sig);
        #[cfg(not(feature = "verify-ring"))]
        return self.verify_raw_p256(data, sig);
    }

    /// The pure-Rust check (no C toolchain needed).
    #[cfg(any(test, not(feature = "verify-ring")))]
    pub(crate) fn verify_raw_p256(&self, data: &[u8], sig: &[u8]) -> Result<(), WireError> {
        use p256::ecdsa::signature::Verifier;
        let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|_| WireError::BadSignature)?;
        self.inner
            .verify(data, &sig)
            .map_err(|_| WireError::BadSignature)
    }

    /// *ring*'s check: the server verifies every agent message, and this is several times
    /// faster than `p256` (issue 18; `docs/benchmarks.md`).
    #[cfg(feature = "verify-ring")]
    pub(crate) fn verify_raw_ring(&self, data: &[u8], sig: &[u8]) -> Result<(), WireError> {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &self.sec1[..],
        )
        .verify(data, sig)
        .map_err(|_| WireError::BadSignature)
    }
}

//! The pure-Rust backend: `p256`, `p384`, `rsa` and `ed25519-dalek` (no C toolchain).

use super::{
    rsa_key, sec1_uncompressed, sec1_uncompressed_p384, verify_ed25519, PublicKeyRef,
    SignatureAlgorithm, SignatureVerifier, VerifyError,
};

/// DigestInfo prefix for SHA-1 (RFC 8017 §9.2 note 1).
const SHA1_DIGEST_INFO: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];

/// Verifies with the RustCrypto crates (feature `verify-rustcrypto`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCryptoVerifier;

impl SignatureVerifier for RustCryptoVerifier {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn verify(
        &self,
        alg: SignatureAlgorithm,
        key: PublicKeyRef<'_>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), VerifyError> {
        match (alg, key) {
            (SignatureAlgorithm::Es256, PublicKeyRef::P256 { x, y }) => {
                es256(x, y, message, signature)
            }
            (SignatureAlgorithm::Es384, PublicKeyRef::P384 { x, y }) => {
                es384(x, y, message, signature)
            }
            (SignatureAlgorithm::EdDsa, PublicKeyRef::Ed25519(x)) => {
                verify_ed25519(x, message, signature)
            }
            (
                SignatureAlgorithm::Rs256 | SignatureAlgorithm::Ps256 | SignatureAlgorithm::Rs1,
                PublicKeyRef::Rsa { n, e },
            ) => rsa(alg, n, e, message, signature),
            (alg, _) => Err(VerifyError::KeyMismatch { alg: alg.cose() }),
        }
    }
}

fn es256(x: &[u8; 32], y: &[u8; 32], message: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    use p256::ecdsa::signature::Verifier;
    // from_sec1_bytes checks the point is on the curve.
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1_uncompressed(x, y))
        .map_err(|_| VerifyError::InvalidKey("EC2 point is not on P-256"))?;
    let sig = p256::ecdsa::Signature::from_der(sig)
        .map_err(|_| VerifyError::MalformedSignature("ES256 signature is not DER ECDSA"))?;
    // High-S signatures are valid ECDSA (ring accepts them too); verify the low-S twin.
    let sig = sig.normalize_s().unwrap_or(sig);
    key.verify(message, &sig)
        .map_err(|_| VerifyError::BadSignature)
}

fn es384(x: &[u8; 48], y: &[u8; 48], message: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
    use p384::ecdsa::signature::Verifier;
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1_uncompressed_p384(x, y))
        .map_err(|_| VerifyError::InvalidKey("EC2 point is not on P-384"))?;
    let sig = p384::ecdsa::Signature::from_der(sig)
        .map_err(|_| VerifyError::MalformedSignature("ES384 signature is not DER ECDSA"))?;
    let sig = sig.normalize_s().unwrap_or(sig);
    key.verify(message, &sig)
        .map_err(|_| VerifyError::BadSignature)
}

fn rsa(
    alg: SignatureAlgorithm,
    n: &[u8],
    e: &[u8],
    message: &[u8],
    sig: &[u8],
) -> Result<(), VerifyError> {
    use rsa::signature::Verifier;
    let key = rsa_key(n, e)?;
    let key = rsa::RsaPublicKey::new(
        rsa::BigUint::from_bytes_be(key.n),
        rsa::BigUint::from_bytes_be(key.e),
    )
    .map_err(|_| VerifyError::InvalidKey("RSA key rejected"))?;
    fn bad<E>(_: E) -> VerifyError {
        VerifyError::BadSignature
    }
    match alg {
        SignatureAlgorithm::Rs256 => {
            let sig = rsa::pkcs1v15::Signature::try_from(sig).map_err(bad)?;
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(message, &sig)
                .map_err(bad)
        }
        SignatureAlgorithm::Ps256 => {
            let sig = rsa::pss::Signature::try_from(sig).map_err(bad)?;
            rsa::pss::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(message, &sig)
                .map_err(bad)
        }
        _ => {
            let scheme = rsa::Pkcs1v15Sign {
                hash_len: Some(20),
                prefix: SHA1_DIGEST_INFO.to_vec().into_boxed_slice(),
            };
            key.verify(scheme, &crate::attestation::sha1(message), sig)
                .map_err(bad)
        }
    }
}

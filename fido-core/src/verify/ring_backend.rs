//! The *ring* backend: P-256, P-384 and RSA in *ring* (assembly on x86-64 and AArch64).

use ring::signature::{self, RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey};

use super::{
    rsa_key, sec1_uncompressed, sec1_uncompressed_p384, verify_ed25519, PublicKeyRef,
    SignatureAlgorithm, SignatureVerifier, VerifyError,
};

/// Verifies with *ring* (feature `verify-ring`); Ed25519 goes to `ed25519-dalek`'s strict
/// verification (see the [module docs](super)).
#[derive(Clone, Copy, Debug, Default)]
pub struct RingVerifier;

impl SignatureVerifier for RingVerifier {
    fn name(&self) -> &'static str {
        "ring"
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
                // ring checks the point (on the curve, not the identity) and parses the
                // DER signature strictly (0 < r, s < n).
                let sec1 = sec1_uncompressed(x, y);
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &sec1[..])
                    .verify(message, signature)
                    .map_err(|_| VerifyError::BadSignature)
            }
            (SignatureAlgorithm::Es384, PublicKeyRef::P384 { x, y }) => {
                let sec1 = sec1_uncompressed_p384(x, y);
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_ASN1, &sec1[..])
                    .verify(message, signature)
                    .map_err(|_| VerifyError::BadSignature)
            }
            (SignatureAlgorithm::EdDsa, PublicKeyRef::Ed25519(x)) => {
                verify_ed25519(x, message, signature)
            }
            (SignatureAlgorithm::Rs256, PublicKeyRef::Rsa { n, e }) => rsa(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                n,
                e,
                message,
                signature,
            ),
            (SignatureAlgorithm::Ps256, PublicKeyRef::Rsa { n, e }) => rsa(
                &signature::RSA_PSS_2048_8192_SHA256,
                n,
                e,
                message,
                signature,
            ),
            (SignatureAlgorithm::Rs1, PublicKeyRef::Rsa { n, e }) => rsa(
                &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
                n,
                e,
                message,
                signature,
            ),
            (alg, _) => Err(VerifyError::KeyMismatch { alg: alg.cose() }),
        }
    }
}

fn rsa(
    params: &RsaParameters,
    n: &[u8],
    e: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    // The shared bounds (ring alone would take up to 8192 bits); ring wants no leading
    // zero bytes.
    let key = rsa_key(n, e)?;
    RsaPublicKeyComponents { n: key.n, e: key.e }
        .verify(params, message, signature)
        .map_err(|_| VerifyError::BadSignature)
}

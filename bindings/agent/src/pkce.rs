//! PKCE (RFC 7636), S256 only: the `plain` method is never offered (RFC 7636 §4.2 and
//! RFC 8252 §8.1 require S256 from clients that can do it).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A code verifier and its S256 challenge. The verifier is zeroized on drop and never
/// shown by `Debug`.
pub struct Pkce {
    verifier: Zeroizing<String>,
    challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

impl Pkce {
    /// A fresh verifier: 32 random bytes, base64url (43 characters, RFC 7636 §4.1).
    pub fn generate() -> Self {
        let mut raw = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(raw.as_mut());
        Self::from_verifier_bytes(raw.as_ref())
    }

    /// The verifier made from `raw` (tests: RFC 7636 Appendix B).
    pub fn from_verifier_bytes(raw: &[u8]) -> Self {
        let verifier = Zeroizing::new(URL_SAFE_NO_PAD.encode(raw));
        let challenge = s256(&verifier);
        Pkce {
            verifier,
            challenge,
        }
    }

    /// The `code_verifier` sent to the token endpoint.
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    /// The `code_challenge` sent in the authorize request.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// Always `S256`.
    pub fn method(&self) -> &'static str {
        "S256"
    }
}

/// `BASE64URL(SHA256(ASCII(verifier)))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A random URL-safe value of `n` bytes (for `state`).
pub fn random_b64url(n: usize) -> String {
    let mut raw = vec![0u8; n];
    OsRng.fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn rfc7636_appendix_b() {
        let raw = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let p = Pkce::from_verifier_bytes(&raw);
        assert_eq!(p.verifier(), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(p.method(), "S256");
        assert!(!format!("{p:?}").contains("dBjft"));
    }

    #[test]
    fn fresh_verifiers_differ_and_have_43_characters() {
        let (a, b) = (Pkce::generate(), Pkce::generate());
        assert_eq!(a.verifier().len(), 43);
        assert_ne!(a.verifier(), b.verifier());
        assert_eq!(s256(a.verifier()), a.challenge());
    }
}

//! Credentials for the client-credentials flow and the certificate assertion JWT.
//!
//! Secrets live in [`Secret`] (zeroized on drop, redacted in `Debug`); RSA private keys
//! are zeroized by the `rsa` crate on drop.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::RsaPrivateKey;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::ids::encode_b64url;
use crate::GraphError;

/// A secret string (client secret, access token): zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(Zeroizing::new(s.into()))
    }
    /// The secret text. Keep its use short and never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

/// Signature algorithm of the certificate assertion.
///
/// Only PS256: Entra accepts PS256 client assertions (and recommends them), and the `rsa`
/// crate signs PSS with blinding (`BlindedSigningKey`). Its RS256 (PKCS#1 v1.5) signer has no
/// blinding, which RUSTSEC-2023-0071 (Marvin timing side channel) makes a risk to the app's
/// certificate key, so keysmith never signs RS256 (see docs/SECURITY.md, supply chain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssertionAlg {
    /// RSASSA-PSS with SHA-256, signed with blinding (what Entra recommends).
    Ps256,
}

impl AssertionAlg {
    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            AssertionAlg::Ps256 => "PS256",
        }
    }
}

/// An app's certificate credential: the DER certificate registered with the app and its
/// RSA private key.
#[derive(Clone)]
pub struct CertificateCredential {
    cert_der: Vec<u8>,
    key: RsaPrivateKey,
    alg: AssertionAlg,
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("x5t#S256", &self.thumbprint_s256())
            .field("alg", &self.alg)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Decodes the first PEM block with the given label (e.g. `CERTIFICATE`).
///
/// The block is found by its boundary lines (a file may carry other blocks or text around
/// it); decoding and validation are pem-rfc7468's (RFC 7468 strict grammar, constant-time
/// base64), with the line width the block itself uses (64 from OpenSSL; other tools wrap
/// at 76).
pub fn pem_block(pem: &str, label: &'static str) -> Result<Vec<u8>, GraphError> {
    let bad = |reason: String| GraphError::Config {
        setting: "certificate",
        reason,
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| bad(format!("no {begin} block")))?;
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| bad(format!("no {end} line")))?
        + start
        + end.len();
    let block = &pem[start..stop];
    let width = block
        .lines()
        .nth(1)
        .map(|l| l.trim_end().len())
        .filter(|w| *w >= 4)
        .unwrap_or(pem_rfc7468::BASE64_WRAP_WIDTH);
    let mut decoder = pem_rfc7468::Decoder::new_wrapped(block.as_bytes(), width)
        .map_err(|e| bad(format!("{label} block is not PEM: {e}")))?;
    let mut der = Vec::new();
    decoder
        .decode_to_end(&mut der)
        .map_err(|e| bad(format!("{label} block is not base64: {e}")))?;
    Ok(der)
}

impl CertificateCredential {
    /// Loads a certificate (PEM) and its RSA private key (PEM, PKCS#8 or PKCS#1).
    pub fn from_pem(cert_pem: &str, key_pem: &str, alg: AssertionAlg) -> Result<Self, GraphError> {
        let cert_der = pem_block(cert_pem, "CERTIFICATE")?;
        let key = RsaPrivateKey::from_pkcs8_pem(key_pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(key_pem))
            .map_err(|e| GraphError::Config {
                setting: "private key",
                reason: format!("not an RSA private key in PKCS#8 or PKCS#1 PEM: {e}"),
            })?;
        Ok(CertificateCredential { cert_der, key, alg })
    }

    /// base64url SHA-256 of the DER certificate (the `x5t#S256` header).
    pub fn thumbprint_s256(&self) -> String {
        encode_b64url(&Sha256::digest(&self.cert_der))
    }

    /// Builds and signs a client assertion for `client_id` at `token_url`, valid for
    /// ten minutes from `now`.
    pub fn assertion(&self, client_id: &str, token_url: &str, now: SystemTime) -> String {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let mut jti = [0u8; 16];
        OsRng.fill_bytes(&mut jti);
        let header = serde_json::json!({
            "alg": self.alg.name(),
            "typ": "JWT",
            "x5t#S256": self.thumbprint_s256(),
        });
        let claims = serde_json::json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": encode_b64url(&jti),
            "nbf": secs,
            "iat": secs,
            "exp": secs + 600,
        });
        let signing_input = format!(
            "{}.{}",
            encode_b64url(header.to_string().as_bytes()),
            encode_b64url(claims.to_string().as_bytes())
        );
        let sig = match self.alg {
            AssertionAlg::Ps256 => {
                let k = rsa::pss::BlindedSigningKey::<Sha256>::new(self.key.clone());
                k.sign_with_rng(&mut OsRng, signing_input.as_bytes())
                    .to_vec()
            }
        };
        format!("{signing_input}.{}", encode_b64url(&sig))
    }
}

/// An access token with its expiry, as a token callback returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    /// The bearer token.
    pub token: Secret,
    /// How long it stays valid from now.
    pub expires_in: Duration,
}

/// A caller-supplied token source for products that already own token acquisition.
pub type TokenCallback = Arc<dyn Fn() -> Result<AccessToken, String> + Send + Sync>;

/// How the client obtains tokens.
#[derive(Clone)]
pub enum Credential {
    /// Client credentials with a client secret.
    ClientSecret {
        /// Application (client) id.
        client_id: String,
        /// The secret.
        secret: Secret,
    },
    /// Client credentials with a certificate assertion.
    Certificate {
        /// Application (client) id.
        client_id: String,
        /// Certificate and key.
        certificate: Box<CertificateCredential>,
    },
    /// Tokens come from the caller.
    Callback(TokenCallback),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::ClientSecret { client_id, .. } => f
                .debug_struct("ClientSecret")
                .field("client_id", client_id)
                .field("secret", &"<redacted>")
                .finish(),
            Credential::Certificate {
                client_id,
                certificate,
            } => f
                .debug_struct("Certificate")
                .field("client_id", client_id)
                .field("certificate", certificate)
                .finish(),
            Credential::Callback(_) => f.write_str("Callback(..)"),
        }
    }
}

impl Credential {
    /// What kind of credential this is, for logs (never its content).
    pub(crate) fn kind_name(&self) -> &'static str {
        match self {
            Credential::ClientSecret { .. } => "client-secret",
            Credential::Certificate { .. } => "certificate",
            Credential::Callback(_) => "callback",
        }
    }

    /// The form fields of a client-credentials token request (`None` for callbacks).
    pub(crate) fn token_form(
        &self,
        token_url: &str,
        scope: &str,
    ) -> Option<Vec<(&'static str, Zeroizing<String>)>> {
        let z = |s: &str| Zeroizing::new(s.to_owned());
        match self {
            Credential::ClientSecret { client_id, secret } => Some(vec![
                ("grant_type", z("client_credentials")),
                ("client_id", z(client_id)),
                ("scope", z(scope)),
                ("client_secret", z(secret.expose())),
            ]),
            Credential::Certificate {
                client_id,
                certificate,
            } => Some(vec![
                ("grant_type", z("client_credentials")),
                ("client_id", z(client_id)),
                ("scope", z(scope)),
                (
                    "client_assertion_type",
                    z("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ),
                (
                    "client_assertion",
                    Zeroizing::new(certificate.assertion(client_id, token_url, SystemTime::now())),
                ),
            ]),
            Credential::Callback(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Credential::ClientSecret {
            client_id: "app".into(),
            secret: Secret::new("hunter2-very-secret"),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("app"));
    }

    #[test]
    fn assertion_has_the_documented_header_and_claims() {
        let cert = CertificateCredential::from_pem(
            &fixture("app-cert.pem"),
            &fixture("app-key.pem"),
            AssertionAlg::Ps256,
        )
        .unwrap();
        assert!(!format!("{cert:?}").contains("PRIVATE"));
        let jwt = cert.assertion(
            "cid",
            "https://login/t/oauth2/v2.0/token",
            UNIX_EPOCH + Duration::from_secs(1000),
        );
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&crate::ids::decode_b64url_strict(parts[0], "h").unwrap())
                .unwrap();
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["x5t#S256"], cert.thumbprint_s256());
        let claims: serde_json::Value =
            serde_json::from_slice(&crate::ids::decode_b64url_strict(parts[1], "c").unwrap())
                .unwrap();
        assert_eq!(claims["aud"], "https://login/t/oauth2/v2.0/token");
        assert_eq!(claims["iss"], "cid");
        assert_eq!(claims["sub"], "cid");
        assert_eq!(claims["exp"], 1600);
        assert_eq!(
            crate::ids::decode_b64url_strict(parts[2], "s")
                .unwrap()
                .len(),
            256
        );
    }

    #[test]
    fn bad_pem_is_a_config_error() {
        assert!(matches!(
            CertificateCredential::from_pem("nope", "nope", AssertionAlg::Ps256),
            Err(GraphError::Config { .. })
        ));
        assert!(matches!(
            CertificateCredential::from_pem(
                &fixture("app-cert.pem"),
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                AssertionAlg::Ps256
            ),
            Err(GraphError::Config {
                setting: "private key",
                ..
            })
        ));
    }

    #[test]
    fn pem_block_finds_the_labelled_block_and_checks_it() {
        let pem = fixture("app-cert.pem");
        let der = pem_block(&pem, "CERTIFICATE").unwrap();
        assert_eq!(der.first(), Some(&0x30), "a DER SEQUENCE");
        // Text around it and other blocks before it are skipped.
        let noisy = format!(
            "Bag Attributes\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{pem}trailing\n"
        );
        assert_eq!(pem_block(&noisy, "CERTIFICATE").unwrap(), der);
        // Re-wrapped at 76 columns (certutil, Java): still read.
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let wrapped: Vec<&str> = body
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let rewrapped = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            wrapped.join("\n")
        );
        assert_eq!(pem_block(&rewrapped, "CERTIFICATE").unwrap(), der);
        // Missing blocks and bad base64 are config errors naming the certificate.
        for bad in [
            "nope".to_owned(),
            "-----BEGIN CERTIFICATE-----\nAAAA\n".to_owned(),
            "-----BEGIN CERTIFICATE-----\nA*AA\n-----END CERTIFICATE-----\n".to_owned(),
            pem.replace("-----BEGIN CERTIFICATE-----", "-----BEGIN X509 CRL-----"),
        ] {
            assert!(
                matches!(
                    pem_block(&bad, "CERTIFICATE"),
                    Err(GraphError::Config {
                        setting: "certificate",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }
}

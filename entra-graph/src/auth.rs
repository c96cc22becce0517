//! Credentials for the client-credentials flow and the certificate assertion JWT.
//!
//! Secrets live in [`Secret`] (zeroized on drop, redacted in `Debug`); RSA private keys
//! are zeroized by the `rsa` crate on drop.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
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
pub fn pem_block(pem: &str, label: &'static str) -> Result<Vec<u8>, GraphError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or_else(|| GraphError::Config {
        setting: "certificate",
        reason: format!("no {begin} block"),
    })? + begin.len();
    let stop = pem[start..].find(&end).ok_or_else(|| GraphError::Config {
        setting: "certificate",
        reason: format!("no {end} line"),
    })? + start;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).map_err(|e| GraphError::Config {
        setting: "certificate",
        reason: format!("{label} block is not base64: {e}"),
    })
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
}

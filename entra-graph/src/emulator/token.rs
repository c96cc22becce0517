//! The emulated token endpoint: client credentials with a secret or a certificate
//! assertion, checked the way the Microsoft identity platform checks them.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use sha2::{Digest, Sha256};

use crate::ids::{decode_b64url_strict, encode_b64url};

/// An application registered in the emulated tenant.
#[derive(Clone)]
pub struct AppRegistration {
    /// Application (client) id.
    pub client_id: String,
    /// Its client secret, if it has one.
    pub client_secret: Option<String>,
    /// PEM certificates registered for assertions.
    pub certificates_pem: Vec<String>,
    /// Application permissions granted (admin-consented app roles); `None` grants
    /// everything a passkey provisioning app needs.
    pub roles: Option<Vec<String>>,
}

impl AppRegistration {
    /// True when the app holds one of `any_of`.
    pub(crate) fn has_any_role(&self, any_of: &[&str]) -> bool {
        match &self.roles {
            None => true,
            Some(roles) => roles.iter().any(|r| any_of.contains(&r.as_str())),
        }
    }
}

impl std::fmt::Debug for AppRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRegistration")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("certificates", &self.certificates_pem.len())
            .field("roles", &self.roles)
            .finish()
    }
}

/// A certificate registered with an app, ready for checking assertions.
#[derive(Clone, Debug)]
pub(crate) struct RegisteredCert {
    pub thumbprint_s256: String,
    /// base64url SHA-1 of the DER (`x5t`, the older header Entra still accepts).
    pub thumbprint_sha1: String,
    pub key: RsaPublicKey,
}

pub(crate) fn load_cert(pem: &str) -> Result<RegisteredCert, String> {
    use x509_cert::der::{Decode, Encode};
    let der = crate::auth::pem_block(pem, "CERTIFICATE").map_err(|e| e.to_string())?;
    let cert = x509_cert::Certificate::from_der(&der).map_err(|e| format!("certificate: {e}"))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("certificate key: {e}"))?;
    let key = RsaPublicKey::from_public_key_der(&spki)
        .map_err(|e| format!("certificate key is not RSA: {e}"))?;
    Ok(RegisteredCert {
        thumbprint_s256: encode_b64url(&Sha256::digest(&der)),
        thumbprint_sha1: encode_b64url(&openssl::sha::sha1(&der)),
        key,
    })
}

/// A token-endpoint failure: HTTP status, OAuth error and AADSTS description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TokenFailure {
    pub status: u16,
    pub error: &'static str,
    pub code: u64,
    pub description: String,
}

fn fail(
    status: u16,
    error: &'static str,
    code: u64,
    description: impl Into<String>,
) -> TokenFailure {
    TokenFailure {
        status,
        error,
        code,
        description: format!("AADSTS{code}: {}", description.into()),
    }
}

/// Parses an `application/x-www-form-urlencoded` body (a repeated name keeps its last value).
pub(crate) fn parse_form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Checks a client-credentials request; returns the client id on success.
pub(crate) fn check_client_credentials(
    form: &HashMap<String, String>,
    apps: &[(AppRegistration, Vec<RegisteredCert>)],
    token_url: &str,
    now: SystemTime,
    used_jtis: &mut std::collections::HashSet<String>,
) -> Result<String, TokenFailure> {
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Err(fail(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ));
    }
    let client_id = form.get("client_id").ok_or_else(|| {
        fail(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    })?;
    let scope = form.get("scope").map(String::as_str).unwrap_or("");
    if !scope.ends_with("/.default") {
        return Err(fail(400, "invalid_scope", 1002012, format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.")));
    }
    let (app, certs) = apps
        .iter()
        .find(|(a, _)| &a.client_id == client_id)
        .ok_or_else(|| {
            fail(
                400,
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory."
                ),
            )
        })?;
    if let Some(secret) = form.get("client_secret") {
        return match &app.client_secret {
            Some(s) if constant_time_eq(s.as_bytes(), secret.as_bytes()) => Ok(client_id.clone()),
            _ => Err(fail(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            )),
        };
    }
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return Err(fail(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."));
    }
    let assertion = form.get("client_assertion").ok_or_else(|| {
        fail(
            401,
            "invalid_client",
            7000218,
            "client_assertion is missing.",
        )
    })?;
    check_assertion(assertion, client_id, certs, token_url, now, used_jtis)?;
    Ok(client_id.clone())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_assertion(
    jwt: &str,
    client_id: &str,
    certs: &[RegisteredCert],
    token_url: &str,
    now: SystemTime,
    used_jtis: &mut std::collections::HashSet<String>,
) -> Result<(), TokenFailure> {
    let invalid = |d: &str| {
        fail(
            401,
            "invalid_client",
            700027,
            format!("Client assertion failed signature validation or is malformed: {d}"),
        )
    };
    let mut parts = jwt.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a compact JWS"));
    };
    let header: serde_json::Value = decode_b64url_strict(h, "header")
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid("header"))?;
    let claims: serde_json::Value = decode_b64url_strict(c, "claims")
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| invalid("claims"))?;
    let sig = decode_b64url_strict(s, "signature").map_err(|_| invalid("signature encoding"))?;
    // `x5t#S256` (current guidance) or `x5t`, SHA-1 (older, still accepted: CERT).
    let (thumb, sha1) = match (header["x5t#S256"].as_str(), header["x5t"].as_str()) {
        (Some(t), _) => (t, false),
        (None, Some(t)) => (t, true),
        (None, None) => return Err(invalid("x5t#S256 (or x5t) missing")),
    };
    let cert = certs
        .iter()
        .find(|c| if sha1 { c.thumbprint_sha1 == thumb } else { c.thumbprint_s256 == thumb })
        .ok_or_else(|| fail(401, "invalid_client", 700027, "The certificate with identifier used to sign the client assertion is not registered on application."))?;
    let signing_input = format!("{h}.{c}");
    let ok = match header["alg"].as_str() {
        Some("PS256") => rsa::pss::Signature::try_from(sig.as_slice())
            .ok()
            .is_some_and(|sig| {
                rsa::pss::VerifyingKey::<Sha256>::new(cert.key.clone())
                    .verify(signing_input.as_bytes(), &sig)
                    .is_ok()
            }),
        Some("RS256") => rsa::pkcs1v15::Signature::try_from(sig.as_slice())
            .ok()
            .is_some_and(|sig| {
                rsa::pkcs1v15::VerifyingKey::<Sha256>::new(cert.key.clone())
                    .verify(signing_input.as_bytes(), &sig)
                    .is_ok()
            }),
        _ => return Err(invalid("alg must be PS256 or RS256")),
    };
    if !ok {
        return Err(invalid("signature"));
    }
    if claims["aud"].as_str() != Some(token_url) {
        return Err(fail(
            401,
            "invalid_client",
            700024,
            "Client assertion audience claim does not match Realm issuer.",
        ));
    }
    if claims["iss"].as_str() != Some(client_id) || claims["sub"].as_str() != Some(client_id) {
        return Err(fail(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let secs = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let exp = claims["exp"]
        .as_u64()
        .ok_or_else(|| invalid("exp missing"))?;
    let nbf = claims["nbf"].as_u64().unwrap_or(0);
    if exp <= secs {
        return Err(fail(
            401,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    if nbf > secs + 300 {
        return Err(fail(
            401,
            "invalid_client",
            700024,
            "Client assertion is not yet valid.",
        ));
    }
    let jti = claims["jti"]
        .as_str()
        .ok_or_else(|| invalid("jti missing"))?;
    if !used_jtis.insert(jti.to_owned()) {
        return Err(fail(
            401,
            "invalid_client",
            700025,
            "Client assertion has already been used (jti replay).",
        ));
    }
    Ok(())
}

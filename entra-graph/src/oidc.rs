//! Verifying a holder's OpenID Connect ID token (Microsoft identity platform v2.0 or any
//! OIDC issuer publishing a JWKS).
//!
//! Two layers:
//! - [`verify_with_jwks`]: the sans-IO core. Takes the compact token, a parsed [`Jwks`],
//!   the [`OidcSettings`] and the time; checks the JWS shape, the header (`alg` in the
//!   allowed set and matching the key, never `none`, never HMAC; `typ` if present is
//!   `JWT`; no `crit`), the signature against the key named by `kid`, then `iss`, `aud`,
//!   `exp`, `nbf`, `iat` (with leeway), `tid` when configured and the types of every
//!   claim it reads. Access tokens are refused: a token carrying `scp`, `roles` or
//!   `idtyp`, a `ver` other than `2.0`, or an `azp` other than the audience is not an ID
//!   token. What the caller decides (nonce, freshness, MFA, single use) is handed back in
//!   [`VerifiedToken`].
//! - [`OidcVerifier`]: a blocking, `Send + Sync` verifier that fetches the issuer's keys
//!   (from `jwks_url`, or from the discovery document under the issuer), caches them, and
//!   refetches when a token names an unknown `kid` — at most once per
//!   [`OidcSettings::jwks_refetch_interval`], so a flood of tokens with made-up key ids
//!   cannot make it hammer the issuer. Only `https` URLs are fetched (plain `http` only to
//!   loopback), redirects are not followed and responses are bounded.
//!
//! Failures are [`GraphError::Oidc`] (the token was refused; `claim` names the part or
//! claim at fault) and [`GraphError::OidcKeys`] (the issuer's keys could not be had).
//! The raw token never appears in an error or in `Debug` output.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use fido_core::verify::{self, PublicKeyRef, SignatureAlgorithm};
use serde_json::{Map, Value};

use crate::GraphError;

mod verifier;
pub use verifier::OidcVerifier;
mod access;
mod keys;
pub use access::{
    verify_access_with_jwks, AccessTokenSettings, AccessTokenVerifier, VerifiedAccessToken,
};

/// Longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Largest JWKS or discovery document accepted, in bytes.
pub const MAX_KEYS_DOCUMENT_BYTES: usize = 64 * 1024;
/// Most keys read from a JWKS (the rest are ignored).
pub const MAX_JWKS_KEYS: usize = 64;
/// Cached keys are refetched when older than this, even without an unknown `kid`.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// A JWS signature algorithm the verifier can accept.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JwsAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (what Entra signs ID tokens with).
    Rs256,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl JwsAlg {
    /// The JOSE name (`RS256`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            JwsAlg::Rs256 => "RS256",
            JwsAlg::Ps256 => "PS256",
            JwsAlg::Es256 => "ES256",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "RS256" => Some(JwsAlg::Rs256),
            "PS256" => Some(JwsAlg::Ps256),
            "ES256" => Some(JwsAlg::Es256),
            _ => None,
        }
    }
}

/// What a token must satisfy, and where the issuer's keys are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSettings {
    /// Expected `iss`, compared exactly (Entra v2.0: `https://login.microsoftonline.com/{tenant}/v2.0`).
    pub issuer: String,
    /// The audience (client id) `aud` must contain.
    pub audience: String,
    /// Where the issuer publishes its keys; `None`: read `jwks_uri` from
    /// `{issuer}/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Algorithms accepted (a subset of RS256, PS256, ES256).
    pub allowed_algs: Vec<JwsAlg>,
    /// When set, `tid` must be present and equal to it.
    pub tenant_id: Option<String>,
    /// When true (the default), the `oid` claim (the user's object id) is required
    /// (Entra puts it in ID tokens only when the sign-in asked for the `profile` scope).
    pub require_object_id: bool,
    /// When true (the default), `ver` is required; whenever present it must be `2.0`
    /// (Microsoft identity platform v2.0 ID tokens). Set false only for a non-Entra issuer
    /// that does not send `ver`.
    pub require_version: bool,
    /// Least time between two fetches of the keys caused by unknown key ids.
    pub jwks_refetch_interval: Duration,
    /// Timeout of one HTTP request for the keys or the discovery document.
    pub request_timeout: Duration,
    /// Trust (the OS store plus an optional extra CA file) and proxy for the discovery
    /// and keys endpoints.
    pub network: crate::net::NetworkOptions,
}

impl OidcSettings {
    /// Settings for `issuer` and `audience`: keys through discovery, 5 minutes leeway,
    /// RS256 only, `oid` required, unknown-`kid` refetches at most once a minute.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        OidcSettings {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            leeway: Duration::from_secs(300),
            allowed_algs: vec![JwsAlg::Rs256],
            tenant_id: None,
            require_object_id: true,
            require_version: true,
            jwks_refetch_interval: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            network: crate::net::NetworkOptions::default(),
        }
    }

    fn validate(&self) -> Result<(), GraphError> {
        self.network.validate()?;
        let config = |setting: &'static str, reason: &str| GraphError::Config {
            setting,
            reason: reason.to_owned(),
        };
        check_url(&self.issuer).map_err(|r| config("oidc.issuer", &r))?;
        if let Some(u) = &self.jwks_url {
            check_url(u).map_err(|r| config("oidc.jwks_url", &r))?;
        }
        if self.audience.trim().is_empty() {
            return Err(config("oidc.audience", "must not be empty"));
        }
        if self.allowed_algs.is_empty() {
            return Err(config(
                "oidc.allowed_algs",
                "at least one algorithm is needed",
            ));
        }
        Ok(())
    }
}

/// A token that passed every check: the claims the engine needs, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `sub` (pairwise and opaque at Entra).
    pub subject: String,
    /// `oid`: the user's object id in the directory.
    pub object_id: Option<String>,
    /// `tid`: the tenant the user signed in to.
    pub tenant_id: Option<String>,
    /// `preferred_username` (the UPN at Entra; display only, it can change).
    pub upn: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// The audience the token was checked against.
    pub audience: String,
    /// `iss`.
    pub issuer: String,
    /// `exp`.
    pub expires_at: SystemTime,
    /// `iat`.
    pub issued_at: SystemTime,
    /// `nonce`: the value the relying party put in the sign-in request.
    pub nonce: Option<String>,
    /// `auth_time`: when the user last authenticated interactively.
    pub auth_time: Option<SystemTime>,
    /// `amr`: how the user authenticated (`pwd`, `mfa`, `fido`, ...).
    pub amr: Vec<String>,
    /// `acrs`: the authentication context class references the sign-in satisfied.
    pub acrs: Vec<String>,
    /// The token's unique id: `uti` (Entra) or else `jti`.
    pub token_id: Option<String>,
}

/// One usable signing key of a key set.
#[derive(Clone)]
struct Jwk {
    kid: Option<String>,
    /// The JWK's `alg`, when it names one.
    alg: Option<String>,
    material: KeyMaterial,
}

/// A key's public numbers, checked when the key set is parsed; signatures are verified
/// through fido-core's signature backend (*ring* in the CLI, server and binding builds).
#[derive(Clone)]
enum KeyMaterial {
    /// Modulus and exponent, big-endian, within fido-core's RSA bounds (2048–4096 bits,
    /// odd `n`, odd `e` from 3 to 2^33 − 1).
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// A point on P-256 by its affine coordinates.
    P256 { x: [u8; 32], y: [u8; 32] },
}

/// An issuer's signing keys (a parsed JWKS). Keys that are not for signatures, of
/// unsupported types or malformed are skipped.
#[derive(Clone, Default)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks").field("kids", &self.kids()).finish()
    }
}

impl Jwks {
    /// Parses a JWKS document (`{"keys":[...]}`, at most [`MAX_KEYS_DOCUMENT_BYTES`]).
    pub fn from_json(bytes: &[u8]) -> Result<Self, GraphError> {
        let bad = |reason: String| GraphError::OidcKeys { reason };
        if bytes.len() > MAX_KEYS_DOCUMENT_BYTES {
            return Err(bad(format!(
                "key set of {} bytes is larger than the {MAX_KEYS_DOCUMENT_BYTES} allowed",
                bytes.len()
            )));
        }
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("key set is not JSON: {e}")))?;
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("key set has no \"keys\" array".into()))?;
        let keys = list
            .iter()
            .take(MAX_JWKS_KEYS)
            .filter_map(|k| k.as_object().and_then(parse_jwk))
            .collect();
        Ok(Jwks { keys })
    }

    /// The key ids of the usable keys (`None` for keys without one).
    pub fn kids(&self) -> Vec<Option<String>> {
        self.keys.iter().map(|k| k.kid.clone()).collect()
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

fn b64_field(o: &Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    let s = o.get(name)?.as_str()?;
    URL_SAFE_NO_PAD.decode(s).ok()
}

fn parse_jwk(o: &Map<String, Value>) -> Option<Jwk> {
    if let Some(u) = o.get("use") {
        if u.as_str()? != "sig" {
            return None;
        }
    }
    let kid = match o.get("kid") {
        None => None,
        Some(v) => Some(v.as_str()?.to_owned()),
    };
    let alg = match o.get("alg") {
        None => None,
        Some(v) => Some(v.as_str()?.to_owned()),
    };
    let material = match o.get("kty")?.as_str()? {
        "RSA" => {
            let n = b64_field(o, "n")?;
            let e = b64_field(o, "e")?;
            // fido-core's RSA bounds: below 2048 bits is not a key anyone should accept
            // signatures from; above 4096, an even modulus or an odd exponent out of
            // 3..2^33 is not a key an issuer uses. (The signature is not looked at here.)
            verify::check_inputs(
                SignatureAlgorithm::Rs256,
                PublicKeyRef::Rsa { n: &n, e: &e },
                &[],
            )
            .ok()?;
            KeyMaterial::Rsa { n, e }
        }
        "EC" => {
            if o.get("crv")?.as_str()? != "P-256" {
                return None;
            }
            let x: [u8; 32] = b64_field(o, "x")?.try_into().ok()?;
            let y: [u8; 32] = b64_field(o, "y")?.try_into().ok()?;
            let mut sec1 = [0u8; 65];
            sec1[0] = 0x04;
            sec1[1..33].copy_from_slice(&x);
            sec1[33..].copy_from_slice(&y);
            // On the curve and not the identity.
            p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).ok()?;
            KeyMaterial::P256 { x, y }
        }
        _ => return None,
    };
    Some(Jwk { kid, alg, material })
}

fn refuse(claim: &'static str, reason: impl Into<String>) -> GraphError {
    GraphError::Oidc {
        claim,
        reason: reason.into(),
    }
}

fn segment(part: &str, name: &'static str) -> Result<Vec<u8>, GraphError> {
    if part.is_empty() {
        return Err(refuse(name, "empty segment"));
    }
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| refuse(name, "not strict base64url without padding"))
}

fn json_object(bytes: &[u8], name: &'static str) -> Result<Map<String, Value>, GraphError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(refuse(name, "not a JSON object")),
        Err(_) => Err(refuse(name, "not JSON")),
    }
}

fn opt_string(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, GraphError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(refuse(name, "must be a string")),
    }
}

/// A claim that is an array of strings (or a single string, read as one element).
fn opt_strings(claims: &Map<String, Value>, name: &'static str) -> Result<Vec<String>, GraphError> {
    match claims.get(name) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(refuse(name, "array members must be strings")),
            })
            .collect(),
        Some(_) => Err(refuse(name, "must be a string or an array of strings")),
    }
}

/// Refuses access tokens (and anything else that is not an ID token for `audience`).
fn check_id_token(claims: &Map<String, Value>, settings: &OidcSettings) -> Result<(), GraphError> {
    for name in ["scp", "roles", "idtyp"] {
        if claims.contains_key(name) {
            return Err(refuse(
                name,
                "present: this is an access token, not an ID token",
            ));
        }
    }
    match opt_string(claims, "ver")? {
        Some(v) if v == "2.0" => {}
        Some(v) => {
            return Err(refuse(
                "ver",
                format!("{v:?}: only v2.0 ID tokens are accepted"),
            ))
        }
        None if settings.require_version => {
            return Err(refuse(
                "ver",
                "required claim is missing (v2.0 ID tokens carry ver 2.0)",
            ))
        }
        None => {}
    }
    if let Some(azp) = opt_string(claims, "azp")? {
        if azp != settings.audience {
            return Err(refuse(
                "azp",
                format!(
                    "{azp:?} is not the audience {:?}: the token was issued to another client",
                    settings.audience
                ),
            ));
        }
    }
    Ok(())
}

fn req_string(claims: &Map<String, Value>, name: &'static str) -> Result<String, GraphError> {
    opt_string(claims, name)?.ok_or_else(|| refuse(name, "required claim is missing"))
}

/// A NumericDate (seconds since the epoch, fractions allowed), as whole seconds.
fn opt_time(claims: &Map<String, Value>, name: &'static str) -> Result<Option<u64>, GraphError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                return Ok(Some(u));
            }
            match n.as_f64() {
                Some(f) if (0.0..1e15).contains(&f) => Ok(Some(f as u64)),
                _ => Err(refuse(name, "must be a non-negative NumericDate")),
            }
        }
        Some(_) => Err(refuse(name, "must be a number (NumericDate)")),
    }
}

fn req_time(claims: &Map<String, Value>, name: &'static str) -> Result<u64, GraphError> {
    opt_time(claims, name)?.ok_or_else(|| refuse(name, "required claim is missing"))
}

/// Verifies the JWS signature with fido-core's default signature backend (*ring* when
/// fido-core's `verify-ring` feature is on, as in the CLI, server and binding builds;
/// otherwise the pure-Rust `rsa`/`p256` crates). Every failure, malformed signature
/// included, is the one "does not verify" refusal.
fn verify_signature(
    alg: JwsAlg,
    key: &KeyMaterial,
    signing_input: &[u8],
    sig: &[u8],
) -> Result<(), GraphError> {
    let bad = || refuse("signature", "does not verify with the issuer's key");
    let check = |alg: SignatureAlgorithm, key: PublicKeyRef<'_>, sig: &[u8]| {
        verify::verify_signature(verify::default_verifier(), alg, key, signing_input, sig)
            .map_err(|_| bad())
    };
    match (alg, key) {
        (JwsAlg::Rs256, KeyMaterial::Rsa { n, e }) => {
            check(SignatureAlgorithm::Rs256, PublicKeyRef::Rsa { n, e }, sig)
        }
        // RFC 7518 3.5: MGF1 with SHA-256 and a salt as long as the hash, as fido-core's PS256.
        (JwsAlg::Ps256, KeyMaterial::Rsa { n, e }) => {
            check(SignatureAlgorithm::Ps256, PublicKeyRef::Rsa { n, e }, sig)
        }
        (JwsAlg::Es256, KeyMaterial::P256 { x, y }) => {
            // JWS carries R || S (RFC 7518 3.4); fido-core takes the DER form.
            let s = p256::ecdsa::Signature::from_slice(sig).map_err(|_| bad())?;
            check(
                SignatureAlgorithm::Es256,
                PublicKeyRef::P256 { x, y },
                s.to_der().as_bytes(),
            )
        }
        _ => Err(refuse(
            "alg",
            format!("{} does not match the key's type", alg.as_str()),
        )),
    }
}

fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// The sans-IO core: verifies `token` against `jwks` and `settings` at `now`.
///
/// An unknown `kid` fails with `claim == "kid"` ([`OidcVerifier`] refetches the keys
/// then).
pub fn verify_with_jwks(
    token: &str,
    jwks: &Jwks,
    settings: &OidcSettings,
    now: SystemTime,
) -> Result<VerifiedToken, GraphError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(refuse(
            "token",
            format!(
                "{} bytes is longer than the {MAX_TOKEN_BYTES} allowed",
                token.len()
            ),
        ));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse(
            "token",
            "not a compact JWS (three base64url segments separated by dots)",
        ));
    };
    let header = json_object(&segment(h, "header")?, "header")?;

    // Header.
    let alg_name = match header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        Some(_) => return Err(refuse("alg", "must be a string")),
        None => return Err(refuse("alg", "header has no alg")),
    };
    if alg_name.eq_ignore_ascii_case("none") || alg_name.starts_with("HS") {
        return Err(refuse(
            "alg",
            format!("{alg_name} is never accepted (unsigned or symmetric)"),
        ));
    }
    let alg = JwsAlg::parse(alg_name)
        .filter(|a| settings.allowed_algs.contains(a))
        .ok_or_else(|| refuse("alg", format!("{alg_name} is not an allowed algorithm")))?;
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(refuse("typ", "must be JWT when present")),
    }
    if header.contains_key("crit") {
        return Err(refuse(
            "crit",
            "critical header extensions are not supported",
        ));
    }
    // The decoded claims are wiped after use, like the token they came from.
    let claims_bytes = zeroize::Zeroizing::new(segment(c, "payload")?);
    let sig = segment(s, "signature")?;
    let kid = opt_string(&header, "kid").map_err(|_| refuse("kid", "must be a string"))?;
    let key = match &kid {
        Some(kid) => jwks
            .keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid.as_str()))
            .ok_or_else(|| refuse("kid", "no key with this id in the issuer's key set"))?,
        None => match jwks.keys.as_slice() {
            [only] => only,
            _ => {
                return Err(refuse(
                    "kid",
                    "header has no kid and the key set does not hold exactly one key",
                ))
            }
        },
    };
    if let Some(key_alg) = &key.alg {
        if key_alg != alg.as_str() {
            return Err(refuse(
                "alg",
                format!("the key is for {key_alg}, the token says {}", alg.as_str()),
            ));
        }
    }
    let signing_input = token
        .get(..h.len() + 1 + c.len())
        .ok_or_else(|| refuse("token", "malformed"))?;
    verify_signature(alg, &key.material, signing_input.as_bytes(), &sig)?;

    // Claims (only after the signature holds).
    let claims = json_object(&claims_bytes, "payload")?;
    let iss = req_string(&claims, "iss")?;
    if iss != settings.issuer {
        return Err(refuse(
            "iss",
            format!("{iss:?} is not the expected issuer {:?}", settings.issuer),
        ));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == settings.audience,
        Some(Value::Array(list)) => {
            let mut found = false;
            for a in list {
                match a {
                    Value::String(a) => found |= *a == settings.audience,
                    _ => return Err(refuse("aud", "array members must be strings")),
                }
            }
            found
        }
        Some(_) => return Err(refuse("aud", "must be a string or an array of strings")),
        None => return Err(refuse("aud", "required claim is missing")),
    };
    if !aud_ok {
        return Err(refuse(
            "aud",
            format!(
                "does not contain the expected audience {:?}",
                settings.audience
            ),
        ));
    }
    let now_s = epoch_secs(now);
    let leeway = settings.leeway.as_secs();
    let exp = req_time(&claims, "exp")?;
    if now_s >= exp.saturating_add(leeway) {
        return Err(refuse("exp", "the token has expired"));
    }
    if let Some(nbf) = opt_time(&claims, "nbf")? {
        if now_s.saturating_add(leeway) < nbf {
            return Err(refuse("nbf", "the token is not valid yet"));
        }
    }
    let iat = req_time(&claims, "iat")?;
    if iat > now_s.saturating_add(leeway) {
        return Err(refuse("iat", "the token was issued in the future"));
    }
    check_id_token(&claims, settings)?;
    let subject = req_string(&claims, "sub")?;
    if subject.is_empty() {
        return Err(refuse("sub", "must not be empty"));
    }
    let object_id = opt_string(&claims, "oid")?;
    if settings.require_object_id && object_id.as_deref().is_none_or(str::is_empty) {
        return Err(refuse(
            "oid",
            "required claim is missing: Entra puts oid in an ID token only when the sign-in asks for the profile scope (scope=openid profile)",
        ));
    }
    let tenant_id = opt_string(&claims, "tid")?;
    if let Some(want) = &settings.tenant_id {
        match &tenant_id {
            Some(t) if t.eq_ignore_ascii_case(want) => {}
            Some(t) => {
                return Err(refuse(
                    "tid",
                    format!("{t:?} is not the expected tenant {want:?}"),
                ))
            }
            None => return Err(refuse("tid", "required claim is missing")),
        }
    }
    let upn = opt_string(&claims, "preferred_username")?;
    let name = opt_string(&claims, "name")?;
    let nonce = opt_string(&claims, "nonce")?;
    let auth_time = opt_time(&claims, "auth_time")?.map(|t| UNIX_EPOCH + Duration::from_secs(t));
    let amr = opt_strings(&claims, "amr")?;
    let acrs = opt_strings(&claims, "acrs")?;
    let token_id = match opt_string(&claims, "uti")? {
        Some(u) => Some(u),
        None => opt_string(&claims, "jti")?,
    }
    .filter(|t| !t.is_empty());
    Ok(VerifiedToken {
        subject,
        object_id,
        tenant_id,
        upn,
        name,
        audience: settings.audience.clone(),
        issuer: iss,
        expires_at: UNIX_EPOCH + Duration::from_secs(exp),
        issued_at: UNIX_EPOCH + Duration::from_secs(iat),
        nonce,
        auth_time,
        amr,
        acrs,
        token_id,
    })
}

/// What a holder's sign-in must show beyond a valid ID token (review G1 of the split
/// design): the nonce of this session, a recent sign-in, multi-factor authentication and
/// the expected tenant. [`check_holder`] applies it to a [`VerifiedToken`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderRequirements {
    /// The nonce the sign-in request carried (in the split protocol
    /// `b64url(SHA-256(session_pub ‖ server_nonce))`); the token's `nonce` must equal it.
    pub expected_nonce: String,
    /// Longest time since the holder authenticated (`auth_time`); 600 s as Entra's own
    /// rule for `/me` passkey registration. A token without `auth_time` is refused.
    pub max_age: Duration,
    /// The sign-in must be multi-factor: `amr` contains `mfa`, or `acrs` holds one of
    /// [`HolderRequirements::accepted_acrs`].
    pub require_mfa: bool,
    /// Authentication contexts (Entra `acrs`, e.g. `c1`) that count as MFA.
    pub accepted_acrs: Vec<String>,
    /// When set, `tid` must be present and equal (the template connection's tenant).
    pub tenant_id: Option<String>,
    /// Clock skew tolerated for an `auth_time` in the future.
    pub leeway: Duration,
}

impl HolderRequirements {
    /// Requirements for `expected_nonce`: 600 s freshness, MFA required, no tenant pin,
    /// 5 minutes leeway.
    pub fn new(expected_nonce: impl Into<String>) -> Self {
        HolderRequirements {
            expected_nonce: expected_nonce.into(),
            max_age: Duration::from_secs(600),
            require_mfa: true,
            accepted_acrs: Vec::new(),
            tenant_id: None,
            leeway: Duration::from_secs(300),
        }
    }
}

/// Checks a verified holder token against `req` at `now`: nonce (compared in constant
/// time), `auth_time` freshness, MFA (`amr ∋ mfa` or an accepted `acrs`), tenant. The
/// refusal names the claim (`nonce`, `auth_time`, `amr`, `tid`).
pub fn check_holder(
    token: &VerifiedToken,
    req: &HolderRequirements,
    now: SystemTime,
) -> Result<(), GraphError> {
    if req.expected_nonce.is_empty() {
        return Err(GraphError::Config {
            setting: "oidc.expected_nonce",
            reason: "must not be empty".into(),
        });
    }
    match &token.nonce {
        None => return Err(refuse("nonce", "required claim is missing")),
        Some(n) => {
            let (a, b) = (n.as_bytes(), req.expected_nonce.as_bytes());
            let same =
                a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
            if !same {
                return Err(refuse("nonce", "is not the nonce of this session"));
            }
        }
    }
    let Some(auth_time) = token.auth_time else {
        return Err(refuse("auth_time", "required claim is missing"));
    };
    let (now_s, at) = (epoch_secs(now), epoch_secs(auth_time));
    if at > now_s.saturating_add(req.leeway.as_secs()) {
        return Err(refuse("auth_time", "the sign-in is in the future"));
    }
    if now_s.saturating_sub(at) > req.max_age.as_secs() {
        return Err(refuse(
            "auth_time",
            format!(
                "the sign-in is {} s old, at most {} s allowed",
                now_s.saturating_sub(at),
                req.max_age.as_secs()
            ),
        ));
    }
    if req.require_mfa
        && !token.amr.iter().any(|m| m == "mfa")
        && !token.acrs.iter().any(|a| req.accepted_acrs.contains(a))
    {
        return Err(refuse(
            "amr",
            format!(
                "multi-factor authentication is required; the sign-in used {:?}",
                token.amr
            ),
        ));
    }
    if let Some(want) = &req.tenant_id {
        match &token.tenant_id {
            Some(t) if t.eq_ignore_ascii_case(want) => {}
            Some(t) => {
                return Err(refuse(
                    "tid",
                    format!("{t:?} is not the expected tenant {want:?}"),
                ))
            }
            None => return Err(refuse("tid", "required claim is missing")),
        }
    }
    Ok(())
}

/// `https://...`, or `http://` to a loopback host only: keysmith's one URL policy.
fn check_url(url: &str) -> Result<(), String> {
    keysmith_url::check(url)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The header's `kid`, when the header decodes.
fn header_kid(token: &str) -> Option<String> {
    let h = token.split('.').next()?;
    let header = json_object(&URL_SAFE_NO_PAD.decode(h).ok()?, "header").ok()?;
    header.get("kid")?.as_str().map(str::to_owned)
}

/// Fuzz entry: the sans-IO verifier and the JWKS parser on arbitrary input.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_token(data: &[u8]) {
    let settings = OidcSettings {
        allowed_algs: vec![JwsAlg::Rs256, JwsAlg::Ps256, JwsAlg::Es256],
        ..OidcSettings::new("https://login.example/t/v2.0", "client")
    };
    // The first line is a key set, the rest a token.
    let (keys, token) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => data.split_at(i),
        None => (&[][..], data),
    };
    let jwks = Jwks::from_json(keys).unwrap_or_default();
    let token = String::from_utf8_lossy(token);
    let _ = verify_with_jwks(token.trim(), &jwks, &settings, SystemTime::now());
    let _ = header_kid(&token);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://login.microsoftonline.com/t/v2.0").is_ok());
        assert!(check_url("http://127.0.0.1:8080/t/v2.0").is_ok());
        assert!(check_url("http://evil.example/keys").is_err());
        assert!(check_url("https://user@h/x").is_err());
        assert!(check_url("file:///etc/passwd").is_err());
    }

    #[test]
    fn jwks_skips_unusable_keys() {
        let doc = br#"{"keys":[{"kty":"oct","k":"AAAA"},{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#;
        let j = Jwks::from_json(doc).unwrap();
        assert!(j.is_empty(), "{j:?}");
        assert!(Jwks::from_json(b"[]").is_err());
        assert!(Jwks::from_json(&vec![b' '; MAX_KEYS_DOCUMENT_BYTES + 1]).is_err());
    }

    #[test]
    fn jwks_keeps_rsa_keys_within_the_verifier_bounds() {
        let rsa = |n: &[u8], e: &[u8]| {
            let (n, e) = (URL_SAFE_NO_PAD.encode(n), URL_SAFE_NO_PAD.encode(e));
            let doc = format!(r#"{{"keys":[{{"kty":"RSA","n":"{n}","e":"{e}"}}]}}"#);
            Jwks::from_json(doc.as_bytes()).unwrap().len()
        };
        let (n2048, n4104) = ([0xc5u8; 256], [0xc5u8; 513]);
        assert_eq!(rsa(&n2048, &[1, 0, 1]), 1);
        assert_eq!(rsa(&n2048[1..], &[1, 0, 1]), 0, "2040 bits");
        assert_eq!(rsa(&n4104, &[1, 0, 1]), 0, "over 4096 bits");
        assert_eq!(rsa(&n2048, &[1, 0, 0]), 0, "even exponent");
        assert_eq!(rsa(&[0xc4u8; 256], &[1, 0, 1]), 0, "even modulus");
    }

    #[test]
    fn shape_errors_name_the_part() {
        let s = OidcSettings::new("https://i", "a");
        let j = Jwks::default();
        let claim = |t: &str| match verify_with_jwks(t, &j, &s, SystemTime::now()) {
            Err(GraphError::Oidc { claim, .. }) => claim,
            other => panic!("{other:?}"),
        };
        assert_eq!(claim("a.b"), "token");
        assert_eq!(claim("a.b.c.d"), "token");
        assert_eq!(claim(".b.c"), "header");
        assert_eq!(claim("e30=.e30.c2ln"), "header");
        // {"alg":"none"}
        assert_eq!(claim("eyJhbGciOiJub25lIn0.e30.c2ln"), "alg");
        assert_eq!(claim(&"a".repeat(MAX_TOKEN_BYTES + 1)), "token");
        fuzz_token(b"{}\nxx.yy.zz");
    }

    #[test]
    fn fuzz_seeds_replay() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/oidc_token");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            fuzz_token(&data);
            n += 1;
        }
        assert!(n >= 3, "seeds in {dir:?}");
        // The valid seed really is a key set plus a token signed by it.
        let data = std::fs::read(dir.join("rs256-valid")).unwrap();
        let text = String::from_utf8(data).unwrap();
        let (keys, token) = text.split_once('\n').unwrap();
        let jwks = Jwks::from_json(keys.as_bytes()).unwrap();
        assert_eq!(jwks.kids(), vec![Some("seed-1".to_owned())]);
        let s = OidcSettings::new("https://login.example/t/v2.0", "client");
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        assert_eq!(verify_with_jwks(token, &jwks, &s, at).unwrap().subject, "s");
        let none = std::fs::read_to_string(dir.join("alg-none")).unwrap();
        let (_, token) = none.split_once('\n').unwrap();
        assert!(matches!(
            verify_with_jwks(token, &jwks, &s, at),
            Err(GraphError::Oidc { claim: "alg", .. })
        ));
    }
}

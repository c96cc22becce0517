//! Verifying OAuth 2.0 access tokens (JWT, RFC 9068 shape as Entra issues them) for an
//! API that keysmith serves: `keysmith serve`'s operator API.
//!
//! The same JWS rules as the ID-token verifier (allowed algorithms only, never `none` or
//! HMAC, `typ` JWT when present, no `crit`, the key named by `kid`), then `iss` exactly,
//! `aud` contains the API's audience (its app id URI or client id), `exp`/`nbf`/`iat`
//! with a small leeway, `tid` when configured, and the role claim read as an array of
//! strings. ID tokens are refused (a `nonce` claim marks one). The keys are fetched and
//! cached as by [`super::OidcVerifier`], but asynchronously, for use inside a server's
//! runtime: [`AccessTokenVerifier`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::keys::{KeyCache, KeySource};
use super::{
    check_url, epoch_secs, json_object, opt_string, opt_strings, opt_time, refuse, req_string,
    req_time, segment, verify_signature, Jwks, JwsAlg, MAX_TOKEN_BYTES,
};
use crate::GraphError;

/// What an access token must satisfy, and where the issuer's keys are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenSettings {
    /// Expected `iss`, compared exactly.
    pub issuer: String,
    /// The audience `aud` must contain (the API's app id URI, e.g. `api://keysmith`).
    pub audience: String,
    /// The issuer's JWKS; `None`: from the discovery document under the issuer.
    pub jwks_url: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Algorithms accepted (RS256 and PS256 by default).
    pub allowed_algs: Vec<JwsAlg>,
    /// When set, `tid` must be present and equal to it.
    pub tenant_id: Option<String>,
    /// The claim holding the caller's roles (`roles` at Entra).
    pub roles_claim: String,
    /// Least time between two key fetches caused by unknown key ids.
    pub jwks_refetch_interval: Duration,
    /// Timeout of one HTTP request for the keys or the discovery document.
    pub request_timeout: Duration,
    /// Trust (the OS store plus an optional extra CA file) and proxy for the discovery
    /// and keys endpoints.
    pub network: crate::net::NetworkOptions,
}

impl AccessTokenSettings {
    /// Settings for `issuer` and `audience`: keys through discovery, 60 s leeway, RS256
    /// and PS256, roles in `roles`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        AccessTokenSettings {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            leeway: Duration::from_secs(60),
            allowed_algs: vec![JwsAlg::Rs256, JwsAlg::Ps256],
            tenant_id: None,
            roles_claim: "roles".into(),
            jwks_refetch_interval: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            network: crate::net::NetworkOptions::default(),
        }
    }

    fn validate(&self) -> Result<(), GraphError> {
        self.network.validate()?;
        let config = |setting: &'static str, reason: String| GraphError::Config { setting, reason };
        check_url(&self.issuer).map_err(|r| config("access.issuer", r))?;
        if let Some(u) = &self.jwks_url {
            check_url(u).map_err(|r| config("access.jwks_url", r))?;
        }
        if self.audience.trim().is_empty() {
            return Err(config("access.audience", "must not be empty".into()));
        }
        if self.allowed_algs.is_empty() || self.roles_claim.is_empty() {
            return Err(config(
                "access.allowed_algs",
                "at least one algorithm and a role claim name are needed".into(),
            ));
        }
        Ok(())
    }
}

/// An access token that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAccessToken {
    /// `sub`.
    pub subject: String,
    /// `oid`: the caller's object id, when present.
    pub object_id: Option<String>,
    /// `tid`.
    pub tenant_id: Option<String>,
    /// `preferred_username` or `upn` (display only).
    pub username: Option<String>,
    /// The client the token was issued to (`azp` or `appid`).
    pub client_id: Option<String>,
    /// The role values of the role claim.
    pub roles: Vec<String>,
    /// `exp`.
    pub expires_at: SystemTime,
    /// `uti` or `jti`.
    pub token_id: Option<String>,
}

/// Header, key and signature checks; returns the claims.
fn verify_jws(
    token: &str,
    jwks: &Jwks,
    allowed: &[JwsAlg],
) -> Result<Map<String, Value>, GraphError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(refuse("token", "longer than allowed"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refuse("token", "not a compact JWS"));
    };
    let header = json_object(&segment(h, "header")?, "header")?;
    let alg_name = match header.get("alg") {
        Some(Value::String(a)) => a.as_str(),
        _ => return Err(refuse("alg", "header has no string alg")),
    };
    let alg = JwsAlg::parse(alg_name)
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| refuse("alg", format!("{alg_name} is not an allowed algorithm")))?;
    match header.get("typ") {
        None => {}
        Some(Value::String(t))
            if t.eq_ignore_ascii_case("JWT") || t.eq_ignore_ascii_case("at+jwt") => {}
        Some(_) => return Err(refuse("typ", "must be JWT or at+jwt when present")),
    }
    if header.contains_key("crit") {
        return Err(refuse(
            "crit",
            "critical header extensions are not supported",
        ));
    }
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
            _ => return Err(refuse("kid", "header has no kid")),
        },
    };
    if key.alg.as_deref().is_some_and(|a| a != alg.as_str()) {
        return Err(refuse("alg", "the key is for another algorithm"));
    }
    let signing_input = token
        .get(..h.len() + 1 + c.len())
        .ok_or_else(|| refuse("token", "malformed"))?;
    verify_signature(alg, &key.material, signing_input.as_bytes(), &sig)?;
    json_object(&claims_bytes, "payload")
}

/// The sans-IO check of an access token against `jwks` at `now`.
pub fn verify_access_with_jwks(
    token: &str,
    jwks: &Jwks,
    settings: &AccessTokenSettings,
    now: SystemTime,
) -> Result<VerifiedAccessToken, GraphError> {
    let claims = verify_jws(token, jwks, &settings.allowed_algs)?;
    let iss = req_string(&claims, "iss")?;
    if iss != settings.issuer {
        return Err(refuse("iss", "not the expected issuer"));
    }
    let aud = opt_strings(&claims, "aud")?;
    if !aud.contains(&settings.audience) {
        return Err(refuse("aud", "does not contain the API's audience"));
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
    if let Some(iat) = opt_time(&claims, "iat")? {
        if iat > now_s.saturating_add(leeway) {
            return Err(refuse("iat", "the token was issued in the future"));
        }
    }
    if claims.contains_key("nonce") {
        return Err(refuse(
            "nonce",
            "present: this is an ID token, not an access token",
        ));
    }
    let tenant_id = opt_string(&claims, "tid")?;
    if let Some(want) = &settings.tenant_id {
        if !tenant_id
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(want))
        {
            return Err(refuse("tid", "not the expected tenant"));
        }
    }
    let subject = req_string(&claims, "sub")?;
    if subject.is_empty() {
        return Err(refuse("sub", "must not be empty"));
    }
    let roles = match claims.get(settings.roles_claim.as_str()) {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| refuse("roles", "members must be strings"))?,
        Some(_) => return Err(refuse("roles", "must be an array of strings")),
    };
    let username = match opt_string(&claims, "preferred_username")? {
        Some(u) => Some(u),
        None => opt_string(&claims, "upn")?,
    };
    let client_id = match opt_string(&claims, "azp")? {
        Some(a) => Some(a),
        None => opt_string(&claims, "appid")?,
    };
    let token_id = match opt_string(&claims, "uti")? {
        Some(u) => Some(u),
        None => opt_string(&claims, "jti")?,
    };
    Ok(VerifiedAccessToken {
        subject,
        object_id: opt_string(&claims, "oid")?,
        tenant_id,
        username,
        client_id,
        roles,
        expires_at: UNIX_EPOCH + Duration::from_secs(exp),
        token_id,
    })
}

/// An asynchronous access-token verifier with a cache of the issuer's keys (refetched
/// when older than [`JWKS_MAX_AGE`](super::JWKS_MAX_AGE), or on an unknown `kid` at most once per
/// [`AccessTokenSettings::jwks_refetch_interval`]). `Send + Sync`; share it.
pub struct AccessTokenVerifier {
    settings: AccessTokenSettings,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<KeyCache>,
}

impl std::fmt::Debug for AccessTokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenVerifier")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AccessTokenVerifier {
    /// A verifier for `settings` (checked here); `ca_pem` adds trusted roots for the
    /// issuer's HTTPS endpoints (a private CA), beside the operating system's store and
    /// `settings.network.ca_file`. Keys are fetched on first use.
    pub fn new(settings: AccessTokenSettings, ca_pem: Option<&[u8]>) -> Result<Self, GraphError> {
        settings.validate()?;
        let http = settings
            .network
            .client_builder(ca_pem)
            .map_err(|e| match e {
                GraphError::Config {
                    setting: "ca",
                    reason,
                } => GraphError::Config {
                    setting: "access.ca",
                    reason,
                },
                e => e,
            })?
            .timeout(settings.request_timeout)
            .build()
            .map_err(|e| GraphError::Config {
                setting: "http client",
                reason: e.to_string(),
            })?;
        Ok(AccessTokenVerifier {
            cache: tokio::sync::Mutex::new(KeyCache::new(settings.jwks_url.clone())),
            settings,
            http,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &AccessTokenSettings {
        &self.settings
    }

    /// Verifies `token` at `now`.
    pub async fn verify(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<VerifiedAccessToken, GraphError> {
        if token.len() > MAX_TOKEN_BYTES || token.split('.').count() != 3 {
            return verify_access_with_jwks(token, &Jwks::default(), &self.settings, now);
        }
        let mut cache = self.cache.lock().await;
        if cache.needs_fetch() {
            self.refresh(&mut cache).await?;
        }
        match verify_access_with_jwks(token, &cache.jwks(), &self.settings, now) {
            Err(GraphError::Oidc { claim: "kid", .. })
                if cache.refetch_for(token, self.settings.jwks_refetch_interval) =>
            {
                self.refresh(&mut cache).await?;
                verify_access_with_jwks(token, &cache.jwks(), &self.settings, now)
            }
            other => other,
        }
    }

    async fn refresh(&self, cache: &mut KeyCache) -> Result<(), GraphError> {
        let source = KeySource {
            http: &self.http,
            issuer: &self.settings.issuer,
        };
        source.refresh(cache).await
    }
}

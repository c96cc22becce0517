//! The OpenID Connect side of the emulator, shaped like the Microsoft identity platform
//! v2.0 endpoints: the discovery document, the signing keys (JWKS), RS256 ID tokens for
//! the directory's users, and the resource-owner password grant for scripts and demos.
//!
//! Signing keys: 2048-bit RSA keys, generated once per process (key generation is slow
//! in debug builds) and shared by every emulator of the process. Each emulator starts
//! on the first key; [`super::Emulator::rotate_signing_key`] moves to the next one and
//! keeps the previous key published (as Entra publishes several keys), so after two
//! rotations a token signed before the first is refused. Rotation cycles through
//! [`ROTATION_KEYS`] keys. One more key is never published: tokens signed with it
//! ([`super::Emulator::sign_unpublished`]) must fail signature checks.
//!
//! Key ids are RFC 7638 JWK thumbprints. The published JWKs carry no `x5c`/`x5t`
//! (the emulator has no certificates for them).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand_core::{OsRng, RngCore};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::state::State;
use crate::ids::encode_b64url;
use crate::wire::User;

/// The password the emulator's resource-owner password grant accepts for every enabled
/// directory user (`grant_type=password`): demos and scripts only.
pub const DEMO_PASSWORD: &str = "keysmith-demo-password";

/// How many keys rotation cycles through.
pub const ROTATION_KEYS: usize = 3;

/// Slots `0..ROTATION_KEYS` rotate; the last slot is the unpublished key.
static KEYS: [OnceLock<Option<SigningKey>>; ROTATION_KEYS + 1] = [
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
    OnceLock::new(),
];

pub(crate) struct SigningKey {
    pub(crate) key: RsaPrivateKey,
    pub(crate) kid: String,
    pub(crate) n: String,
    pub(crate) e: String,
}

fn slot(i: usize) -> Result<&'static SigningKey, String> {
    KEYS.get(i)
        .ok_or_else(|| format!("no signing key slot {i}"))?
        .get_or_init(|| {
            let key = RsaPrivateKey::new(&mut OsRng, 2048).ok()?;
            let n = encode_b64url(&key.n().to_bytes_be());
            let e = encode_b64url(&key.e().to_bytes_be());
            // RFC 7638: members in lexicographic order, no whitespace.
            let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
            let kid = encode_b64url(&Sha256::digest(canonical.as_bytes()));
            Some(SigningKey { key, kid, n, e })
        })
        .as_ref()
        .ok_or_else(|| "RSA key generation failed".to_owned())
}

/// The unpublished key (never in any JWKS).
pub(crate) fn unpublished_key() -> Result<&'static SigningKey, String> {
    slot(ROTATION_KEYS)
}

/// The OIDC state of one emulator.
#[derive(Debug, Default)]
pub(crate) struct OidcState {
    /// How many rotations so far.
    pub generation: usize,
    /// Authorization codes issued by `/authorize` (`authorize.rs`).
    pub codes: super::authorize::Codes,
    /// Delegated Graph tokens the code grant issued (`me.rs`).
    pub delegated: super::me::DelegatedTokens,
    /// How long ago `/authorize` sign-ins say the user authenticated (password and MFA):
    /// zero, or a remembered session's age ([`super::Emulator::set_sign_in_age`]).
    pub sign_in_age: std::time::Duration,
}

impl OidcState {
    pub fn current(&self) -> Result<&'static SigningKey, String> {
        slot(self.generation % ROTATION_KEYS)
    }

    /// The keys published now: the current one, then the previous one if any.
    pub fn published(&self) -> Result<Vec<&'static SigningKey>, String> {
        let mut keys = vec![self.current()?];
        if self.generation > 0 {
            keys.push(slot((self.generation - 1) % ROTATION_KEYS)?);
        }
        Ok(keys)
    }
}

pub(crate) fn issuer(base_url: &str, tenant: &str) -> String {
    format!("{base_url}/{tenant}/v2.0")
}

pub(crate) fn jwks_url(base_url: &str, tenant: &str) -> String {
    format!("{base_url}/{tenant}/discovery/v2.0/keys")
}

/// `/{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) fn discovery(base_url: &str, tenant: &str) -> Value {
    let login = format!("{base_url}/{tenant}");
    json!({
        "issuer": issuer(base_url, tenant),
        "authorization_endpoint": format!("{login}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{login}/oauth2/v2.0/token"),
        "device_authorization_endpoint": format!("{login}/oauth2/v2.0/devicecode"),
        "end_session_endpoint": format!("{login}/oauth2/v2.0/logout"),
        "userinfo_endpoint": format!("{base_url}/oidc/userinfo"),
        "jwks_uri": jwks_url(base_url, tenant),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "auth_time", "amr", "acrs", "name", "preferred_username", "oid", "tid", "ver", "nonce", "uti"],
        "tenant_region_scope": "EU",
        "request_uri_parameter_supported": false,
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
    })
}

/// `/{tenant}/discovery/v2.0/keys`.
pub(crate) fn jwks(st: &OidcState) -> Result<Value, String> {
    let keys: Vec<Value> = st
        .published()?
        .into_iter()
        .map(|k| {
            json!({
                "kty": "RSA",
                "use": "sig",
                "kid": k.kid,
                "n": k.n,
                "e": k.e,
            })
        })
        .collect();
    Ok(json!({ "keys": keys }))
}

/// Signs `claims` (a JSON object) as an RS256 compact JWS with `key`.
pub(crate) fn sign(key: &SigningKey, claims: &Value) -> Result<String, String> {
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": key.kid});
    let h = encode_b64url(header.to_string().as_bytes());
    let c = encode_b64url(claims.to_string().as_bytes());
    let input = format!("{h}.{c}");
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key.key.clone());
    let sig = signer
        .try_sign(input.as_bytes())
        .map_err(|e| format!("signing: {e}"))?;
    Ok(format!("{input}.{}", encode_b64url(&sig.to_bytes())))
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// What an emulated sign-in asked for and did: the ID token's nonce, scopes,
/// authentication methods and time ([`super::Emulator::holder_token_with`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderTokenOptions {
    /// The directory user (object id or UPN).
    pub user: String,
    /// The client id the token is for (`aud`).
    pub audience: String,
    /// How long the token is valid from the emulator's clock.
    pub lifetime: Duration,
    /// The `nonce` of the sign-in request, copied into the token (none: no `nonce`).
    pub nonce: Option<String>,
    /// The scopes asked for, space-separated. As at Entra, `oid`, `name` and
    /// `preferred_username` are in the ID token only with the `profile` scope.
    pub scope: String,
    /// `amr`: how the user authenticated (`pwd`, `mfa`, ...); empty: no `amr` claim.
    pub amr: Vec<String>,
    /// `acrs`: authentication contexts the sign-in satisfied; empty: no `acrs` claim.
    pub acrs: Vec<String>,
    /// How long before the token's `iat` the user authenticated (`auth_time`).
    pub auth_age: Duration,
}

impl HolderTokenOptions {
    /// A token for `user` to `audience`, valid an hour: scope `openid profile`, `amr`
    /// `pwd` + `mfa`, authenticated just now, no nonce.
    pub fn new(user: impl Into<String>, audience: impl Into<String>) -> Self {
        HolderTokenOptions {
            user: user.into(),
            audience: audience.into(),
            lifetime: Duration::from_secs(3600),
            nonce: None,
            scope: "openid profile".into(),
            amr: vec!["pwd".into(), "mfa".into()],
            acrs: Vec::new(),
            auth_age: Duration::ZERO,
        }
    }

    /// The same with `nonce`.
    #[must_use]
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }
}

/// The ID token claims Entra issues for `user` after a sign-in described by `opts` (v2.0
/// token): `nonce` when the request had one, `auth_time`, `amr`, `tid`, `uti`, and the
/// profile claims (`oid`, `name`, `preferred_username`) only with the `profile` scope.
pub(crate) fn holder_claims(
    base_url: &str,
    tenant: &str,
    user: &User,
    opts: &HolderTokenOptions,
    now: SystemTime,
) -> Value {
    let audience = opts.audience.as_str();
    // `sub` is pairwise: the same user has a different, opaque subject per app.
    let sub = encode_b64url(&Sha256::digest(
        format!("{tenant}|{audience}|{}", user.id).as_bytes(),
    ));
    let mut uti = [0u8; 16];
    OsRng.fill_bytes(&mut uti);
    let iat = secs(now);
    let mut claims = json!({
        "aud": audience,
        "iss": issuer(base_url, tenant),
        "iat": iat,
        "nbf": iat,
        "exp": iat.saturating_add(opts.lifetime.as_secs()),
        "auth_time": iat.saturating_sub(opts.auth_age.as_secs()),
        "sub": sub,
        "tid": tenant,
        "uti": encode_b64url(&uti),
        "ver": "2.0",
    });
    if opts.scope.split(' ').any(|s| s == "profile") {
        claims["oid"] = json!(user.id);
        claims["name"] = json!(user.display_name);
        claims["preferred_username"] = json!(user.user_principal_name);
    }
    if let Some(n) = &opts.nonce {
        claims["nonce"] = json!(n);
    }
    if !opts.amr.is_empty() {
        claims["amr"] = json!(opts.amr);
    }
    if !opts.acrs.is_empty() {
        claims["acrs"] = json!(opts.acrs);
    }
    claims
}

/// A form field of the password grant refused, as the token endpoint answers it.
pub(crate) struct GrantFailure {
    pub status: u16,
    pub error: &'static str,
    pub code: u64,
    pub description: String,
}

/// A refusal with Entra's `AADSTS{code}` prefix on the description.
pub(crate) fn grant_fail(status: u16, error: &'static str, code: u64, d: &str) -> GrantFailure {
    GrantFailure {
        status,
        error,
        code,
        description: format!("AADSTS{code}: {d}"),
    }
}

/// A form field every grant needs; missing or empty is refused as Entra refuses it.
pub(crate) fn grant_field<'f>(
    form: &'f std::collections::HashMap<String, String>,
    name: &str,
) -> Result<&'f String, GrantFailure> {
    form.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
        grant_fail(
            400,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{name}'."),
        )
    })
}

/// Refuses a `client_id` the tenant has no application for.
pub(crate) fn check_client(
    known_client: impl Fn(&str) -> bool,
    client_id: &str,
) -> Result<(), GrantFailure> {
    if known_client(client_id) {
        return Ok(());
    }
    Err(grant_fail(
        400,
        "unauthorized_client",
        700016,
        &format!("Application with identifier '{client_id}' was not found in the directory."),
    ))
}

/// The user a password grant signs in: present, enabled, and the password right.
pub(crate) fn password_user<'s>(
    st: &'s State,
    username: &str,
    password: &str,
) -> Result<&'s User, GrantFailure> {
    let user = st.find_user(username).ok_or_else(|| {
        grant_fail(
            400,
            "invalid_grant",
            50034,
            "The user account does not exist in this directory.",
        )
    })?;
    if user.account_enabled == Some(false) {
        return Err(grant_fail(
            400,
            "invalid_grant",
            50057,
            "The user account is disabled.",
        ));
    }
    if password.as_bytes() != DEMO_PASSWORD.as_bytes() {
        return Err(grant_fail(
            400,
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        ));
    }
    Ok(user)
}

/// `grant_type=password` (ROPC): checks the client and the user's password
/// ([`DEMO_PASSWORD`]) and answers like Entra, with an `id_token` when `openid` is in
/// the scope (profile claims only with `profile`). Emulator extensions for scripts: a
/// `nonce` field is copied into the ID token (as the authorize endpoint would), and an
/// `amr` field (space-separated, default `pwd mfa`: the emulator models a sign-in that
/// satisfied MFA) sets the methods. The access token it returns is opaque and not accepted by the emulated
/// Graph (delegated permissions are not emulated).
pub(crate) fn password_grant(
    form: &std::collections::HashMap<String, String>,
    base_url: &str,
    st: &State,
    known_client: impl Fn(&str) -> bool,
    oidc: &OidcState,
    lifetime: Duration,
) -> Result<Value, GrantFailure> {
    let client_id = grant_field(form, "client_id")?;
    let username = grant_field(form, "username")?;
    let password = grant_field(form, "password")?;
    check_client(known_client, client_id)?;
    let scope = form.get("scope").map(String::as_str).unwrap_or("");
    let user = password_user(st, username, password)?;
    let tenant = &st.tenant.tenant_id;
    let mut raw = [0u8; 32];
    OsRng.fill_bytes(&mut raw);
    let mut out = json!({
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": format!("emu-user.{}", encode_b64url(&raw)),
    });
    if scope.split(' ').any(|s| s == "openid") {
        let opts = HolderTokenOptions {
            lifetime,
            nonce: form.get("nonce").filter(|n| !n.is_empty()).cloned(),
            scope: scope.to_owned(),
            amr: form
                .get("amr")
                .map_or("pwd mfa", String::as_str)
                .split(' ')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect(),
            ..HolderTokenOptions::new(user.id.clone(), client_id.clone())
        };
        let claims = holder_claims(base_url, tenant, user, &opts, st.now());
        let key = oidc
            .current()
            .map_err(|e| grant_fail(500, "server_error", 50000, &e))?;
        let id_token =
            sign(key, &claims).map_err(|e| grant_fail(500, "server_error", 50000, &e))?;
        out["id_token"] = Value::String(id_token);
    }
    Ok(out)
}

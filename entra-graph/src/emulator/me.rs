//! Graph's `/me` for delegated tokens: a holder registering their own passkey with the
//! token their sign-in gave (authorization code + PKCE at `/authorize`, with a Graph scope
//! beside `openid`).
//!
//! What it models, as documented for v1.0 (docs/ENTRA.md, "Delegated registration"):
//! - `GET /v1.0/me/authentication/fido2Methods/creationOptions` (no parameter) and
//!   `POST /v1.0/me/authentication/fido2Methods`, delegated only, with the scope
//!   `UserAuthMethod-Passkey.ReadWrite` (or `UserAuthenticationMethod.ReadWrite`); a
//!   read scope is enough for listing the holder's own passkeys;
//! - a user managing their own methods must have completed MFA within the last 10
//!   minutes: an older MFA is refused with 401 and a claims challenge
//!   (`WWW-Authenticate: Bearer error="insufficient_claims"`). The documentation pins the
//!   10 minutes, not the answer's shape: the shape is the emulator's;
//! - beta `/me` passkey provisioning is refused (405), as the beta page says self-service
//!   is not supported there.
//!
//! A bearer that is not a delegated token (an application token) is left to the ordinary
//! routing, which refuses `/me` for applications (405).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::server::{error, throttled, Resp};
use super::Shared;

/// How recent the holder's MFA must be to manage their own methods.
pub(crate) const MFA_WINDOW: Duration = Duration::from_secs(600);

/// Most delegated tokens kept; expired ones are dropped first.
const MAX_TOKENS: usize = 10_000;

const WRITE_SCOPES: &[&str] = &[
    "UserAuthMethod-Passkey.ReadWrite",
    "UserAuthenticationMethod.ReadWrite",
];
const READ_SCOPES: &[&str] = &[
    "UserAuthMethod-Passkey.Read",
    "UserAuthMethod-Passkey.ReadWrite",
    "UserAuthenticationMethod.Read",
    "UserAuthenticationMethod.ReadWrite",
];

/// A delegated Graph token the authorization-code grant issued.
#[derive(Clone, Debug)]
pub(crate) struct DelegatedGrant {
    pub user_id: String,
    pub client_id: String,
    /// Graph scopes granted, without the resource prefix.
    pub scopes: Vec<String>,
    /// When the user last completed MFA (the emulator's clock).
    pub mfa_at: SystemTime,
    pub expires: SystemTime,
}

/// The delegated tokens of one emulator.
#[derive(Debug, Default)]
pub(crate) struct DelegatedTokens {
    live: HashMap<String, DelegatedGrant>,
}

impl DelegatedTokens {
    pub(crate) fn insert(&mut self, token: String, grant: DelegatedGrant, now: SystemTime) {
        if self.live.len() >= MAX_TOKENS {
            self.live.retain(|_, g| g.expires > now);
        }
        if self.live.len() < MAX_TOKENS {
            self.live.insert(token, grant);
        }
    }

    fn get(&self, token: &str) -> Option<&DelegatedGrant> {
        self.live.get(token)
    }
}

/// The Graph scopes in a sign-in's `scope` for this emulator's Graph (its own base URL or
/// `https://graph.microsoft.com`), without the resource prefix.
pub(crate) fn graph_scopes(scope: &str, base_url: &str) -> Vec<String> {
    let base = base_url.trim_end_matches('/');
    scope
        .split(' ')
        .filter_map(|s| {
            s.strip_prefix(base)
                .or_else(|| s.strip_prefix("https://graph.microsoft.com"))
                .and_then(|rest| rest.strip_prefix('/'))
        })
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `/{ver}/me/...` for a delegated bearer; `None` when the bearer is not one (the
/// ordinary routing answers).
#[allow(clippy::too_many_arguments)]
pub(crate) fn route(
    shared: &Shared,
    ver: &str,
    method: &str,
    rest: &[&str],
    query: &[(String, String)],
    auth: Option<&str>,
    body: &[u8],
    rid: &str,
) -> Option<Resp> {
    let token = auth.and_then(|a| a.strip_prefix("Bearer "))?;
    let grant = shared.oidc().delegated.get(token).cloned()?;
    let now = shared.state().now();
    if now >= grant.expires {
        return Some(error(
            401,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
            rid,
        ));
    }
    let sub = rest.get(1..).unwrap_or_default();
    let write = match (method, sub) {
        ("GET", ["authentication", "fido2Methods", op]) if op.starts_with("creationOptions") => {
            true
        }
        ("POST", ["authentication", "fido2Methods"]) => true,
        ("GET", ["authentication", "fido2Methods", ..]) => false,
        _ => {
            return Some(error(
                404,
                "UnknownError",
                "The emulator's /me serves the holder's own passkeys only.",
                rid,
            ))
        }
    };
    let needed = if write { WRITE_SCOPES } else { READ_SCOPES };
    if !grant.scopes.iter().any(|s| needed.contains(&s.as_str())) {
        return Some(error(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation: the token lacks the delegated passkey permission.",
            rid,
        ));
    }
    if write && ver != "v1.0" {
        return Some(error(
            405,
            "methodNotAllowed",
            "Self-service passkey provisioning through /me is available on v1.0 only.",
            rid,
        ));
    }
    if write && now.duration_since(grant.mfa_at).unwrap_or_default() > MFA_WINDOW {
        let mut r = error(
            401,
            "InvalidAuthenticationToken",
            "The user must have completed multifactor authentication within the last 10 minutes to manage their own authentication methods. Sign in again.",
            rid,
        );
        r.headers.push((
            "www-authenticate",
            "Bearer realm=\"\", error=\"insufficient_claims\", error_description=\"multifactor authentication within the last 10 minutes is required\"".into(),
        ));
        return Some(r);
    }
    if let Some(r) = throttled(shared, &grant.client_id, method, rid) {
        return Some(r);
    }
    let mut users: Vec<&str> = vec!["users", grant.user_id.as_str()];
    users.extend_from_slice(sub);
    Some(super::graph::graph(
        shared, ver, method, &users, query, body, rid,
    ))
}

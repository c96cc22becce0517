//! The authorization endpoint and the `authorization_code` grant, for native clients
//! (OAuth 2.0 for Native Apps, RFC 8252) with PKCE (RFC 7636).
//!
//! `GET /{tenant}/oauth2/v2.0/authorize` has no sign-in page: it "signs in" the
//! directory user named by `login_hint` at once (with `pwd` + `mfa`, as the password
//! grant models) and answers `302` to the `redirect_uri` with `code` and `state`; tests
//! are the browser and follow the redirect. What it checks, like Entra:
//! - the client is registered; the `redirect_uri` is a loopback one (`http` to
//!   `127.0.0.1`, `[::1]` or `localhost`, any port, RFC 8252 §7.3): every emulated app
//!   counts as a public client registered with `http://localhost`. Anything else is an
//!   error page, never a redirect (AADSTS50011);
//! - `response_type=code`, a `code_challenge` and `code_challenge_method=S256`: `plain`
//!   and a missing challenge are refused (the emulator is stricter than Entra, which
//!   makes PKCE optional for some clients);
//! - `login_hint` names an enabled user.
//!
//! The code is single use, lives 60 seconds on the emulator's clock, and is bound to the
//! client id, the redirect URI, the challenge, the scope and the nonce. The token
//! endpoint checks `code_verifier` against the challenge (S256), the redirect URI and
//! the client, and answers with an ID token minted like every other emulated sign-in
//! (`nonce`, `auth_time`, `amr` `pwd mfa`, `tid`, `uti`, `ver` 2.0, `oid` with the
//! `profile` scope).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::oidc::{
    check_client, grant_fail, grant_field, holder_claims, sign, GrantFailure, HolderTokenOptions,
    OidcState,
};
use super::state::State;
use crate::ids::encode_b64url;

/// How long an authorization code can be redeemed.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// Most codes kept (unredeemed and redeemed); older ones are dropped.
const MAX_CODES: usize = 10_000;

/// An issued authorization code.
#[derive(Clone, Debug)]
pub(crate) struct AuthCode {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    scope: String,
    user_id: String,
    issued: SystemTime,
}

/// The codes of one emulator.
#[derive(Debug, Default)]
pub(crate) struct Codes {
    live: HashMap<String, AuthCode>,
    redeemed: std::collections::HashSet<String>,
}

/// What `/authorize` answers.
pub(crate) enum Outcome {
    /// 302 to this URL.
    Redirect(String),
    /// An error page: status and text (the redirect URI could not be trusted).
    Page(u16, String),
}

fn loopback_redirect(uri: &str) -> bool {
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') || uri.contains('#') {
        return false;
    }
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn b64url_of_len(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `GET /{tenant}/oauth2/v2.0/authorize`.
pub(crate) fn authorize(
    query: &[(String, String)],
    st: &State,
    known_client: impl Fn(&str) -> bool,
    oidc: &mut OidcState,
) -> Outcome {
    let q = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let Some(client_id) = q("client_id") else {
        return Outcome::Page(
            400,
            "AADSTS900144: The request body must contain the following parameter: 'client_id'."
                .into(),
        );
    };
    if !known_client(client_id) {
        return Outcome::Page(
            400,
            format!("AADSTS700016: Application with identifier '{client_id}' was not found in the directory."),
        );
    }
    let redirect_uri = match q("redirect_uri") {
        Some(r) if loopback_redirect(r) => r,
        _ => {
            return Outcome::Page(
                400,
                "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application (loopback http://localhost only).".into(),
            )
        }
    };
    let state = q("state");
    let fail = |error: &str, description: &str| {
        let mut url = format!(
            "{redirect_uri}{}error={}&error_description={}",
            if redirect_uri.contains('?') { '&' } else { '?' },
            enc(error),
            enc(description)
        );
        if let Some(s) = state {
            url.push_str(&format!("&state={}", enc(s)));
        }
        Outcome::Redirect(url)
    };
    if q("response_type") != Some("code") {
        return fail(
            "unsupported_response_type",
            "AADSTS700054: response_type must be 'code' for this client.",
        );
    }
    let Some(challenge) = q("code_challenge") else {
        return fail(
            "invalid_request",
            "AADSTS9002325: Proof Key for Code Exchange is required: code_challenge is missing.",
        );
    };
    if q("code_challenge_method") != Some("S256") {
        return fail(
            "invalid_request",
            "AADSTS501491: code_challenge_method must be S256 (plain is not accepted).",
        );
    }
    if !b64url_of_len(challenge, 43, 43) {
        return fail(
            "invalid_request",
            "AADSTS501491: code_challenge is not a base64url SHA-256 value.",
        );
    }
    let scope = q("scope").unwrap_or("openid");
    let Some(hint) = q("login_hint") else {
        return fail(
            "login_required",
            "AADSTS50058: The emulator signs in the user named by login_hint; none was given.",
        );
    };
    let Some(user) = st.find_user(hint) else {
        return fail(
            "invalid_request",
            "AADSTS50034: The user account does not exist in this directory.",
        );
    };
    if user.account_enabled == Some(false) {
        return fail(
            "access_denied",
            "AADSTS50057: The user account is disabled.",
        );
    }
    let now = st.now();
    let codes = &mut oidc.codes;
    if codes.live.len() + codes.redeemed.len() >= MAX_CODES {
        codes.live.retain(|_, c| c.issued + CODE_LIFETIME > now);
        codes.redeemed.clear();
    }
    let mut raw = [0u8; 32];
    OsRng.fill_bytes(&mut raw);
    let code = encode_b64url(&raw);
    codes.live.insert(
        code.clone(),
        AuthCode {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            challenge: challenge.to_owned(),
            nonce: q("nonce").map(str::to_owned),
            scope: scope.to_owned(),
            user_id: user.id.clone(),
            issued: now,
        },
    );
    let mut url = format!(
        "{redirect_uri}{}code={code}",
        if redirect_uri.contains('?') { '&' } else { '?' }
    );
    if let Some(s) = state {
        url.push_str(&format!("&state={}", enc(s)));
    }
    Outcome::Redirect(url)
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `grant_type=authorization_code` at the token endpoint.
pub(crate) fn code_grant(
    form: &HashMap<String, String>,
    base_url: &str,
    st: &State,
    known_client: impl Fn(&str) -> bool,
    oidc: &mut OidcState,
    lifetime: Duration,
) -> Result<Value, GrantFailure> {
    let client_id = grant_field(form, "client_id")?;
    let code = grant_field(form, "code")?;
    let redirect_uri = grant_field(form, "redirect_uri")?;
    check_client(known_client, client_id)?;
    let codes = &mut oidc.codes;
    // Taken out now: a code is spent by any redemption attempt, good or bad.
    let Some(issued) = codes.live.remove(code.as_str()) else {
        return Err(if codes.redeemed.contains(code.as_str()) {
            grant_fail(
                400,
                "invalid_grant",
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            )
        } else {
            grant_fail(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid: the code is not known.",
            )
        });
    };
    codes.redeemed.insert(code.clone());
    let now = st.now();
    if now >= issued.issued + CODE_LIFETIME {
        return Err(grant_fail(
            400,
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity.",
        ));
    }
    if issued.client_id != *client_id {
        return Err(grant_fail(
            400,
            "invalid_grant",
            70000,
            "The provided authorization code was issued to another client.",
        ));
    }
    if issued.redirect_uri != *redirect_uri {
        return Err(grant_fail(
            400,
            "invalid_grant",
            50148,
            "The redirect_uri does not match the one of the authorization request.",
        ));
    }
    let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
    if !b64url_of_len(verifier, 43, 128) {
        return Err(grant_fail(
            400,
            "invalid_request",
            501481,
            "The code_verifier is missing or malformed (43 to 128 unreserved characters).",
        ));
    }
    let computed = encode_b64url(&Sha256::digest(verifier.as_bytes()));
    if !ct_eq(computed.as_bytes(), issued.challenge.as_bytes()) {
        return Err(grant_fail(
            400,
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        ));
    }
    let user = st.find_user(&issued.user_id).ok_or_else(|| {
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
    let mut raw = [0u8; 32];
    OsRng.fill_bytes(&mut raw);
    let access = format!("emu-user.{}", encode_b64url(&raw));
    // A Graph scope beside `openid`: the access token is a delegated Graph token for
    // this user (`me.rs`), its MFA as old as the sign-in says.
    let graph_scopes = super::me::graph_scopes(&issued.scope, base_url);
    if !graph_scopes.is_empty() {
        oidc.delegated.insert(
            access.clone(),
            super::me::DelegatedGrant {
                user_id: user.id.clone(),
                client_id: client_id.clone(),
                scopes: graph_scopes,
                mfa_at: now
                    .checked_sub(oidc.sign_in_age)
                    .unwrap_or(std::time::UNIX_EPOCH),
                expires: now + lifetime,
            },
            now,
        );
    }
    let mut out = json!({
        "token_type": "Bearer",
        "scope": issued.scope,
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": access,
    });
    if issued.scope.split(' ').any(|s| s == "openid") {
        let opts = HolderTokenOptions {
            lifetime,
            nonce: issued.nonce.clone(),
            scope: issued.scope.clone(),
            auth_age: oidc.sign_in_age,
            ..HolderTokenOptions::new(user.id.clone(), client_id.clone())
        };
        let claims = holder_claims(base_url, &st.tenant.tenant_id, user, &opts, now);
        let key = oidc
            .current()
            .map_err(|e| grant_fail(500, "server_error", 50000, &e))?;
        out["id_token"] = Value::String(
            sign(key, &claims).map_err(|e| grant_fail(500, "server_error", 50000, &e))?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_redirects() {
        assert!(loopback_redirect("http://127.0.0.1:5000/callback"));
        assert!(loopback_redirect("http://[::1]:5000/"));
        assert!(loopback_redirect("http://localhost/x"));
        assert!(!loopback_redirect("https://127.0.0.1/x"));
        assert!(!loopback_redirect("http://evil.example/x"));
        assert!(!loopback_redirect("http://127.0.0.1.evil.example/x"));
        assert!(!loopback_redirect("http://user@127.0.0.1/x"));
        assert!(!loopback_redirect("http://127.0.0.1/x#frag"));
        assert_eq!(enc("a b&c"), "a%20b%26c");
    }
}

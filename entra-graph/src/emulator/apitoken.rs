//! Access tokens for an API other than Graph (the keysmith operator API), with app roles:
//! what Entra issues when a user signs in to a client and asks for
//! `scope={app id URI}/.default` of an API whose app roles are assigned to the user.
//!
//! Emulated through the resource-owner password grant (`grant_type=password` at the
//! token endpoint with a registered `client_id`, a directory user's UPN, the demo
//! password and a scope ending in `/.default` that is not Graph's): the answer's
//! `access_token` is an RS256 JWT signed with the emulator's current OIDC key (the one
//! its JWKS publishes), v2.0 shape: `aud` = the app id URI (the scope without
//! `/.default`), `iss` = the OIDC issuer, `sub`, `oid`, `tid`, `azp` = the client,
//! `preferred_username`, `uti`, `ver` `2.0`, `idtyp` `user`, and `roles`.
//!
//! App role assignments: a fixture group whose display name is `approle:<value>` assigns
//! the app role `<value>` to its members, directly or through nested groups (Entra lets
//! app roles be assigned to groups). A user in no such group gets a token without
//! `roles`, as at Entra.

use std::collections::HashMap;
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use serde_json::{json, Value};

use super::oidc::{
    check_client, grant_fail, grant_field, issuer, password_user, sign, GrantFailure, OidcState,
};
use super::state::State;
use crate::ids::encode_b64url;

/// The display-name prefix of groups that assign an app role.
pub(crate) const APP_ROLE_GROUP_PREFIX: &str = "approle:";

/// The API's app id URI when the form is a password grant asking for an API's
/// `.default` scope (not Graph's, not an OIDC scope).
pub(crate) fn api_audience(form: &HashMap<String, String>) -> Option<String> {
    if form.get("grant_type").map(String::as_str) != Some("password") {
        return None;
    }
    let scope = form.get("scope")?;
    scope.split(' ').find_map(|s| {
        let aud = s.strip_suffix("/.default")?;
        (!aud.is_empty() && !aud.contains("graph.microsoft.com")).then(|| aud.to_owned())
    })
}

/// Answers the password grant for an API access token (see the module docs).
pub(crate) fn api_token(
    form: &HashMap<String, String>,
    audience: &str,
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
    let user = password_user(st, username, password)?;
    let member_of = st.groups_of(&user.id);
    let mut roles: Vec<String> = st
        .tenant
        .groups
        .iter()
        .filter(|g| member_of.iter().any(|m| m.eq_ignore_ascii_case(&g.id)))
        .filter_map(|g| g.display_name.strip_prefix(APP_ROLE_GROUP_PREFIX))
        .map(str::to_owned)
        .collect();
    roles.sort();
    roles.dedup();
    let tenant = &st.tenant.tenant_id;
    let now = st
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let mut uti = [0u8; 16];
    OsRng.fill_bytes(&mut uti);
    let sub = {
        use sha2::Digest as _;
        encode_b64url(&sha2::Sha256::digest(
            format!("{tenant}|{audience}|{}", user.id).as_bytes(),
        ))
    };
    let mut claims = json!({
        "aud": audience,
        "iss": issuer(base_url, tenant),
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(lifetime.as_secs()),
        "sub": sub,
        "oid": user.id,
        "tid": tenant,
        "azp": client_id,
        "azpacr": "0",
        "idtyp": "user",
        "preferred_username": user.user_principal_name,
        "name": user.display_name,
        "uti": encode_b64url(&uti),
        "ver": "2.0",
    });
    if !roles.is_empty() {
        claims["roles"] = json!(roles);
    }
    let key = oidc
        .current()
        .map_err(|e| grant_fail(500, "server_error", 50000, &e))?;
    let token = sign(key, &claims).map_err(|e| grant_fail(500, "server_error", 50000, &e))?;
    Ok(json!({
        "token_type": "Bearer",
        "scope": format!("{audience}/.default"),
        "expires_in": lifetime.as_secs(),
        "ext_expires_in": lifetime.as_secs(),
        "access_token": token,
    }))
}

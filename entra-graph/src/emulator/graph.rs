//! The Graph resources of the emulator: users and groups (paged, filtered), FIDO2
//! methods, creation options and registration.

use std::time::Duration;

use rand_core::{OsRng, RngCore};
use serde::Serialize;

use super::server::{error, json, no_content, q, Resp};
use super::state::{iso8601, IssuedChallenge};
use super::validate::{validate_registration, RegistrationContext};
use super::Shared;
use crate::ids::{decode_b64url_strict, encode_b64url, encode_with_padding_digit};
use crate::wire::{DirectoryObject, Page, User};

fn not_found_user(key: &str, rid: &str) -> Resp {
    error(
        404,
        "Request_ResourceNotFound",
        &format!("Resource '{key}' does not exist or one of its queried reference-property objects are not present."),
        rid,
    )
}

pub(super) fn graph(
    shared: &Shared,
    ver: &str,
    method: &str,
    rest: &[&str],
    query: &[(String, String)],
    body: &[u8],
    rid: &str,
) -> Resp {
    let ctx = |frag: &str| format!("{}/{ver}/$metadata#{frag}", shared.base_url);
    match (method, rest) {
        (_, ["me", ..]) => error(405, "methodNotAllowed", "The /me target is only valid with delegated authentication and cannot target the caller for passkey provisioning.", rid),
        ("GET", ["users"]) => {
            let st = shared.state();
            let users: Vec<User> = match q(query, "$filter") {
                None => st.tenant.users.clone(),
                // `in` on the properties `eq` takes, at most 15 values (Graph's limit).
                Some(f) if f.contains(" in (") => match parse_in(f) {
                    Some((field, values)) if values.len() <= MAX_IN_VALUES => st
                        .tenant
                        .users
                        .iter()
                        .filter(|u| user_field(u, &field).is_some_and(|v| values.iter().any(|x| v.eq_ignore_ascii_case(x))))
                        .cloned()
                        .collect(),
                    Some(_) => return error(400, "Request_UnsupportedQuery", "Too many values in the 'in' operator: at most 15 are allowed.", rid),
                    None => return error(400, "Request_UnsupportedQuery", "Unsupported Query.", rid),
                },
                Some(f) => match (parse_startswith(f), parse_eq(f)) {
                    (Some(conds), _) => st
                        .tenant
                        .users
                        .iter()
                        .filter(|u| conds.iter().any(|(field, prefix)| user_field(u, field).is_some_and(|v| v.to_lowercase().starts_with(&prefix.to_lowercase()))))
                        .cloned()
                        .collect(),
                    // `eq` on the properties that support it (userPrincipalName, mail,
                    // employeeId, onPremisesImmutableId): case-insensitive like Graph.
                    (None, Some((field, value))) => st
                        .tenant
                        .users
                        .iter()
                        .filter(|u| user_field(u, &field).is_some_and(|v| v.eq_ignore_ascii_case(&value)))
                        .cloned()
                        .collect(),
                    (None, None) => return error(400, "Request_UnsupportedQuery", "Unsupported Query.", rid),
                },
            };
            drop(st);
            page(shared, ver, "users", query, users, ctx("users"), rid)
        }
        ("GET", ["users", "delta"]) => users_delta(shared, ver, query, rid),
        ("GET", ["users", key]) => {
            let st = shared.state();
            match st.find_user(key) {
                Some(u) => {
                    let mut v = serde_json::to_value(u).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("@odata.context".into(), ctx("users/$entity").into());
                    }
                    json(200, &v)
                }
                None => not_found_user(key, rid),
            }
        }
        ("GET", ["users", key, "authentication", "fido2Methods"]) => {
            let st = shared.state();
            let Some(uid) = st.find_user(key).map(|u| u.id.clone()) else {
                return not_found_user(key, rid);
            };
            // lastUsedDateTime is a beta property (FACTS 2026).
            let v1 = ver == "v1.0";
            let lag = shared.knobs().replication_lag;
            let methods: Vec<_> = st
                .methods
                .get(&uid)
                .map(|v| v.iter().filter(|m| m.stored_at.elapsed() >= lag).map(|m| crate::wire::Fido2Method { last_used_date_time: m.method.last_used_date_time.clone().filter(|_| !v1), ..m.method.clone() }).collect())
                .unwrap_or_default();
            drop(st);
            let path = format!("users/{key}/authentication/fido2Methods");
            let c = ctx(&format!("users('{key}')/authentication/fido2Methods"));
            page(shared, ver, &path, query, methods, c, rid)
        }
        ("POST", ["users", key, "authentication", "fido2Methods"]) => register(shared, ver, key, body, rid),
        ("GET", ["users", key, "authentication", "fido2Methods", op]) if op.starts_with("creationOptions") => {
            creation_options(shared, ver, key, op, query, rid)
        }
        ("GET" | "DELETE", ["users", key, "authentication", "fido2Methods", mid]) => {
            let mut st = shared.state();
            let Some(uid) = st.find_user(key).map(|u| u.id.clone()) else {
                return not_found_user(key, rid);
            };
            let list = st.methods.entry(uid).or_default();
            let Some(pos) = list.iter().position(|m| m.method.id == *mid) else {
                return error(404, "itemNotFound", "The specified fido2AuthenticationMethod was not found.", rid);
            };
            if method == "DELETE" {
                list.remove(pos);
                return no_content();
            }
            let mut v = serde_json::to_value(&list[pos].method).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("@odata.context".into(), ctx("users/authentication/fido2Methods/$entity").into());
            }
            json(200, &v)
        }
        ("GET", ["users", key, "authentication", "methods"]) => {
            let st = shared.state();
            let Some(uid) = st.find_user(key).map(|u| u.id.clone()) else {
                return not_found_user(key, rid);
            };
            // Every user has a password; then passkeys; then the other methods seeded.
            let mut all = vec![serde_json::json!({
                "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
                "id": "28c10230-6103-485e-b985-444c60001490",
                "password": null,
            })];
            let lag = shared.knobs().replication_lag;
            for m in st.methods.get(&uid).into_iter().flatten().filter(|m| m.stored_at.elapsed() >= lag) {
                all.push(serde_json::to_value(&m.method).unwrap_or_default());
            }
            all.extend(st.other_methods.get(&uid).into_iter().flatten().cloned());
            drop(st);
            page(shared, ver, &format!("users/{key}/authentication/methods"), query, all, ctx(&format!("users('{key}')/authentication/methods")), rid)
        }
        (_, ["users", key, "authentication", "temporaryAccessPassMethods", rest @ ..]) => {
            temporary_access_pass(shared, ver, method, key, rest, body, rid)
        }
        ("POST", ["users", key, "revokeSignInSessions"]) => {
            let mut st = shared.state();
            let Some(uid) = st.find_user(key).map(|u| u.id.clone()) else {
                return not_found_user(key, rid);
            };
            let now = st.now();
            st.sessions_revoked.entry(uid).or_default().push(now);
            json(200, &serde_json::json!({"@odata.context": ctx("Edm.Boolean"), "value": true}))
        }
        ("POST", ["users", key, "checkMemberGroups"]) => check_member_groups(shared, ver, key, body, rid),
        ("GET", ["users", key, "transitiveMemberOf"]) => {
            let st = shared.state();
            let Some(uid) = st.find_user(key).map(|u| u.id.clone()) else {
                return not_found_user(key, rid);
            };
            let groups: Vec<DirectoryObject> = st
                .groups_of(&uid)
                .iter()
                .filter_map(|gid| st.tenant.groups.iter().find(|g| g.id.eq_ignore_ascii_case(gid)))
                .map(|g| DirectoryObject {
                    odata_type: Some("#microsoft.graph.group".into()),
                    id: g.id.clone(),
                    display_name: Some(g.display_name.clone()),
                    user_principal_name: None,
                    mail: None,
                })
                .collect();
            drop(st);
            page(shared, ver, &format!("users/{key}/transitiveMemberOf"), query, groups, ctx("directoryObjects"), rid)
        }
        ("GET", ["groups", gid, "members"]) => {
            let st = shared.state();
            let Some(g) = st.tenant.groups.iter().find(|g| g.id.eq_ignore_ascii_case(gid)) else {
                return not_found_user(gid, rid);
            };
            let members: Vec<DirectoryObject> = g
                .members
                .iter()
                .filter_map(|m| match st.find_user(m) {
                    Some(u) => Some(DirectoryObject {
                        odata_type: Some("#microsoft.graph.user".into()),
                        id: u.id.clone(),
                        display_name: u.display_name.clone(),
                        user_principal_name: u.user_principal_name.clone(),
                        mail: u.mail.clone(),
                    }),
                    // A nested group.
                    None => st.tenant.groups.iter().find(|n| n.id.eq_ignore_ascii_case(m)).map(|n| DirectoryObject {
                        odata_type: Some("#microsoft.graph.group".into()),
                        id: n.id.clone(),
                        display_name: Some(n.display_name.clone()),
                        user_principal_name: None,
                        mail: None,
                    }),
                })
                .collect();
            drop(st);
            page(shared, ver, &format!("groups/{gid}/members"), query, members, ctx("directoryObjects"), rid)
        }
        ("GET", ["policies", "authenticationMethodsPolicy", "authenticationMethodConfigurations", id])
            if id.eq_ignore_ascii_case("fido2") =>
        {
            let mut p = shared.state().policy.clone();
            p.context = Some(ctx("policies/authenticationMethodsPolicy/authenticationMethodConfigurations/$entity"));
            // v1.0: passkeyProfiles is a non-contained navigation property (CSDL), not
            // inline unless expanded; beta returns it inline.
            let expanded = q(query, "$expand").is_some_and(|e| e.split(',').any(|x| x.trim() == "passkeyProfiles"));
            let mut v = serde_json::to_value(&p).unwrap_or_default();
            if ver == "v1.0" && !expanded {
                if let Some(o) = v.as_object_mut() {
                    o.remove("passkeyProfiles");
                }
            }
            json(200, &v)
        }
        ("PATCH", ["policies", "authenticationMethodsPolicy", "authenticationMethodConfigurations", id]) if id.eq_ignore_ascii_case("fido2") => super::policy2026::patch_policy(shared, body, rid),
        ("POST", ["users", key, "identityVerificationStatus", "verificationEvents"]) => super::provenance::post_event(shared, ver, key, body, rid),
        ("POST", ["users", key, "authentication", "methods", mid, "attestProvenance"]) => super::provenance::attest(shared, ver, key, mid, body, rid),
        (_, [first, ..]) => error(400, "BadRequest", &format!("Resource not found for the segment '{first}'."), rid),
        _ => error(400, "BadRequest", "Invalid request.", rid),
    }
}

fn user_field<'a>(u: &'a User, field: &str) -> Option<&'a str> {
    match field {
        "displayName" => u.display_name.as_deref(),
        "userPrincipalName" => u.user_principal_name.as_deref(),
        "mail" => u.mail.as_deref(),
        "givenName" => u.given_name.as_deref(),
        "surname" => u.surname.as_deref(),
        "employeeId" => u.employee_id.as_deref(),
        "onPremisesImmutableId" => u.on_premises_immutable_id.as_deref(),
        "id" => Some(u.id.as_str()),
        _ => None,
    }
}

/// Parses `startswith(field,'v') [or startswith(field,'v')]...` (quotes doubled inside).
fn parse_startswith(filter: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in filter.split(" or ") {
        let inner = part.trim().strip_prefix("startswith(")?.strip_suffix(')')?;
        let (field, value) = inner.split_once(',')?;
        let value = value
            .trim()
            .strip_prefix('\'')?
            .strip_suffix('\'')?
            .replace("''", "'");
        out.push((field.trim().to_owned(), value));
    }
    Some(out)
}

/// Parses `field eq 'v'` (quotes doubled inside) for the fields Graph filters by `eq`.
fn parse_eq(filter: &str) -> Option<(String, String)> {
    let (field, value) = filter.split_once(" eq ")?;
    let field = field.trim();
    if !matches!(
        field,
        "userPrincipalName"
            | "mail"
            | "employeeId"
            | "onPremisesImmutableId"
            | "id"
            | "displayName"
    ) {
        return None;
    }
    let value = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    if value.replace("''", "").contains('\'') {
        return None;
    }
    Some((field.to_owned(), value.replace("''", "'")))
}

/// Most values Graph takes in one `in` (its documented query-parameter limit).
const MAX_IN_VALUES: usize = 15;

/// Parses `field in ('a','b',…)` (quotes doubled inside) for the fields `eq` takes.
fn parse_in(filter: &str) -> Option<(String, Vec<String>)> {
    let (field, list) = filter.split_once(" in ")?;
    let (field, _) = parse_eq(&format!("{} eq ''", field.trim()))?;
    let list = list.trim().strip_prefix('(')?.strip_suffix(')')?;
    let mut values = Vec::new();
    let mut chars = list.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next()? != '\'' {
            return None;
        }
        let mut v = String::new();
        loop {
            match chars.next()? {
                '\'' if chars.next_if_eq(&'\'').is_some() => v.push('\''),
                '\'' => break,
                c => v.push(c),
            }
        }
        values.push(v);
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => return Some((field, values)),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

fn page<T: Serialize>(
    shared: &Shared,
    ver: &str,
    path: &str,
    query: &[(String, String)],
    items: Vec<T>,
    context: String,
    rid: &str,
) -> Resp {
    let top = match q(query, "$top").map(str::parse::<usize>) {
        None => shared.config.page_size,
        Some(Ok(n)) if (1..=999).contains(&n) => n,
        Some(_) => {
            return error(
                400,
                "BadRequest",
                "Invalid page size specified: '$top' must be between 1 and 999.",
                rid,
            )
        }
    };
    let skip = match q(query, "$skiptoken") {
        None => 0,
        Some(t) => match decode_b64url_strict(t, "$skiptoken")
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("skip=")
                    .and_then(|n| n.parse::<usize>().ok())
            }) {
            Some(n) => n,
            None => return error(400, "BadRequest", "Invalid skip token.", rid),
        },
    };
    let total = items.len();
    let value: Vec<T> = items.into_iter().skip(skip).take(top).collect();
    let next = skip + value.len();
    let next_link = (next < total).then(|| {
        let mut link = format!(
            "{}/{ver}/{path}?$top={top}&$skiptoken={}",
            shared.base_url,
            encode_b64url(format!("skip={next}").as_bytes())
        );
        if let Some(f) = q(query, "$filter") {
            link.push_str("&$filter=");
            link.push_str(&crate::encode_segment(f));
        }
        link
    });
    json(
        200,
        &Page {
            context: Some(context),
            next_link,
            value,
        },
    )
}

fn creation_options(
    shared: &Shared,
    ver: &str,
    key: &str,
    op: &str,
    query: &[(String, String)],
    rid: &str,
) -> Resp {
    if q(query, "challengeTimeoutInMinutes").is_some() {
        return error(405, "methodNotAllowed", "The query-string form of challengeTimeoutInMinutes is not supported; use creationOptions(challengeTimeoutInMinutes=N).", rid);
    }
    let minutes: u64 = if op == "creationOptions" {
        5
    } else {
        let Some(arg) = op
            .strip_prefix("creationOptions(challengeTimeoutInMinutes=")
            .and_then(|a| a.strip_suffix(')'))
        else {
            return error(
                400,
                "BadRequest",
                &format!("Resource not found for the segment '{op}'."),
                rid,
            );
        };
        if ver == "v1.0" {
            return error(
                400,
                "BadRequest",
                "creationOptions on v1.0 takes no parameter.",
                rid,
            );
        }
        match arg.parse::<u64>() {
            Ok(m) if (5..=43_200).contains(&m) => m,
            _ => {
                return error(
                    400,
                    "badRequest",
                    "challengeTimeoutInMinutes must be between 5 and 43200.",
                    rid,
                )
            }
        }
    };
    let extensions = shared
        .knobs()
        .creation_extensions
        .clone()
        .unwrap_or_else(|| {
            serde_json::json!({
                "hmacCreateSecret": true,
                "enforceCredentialProtectionPolicy": true,
                "credentialProtectionPolicy": "userVerificationOptional",
            })
        });
    let mut st = shared.state();
    let Some(user) = st.find_user(key).cloned() else {
        return not_found_user(key, rid);
    };
    // A disabled FIDO2 method, or a user outside its targets, fails here with 400, as
    // Entra answers (entraYK's error hints: "400 on creationOptions").
    let scope = crate::policy::UserScope::new(user.id.clone(), st.groups_of(&user.id));
    if st.policy.state != crate::wire::MethodState::Enabled
        || crate::policy::check_targets(&st.policy, &scope).is_err()
    {
        return error(
            400,
            "badRequest",
            "The FIDO2 authentication method is not enabled for this user.",
            rid,
        );
    }
    st.evict_challenges();
    let mut raw = vec![0u8; shared.config.challenge_bytes.clamp(16, 16 * 1024)];
    OsRng.fill_bytes(&mut raw);
    let challenge = encode_b64url(&raw);
    let expires = st.now() + Duration::from_secs(minutes * 60);
    st.challenges.insert(
        challenge.clone(),
        IssuedChallenge {
            user_id: user.id.clone(),
            expires,
        },
    );
    // v1.0 documents exclude ids as base64url without padding; beta writes them like
    // method ids, with a padding digit.
    let v1 = ver == "v1.0";
    let exclude: Vec<serde_json::Value> = st
        .methods
        .get(&user.id)
        .map(|v| {
            v.iter()
                .map(|m| {
                    let id = if v1 {
                        encode_b64url(&m.credential_id)
                    } else {
                        encode_with_padding_digit(&m.credential_id)
                    };
                    serde_json::json!({"id": id, "type": "public-key", "transports": []})
                })
                .collect()
        })
        .unwrap_or_default();
    json(
        200,
        &serde_json::json!({
            "@odata.context": format!("{}/{ver}/$metadata#microsoft.graph.webauthnCredentialCreationOptions", shared.base_url),
            "challengeTimeoutDateTime": iso8601(expires),
            "publicKey": {
                "challenge": challenge,
                "timeout": 60000,
                "attestation": "direct",
                "rp": {"id": shared.config.rp_id, "name": "Microsoft"},
                "user": {
                    "id": encode_b64url(user.id.as_bytes()),
                    "name": user.user_principal_name,
                    "displayName": user.display_name,
                },
                "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
                "excludeCredentials": exclude,
                "authenticatorSelection": {
                    "authenticatorAttachment": "cross-platform",
                    "requireResidentKey": true,
                    "userVerification": "required",
                },
                "extensions": extensions,
            }
        }),
    )
}

fn register(shared: &Shared, ver: &str, key: &str, body: &[u8], rid: &str) -> Resp {
    let mut st = shared.state();
    let Some(uid) = st.find_user(key).map(|u| u.id.clone()) else {
        return not_found_user(key, rid);
    };
    let existing = st.methods.get(&uid).cloned().unwrap_or_default();
    let user_groups = st.groups_of(&uid);
    let ctx = RegistrationContext {
        user_groups: &user_groups,
        user_id: &uid,
        rp_id: &shared.config.rp_id,
        now: st.now(),
        challenges: &st.challenges,
        policy: &st.policy,
        existing: &existing,
        v1: ver == "v1.0",
        trust: st.trust.as_deref(),
    };
    match validate_registration(body, &ctx) {
        Ok(accepted) => {
            // A challenge stays valid until it expires, as at Entra (a live-tenant test
            // registers two passkeys from one creationOptions answer, DSI-TEST).
            let mut v = serde_json::to_value(&accepted.stored.method).unwrap_or_default();
            st.methods.entry(uid).or_default().push(accepted.stored);
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "@odata.context".into(),
                    format!(
                        "{}/{ver}/$metadata#users('{key}')/authentication/fido2Methods/$entity",
                        shared.base_url
                    )
                    .into(),
                );
            }
            json(201, &v)
        }
        Err(rej) => error(rej.status, rej.code, &rej.message, rid),
    }
}

/// `POST /users/{id}/checkMemberGroups` `{"groupIds": [...]}` (at most 20): the ids, of
/// those asked, of the groups the user is in, directly or transitively.
fn check_member_groups(shared: &Shared, ver: &str, key: &str, body: &[u8], rid: &str) -> Resp {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Body {
        group_ids: Vec<String>,
    }
    let Ok(req) = serde_json::from_slice::<Body>(body) else {
        return error(
            400,
            "Request_BadRequest",
            "Invalid request body: expected {\"groupIds\": [...]}.",
            rid,
        );
    };
    if req.group_ids.len() > crate::CHECK_MEMBER_GROUPS_MAX {
        return error(
            400,
            "Request_BadRequest",
            "The number of group ids exceeds the limit of 20.",
            rid,
        );
    }
    let st = shared.state();
    let Some(uid) = st.find_user(key).map(|u| u.id.clone()) else {
        return not_found_user(key, rid);
    };
    let mine = st.groups_of(&uid);
    let value: Vec<&String> = req
        .group_ids
        .iter()
        .filter(|g| mine.iter().any(|m| m.eq_ignore_ascii_case(g)))
        .collect();
    json(
        200,
        &serde_json::json!({
            "@odata.context": format!("{}/{ver}/$metadata#Collection(Edm.String)", shared.base_url),
            "value": value,
        }),
    )
}

/// Temporary Access Pass: create (one per user, lifetime 10–43 200 minutes, only
/// `startDateTime`, `lifetimeInMinutes` and `isUsableOnce` accepted), list (no pass
/// value), delete.
fn temporary_access_pass(
    shared: &Shared,
    ver: &str,
    method: &str,
    key: &str,
    rest: &[&str],
    body: &[u8],
    rid: &str,
) -> Resp {
    let mut st = shared.state();
    let Some(uid) = st.find_user(key).map(|u| u.id.clone()) else {
        return not_found_user(key, rid);
    };
    let ctx = format!(
        "{}/{ver}/$metadata#users('{key}')/authentication/temporaryAccessPassMethods",
        shared.base_url
    );
    match (method, rest) {
        ("GET", []) => {
            let value: Vec<serde_json::Value> = st.taps.get(&uid).cloned().into_iter().collect();
            json(
                200,
                &serde_json::json!({"@odata.context": ctx, "value": value}),
            )
        }
        ("DELETE", [id]) => match st.taps.get(&uid) {
            Some(t) if t["id"] == *id => {
                st.taps.remove(&uid);
                no_content()
            }
            _ => error(
                404,
                "itemNotFound",
                "The specified temporaryAccessPassAuthenticationMethod was not found.",
                rid,
            ),
        },
        ("POST", []) => {
            let Ok(serde_json::Value::Object(req)) =
                serde_json::from_slice::<serde_json::Value>(body)
            else {
                return error(
                    400,
                    "badRequest",
                    "The request is missing a temporaryAccessPassAuthenticationMethod entity.",
                    rid,
                );
            };
            if let Some(k) = req.keys().find(|k| {
                !matches!(
                    k.as_str(),
                    "startDateTime" | "lifetimeInMinutes" | "isUsableOnce" | "@odata.type"
                )
            }) {
                return error(400, "badRequest", &format!("The property '{k}' does not exist on type 'temporaryAccessPassAuthenticationMethod'."), rid);
            }
            let lifetime = req
                .get("lifetimeInMinutes")
                .and_then(|v| v.as_u64())
                .unwrap_or(60);
            if !(10..=43_200).contains(&lifetime) {
                return error(
                    400,
                    "badRequest",
                    "lifetimeInMinutes must be between 10 and 43200.",
                    rid,
                );
            }
            if st.taps.contains_key(&uid) {
                return error(
                    400,
                    "badRequest",
                    "A user can only have one Temporary Access Pass.",
                    rid,
                );
            }
            let mut raw = [0u8; 9];
            OsRng.fill_bytes(&mut raw);
            let pass = encode_b64url(&raw);
            let now = iso8601(st.now());
            let method = serde_json::json!({
                "@odata.type": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
                "id": crate::http::request_id(),
                "createdDateTime": now,
                "startDateTime": req.get("startDateTime").cloned().unwrap_or_else(|| now.clone().into()),
                "lifetimeInMinutes": lifetime,
                "isUsableOnce": req.get("isUsableOnce").and_then(|v| v.as_bool()).unwrap_or(false),
                "isUsable": true,
                "methodUsabilityReason": "EnabledByPolicy",
            });
            st.taps.insert(uid, method.clone());
            let mut answer = method;
            if let Some(o) = answer.as_object_mut() {
                o.insert("temporaryAccessPass".into(), pass.into());
                o.insert("@odata.context".into(), format!("{ctx}/$entity").into());
            }
            json(201, &answer)
        }
        _ => error(
            405,
            "methodNotAllowed",
            "The method is not allowed on this resource.",
            rid,
        ),
    }
}

/// `GET /users/delta`: without a `$deltatoken`, every user; with one, the users changed
/// and removed since the round that issued it. One page, ending in `@odata.deltaLink`.
fn users_delta(shared: &Shared, ver: &str, query: &[(String, String)], rid: &str) -> Resp {
    let st = shared.state();
    let since = match q(query, "$deltatoken") {
        None => None,
        Some(t) => match decode_b64url_strict(t, "$deltatoken")
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("v=").and_then(|n| n.parse::<u64>().ok()))
        {
            Some(n) => Some(n),
            None => return error(400, "badRequest", "Invalid delta token.", rid),
        },
    };
    let mut value: Vec<serde_json::Value> = st
        .tenant
        .users
        .iter()
        .filter(|u| since.is_none_or(|n| st.user_versions.get(&u.id).is_some_and(|v| *v > n)))
        .map(|u| {
            serde_json::json!({
                "id": u.id,
                "userPrincipalName": u.user_principal_name,
                "displayName": u.display_name,
                "accountEnabled": u.account_enabled,
            })
        })
        .collect();
    if let Some(n) = since {
        value.extend(
            st.removed_users
                .iter()
                .filter(|(_, v)| *v > n)
                .map(|(id, _)| serde_json::json!({"id": id, "@removed": {"reason": "changed"}})),
        );
    }
    let token = encode_b64url(format!("v={}", st.directory_version).as_bytes());
    json(
        200,
        &serde_json::json!({
            "@odata.context": format!("{}/{ver}/$metadata#users", shared.base_url),
            "@odata.deltaLink": format!("{}/{ver}/users/delta?$deltatoken={token}", shared.base_url),
            "value": value,
        }),
    )
}

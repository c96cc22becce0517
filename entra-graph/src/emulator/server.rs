//! HTTP plumbing (hyper 1), routing, authentication, throttling, the token endpoint
//! and `$batch` of the emulator; the Graph resources are in `graph`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rand_core::{OsRng, RngCore};
use serde::Serialize;

use super::graph::graph;
use super::state::iso8601;
use super::token::{check_client_credentials, parse_form};
use super::{Fault, RequestRecord, Shared};
use crate::ids::encode_b64url;
use crate::wire::{BatchRequest, BatchResponse, BatchResponseItem};

/// Largest request body accepted.
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Most request records kept.
const MAX_LOG: usize = 200_000;

pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => break,
            acc = listener.accept() => {
                let Ok((stream, _)) = acc else { continue };
                let shared = shared.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(shared.clone(), req));
                    match tls {
                        None => {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), svc)
                                .await;
                        }
                        // A refused handshake (an untrusting client) just ends the connection.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                            }
                        }
                    }
                });
            }
        }
    }
}

/// An answer before it becomes an HTTP response.
pub(crate) struct Resp {
    status: u16,
    body: Vec<u8>,
    retry_after: Option<u64>,
    json: bool,
    location: Option<String>,
    /// Extra headers (`x-ms-*`).
    pub(super) headers: Vec<(&'static str, String)>,
}

pub(super) fn json<T: Serialize>(status: u16, v: &T) -> Resp {
    Resp {
        status,
        body: serde_json::to_vec(v).unwrap_or_default(),
        retry_after: None,
        json: true,
        location: None,
        headers: Vec::new(),
    }
}

pub(super) fn error(status: u16, code: &str, message: &str, request_id: &str) -> Resp {
    json(
        status,
        &serde_json::json!({"error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": iso8601(std::time::SystemTime::now()).trim_end_matches('Z'),
                "request-id": request_id,
                "client-request-id": request_id,
            }
        }}),
    )
}

pub(super) fn no_content() -> Resp {
    Resp {
        status: 204,
        body: vec![],
        retry_after: None,
        json: false,
        location: None,
        headers: Vec::new(),
    }
}

fn take_fault(shared: &Shared, method: &str, path: &str) -> (Option<Fault>, Duration) {
    let mut k = shared.knobs();
    let latency = k.latency;
    let pos = k.faults.iter().position(|r| {
        r.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && r.path_contains.as_deref().is_none_or(|p| path.contains(p))
    });
    let fault = pos.and_then(|i| {
        let rule = k.faults.get_mut(i)?;
        let f = rule.fault.clone();
        rule.times = rule.times.saturating_sub(1);
        if rule.times == 0 {
            k.faults.remove(i);
        }
        Some(f)
    });
    (fault, latency)
}

fn log(shared: &Shared, method: &str, path: &str, status: u16) {
    let mut st = shared.state();
    if st.log.len() < MAX_LOG {
        st.log.push(RequestRecord {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
        });
    }
}

struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let _in_flight = InFlight::enter(&shared);
    let method = req.method().as_str().to_owned();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_id = crate::http::request_id();
    let client_request_id = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| request_id.clone());
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => {
            let r = error(
                413,
                "RequestEntityTooLarge",
                "The request body is too large.",
                &request_id,
            );
            return Ok(to_response(&shared, r, &request_id, &client_request_id));
        }
    };
    let (fault, latency) = take_fault(&shared, &method, &path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let resp = match fault {
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let mut r = error(status, "serviceUnavailable", "Injected fault.", &request_id);
            if status == 429 {
                r = error(429, "TooManyRequests", "Too many requests.", &request_id);
            }
            r.retry_after = retry_after;
            r
        }
        Some(Fault::Drop) => {
            log(&shared, &method, &path, 0);
            return Err(std::io::Error::other("injected: connection dropped"));
        }
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            route(&shared, &method, &path, auth.as_deref(), &body, &request_id)
        }
        Some(Fault::CommitThenDrop) => {
            let r = route(&shared, &method, &path, auth.as_deref(), &body, &request_id);
            log(&shared, &method, &path, 0);
            drop(r);
            return Err(std::io::Error::other("injected: committed, response lost"));
        }
        None => route(&shared, &method, &path, auth.as_deref(), &body, &request_id),
    };
    log(&shared, &method, &path, resp.status);
    Ok(to_response(&shared, resp, &request_id, &client_request_id))
}

/// The `Retry-After` value for a wait of `secs`: delay-seconds, or (knob
/// `retry_after_http_date`) the IMF-fixdate that many seconds from now.
fn retry_after_value(shared: &Shared, secs: u64) -> String {
    if shared.knobs().retry_after_http_date {
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(secs))
    } else {
        secs.to_string()
    }
}

fn to_response(
    shared: &Shared,
    mut r: Resp,
    request_id: &str,
    client_request_id: &str,
) -> Response<Full<Bytes>> {
    if r.status >= 400 && r.json {
        r.body = echo_in_error_body(&r.body, client_request_id);
    }
    let mut b = Response::builder()
        .status(r.status)
        .header("request-id", request_id)
        .header("client-request-id", client_request_id);
    if r.json {
        b = b.header(
            "content-type",
            "application/json;odata.metadata=minimal;charset=utf-8",
        );
    }
    if let Some(s) = r.retry_after {
        b = b.header("retry-after", retry_after_value(shared, s));
    }
    if let Some(l) = &r.location {
        b = b.header("location", l.as_str());
    }
    for (k, v) in &r.headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Full::new(Bytes::from(r.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A Graph error body as Entra writes it (DSI-13): `innerError` carries the message
/// too, and `client-request-id` echoes the caller's header (ours when it sent none).
fn echo_in_error_body(body: &[u8], client_request_id: &str) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return body.to_vec();
    };
    let message = v["error"]["message"].clone();
    let inner = v
        .get_mut("error")
        .and_then(|e| e.get_mut("innerError"))
        .and_then(|i| i.as_object_mut());
    match inner {
        Some(inner) => {
            inner.insert("client-request-id".into(), client_request_id.into());
            inner.insert("message".into(), message);
        }
        None => return body.to_vec(),
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec())
}

fn split(path: &str) -> (Vec<String>, Vec<(String, String)>) {
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    // A path segment's `+` is a plus (only a query string's is a space).
    let segs = p
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let query = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    (segs, query)
}

pub(super) fn q<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn route(
    shared: &Shared,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
    rid: &str,
) -> Resp {
    let (segs, query) = split(path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        [_tenant, "oauth2", "v2.0", "token"] if method == "POST" => token(shared, &s, body, rid),
        [tenant, "oauth2", "v2.0", "authorize"] if method == "GET" => {
            authorize(shared, tenant, &query, rid)
        }
        [tenant, "v2.0", ".well-known", "openid-configuration"] if method == "GET" => {
            match known_tenant(shared, tenant, rid) {
                Ok(()) => json(200, &super::oidc::discovery(&shared.base_url, tenant)),
                Err(r) => r,
            }
        }
        [tenant, "discovery", "v2.0", "keys"] if method == "GET" => {
            match known_tenant(shared, tenant, rid) {
                Ok(()) => match super::oidc::jwks(&shared.oidc()) {
                    Ok(keys) => json(200, &keys),
                    Err(e) => error(500, "ServerError", &e, rid),
                },
                Err(r) => r,
            }
        }
        [ver @ ("v1.0" | "beta"), rest @ ..] => {
            if rest.first() == Some(&"me") {
                if let Some(r) =
                    super::me::route(shared, ver, method, rest, &query, auth, body, rid)
                {
                    return r;
                }
            }
            let client = match authenticate(shared, auth) {
                Ok(c) => c,
                Err(r) => return finish(r, rid),
            };
            if rest == ["$batch"] && method == "POST" {
                return batch(shared, ver, auth, body, rid);
            }
            if let Some(needed) = required_roles(method, rest) {
                let granted = shared
                    .apps
                    .iter()
                    .find(|(a, _)| a.client_id == client)
                    .is_some_and(|(a, _)| needed.iter().all(|any_of| a.has_any_role(any_of)));
                if !granted {
                    return error(
                        403,
                        "Authorization_RequestDenied",
                        "Insufficient privileges to complete the operation.",
                        rid,
                    );
                }
            }
            if let Some(r) = throttled(shared, &client, method, rid) {
                return r;
            }
            let mut r = graph(shared, ver, method, rest, &query, body, rid);
            r.headers.push(("x-ms-resource-unit", "1".into()));
            r
        }
        _ => error(404, "NotFound", "Resource not found.", rid),
    }
}

fn known_tenant(shared: &Shared, tenant: &str, rid: &str) -> Result<(), Resp> {
    if tenant == shared.config.tenant.tenant_id {
        Ok(())
    } else {
        Err(json(
            400,
            &serde_json::json!({
                "error": "invalid_tenant",
                "error_description": format!("AADSTS90002: Tenant '{tenant}' not found. Trace ID: {rid}"),
                "error_codes": [90002],
            }),
        ))
    }
}

/// The application permissions an endpoint needs: one of each listed set.
fn required_roles(method: &str, rest: &[&str]) -> Option<&'static [&'static [&'static str]]> {
    const PASSKEY_WRITE: &[&str] = &[
        "UserAuthMethod-Passkey.ReadWrite.All",
        "UserAuthenticationMethod.ReadWrite.All",
    ];
    const PASSKEY_READ: &[&str] = &[
        "UserAuthMethod-Passkey.Read.All",
        "UserAuthMethod-Passkey.ReadWrite.All",
        "UserAuthenticationMethod.Read.All",
        "UserAuthenticationMethod.ReadWrite.All",
    ];
    const POLICY_READ: &[&str] = &[
        "Policy.Read.AuthenticationMethod",
        "Policy.ReadWrite.AuthenticationMethod",
        "Policy.Read.All",
    ];
    const USER_READ: &[&str] = &["User.Read.All", "User.ReadWrite.All", "Directory.Read.All"];
    const METHODS_READ: &[&str] = &[
        "UserAuthenticationMethod.Read.All",
        "UserAuthenticationMethod.ReadWrite.All",
    ];
    // user-revokesigninsessions (application).
    const REVOKE_SESSIONS: &[&str] = &[
        "User.RevokeSessions.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ];
    // group-list-members: GroupMember.Read.All or any higher grant (PERM).
    const MEMBERS_READ: &[&str] = &[
        "GroupMember.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ];
    match (method, rest) {
        ("GET", ["users", _, "authentication", "fido2Methods", op])
            if op.starts_with("creationOptions") =>
        {
            Some(&[PASSKEY_WRITE])
        }
        // Temporary Access Pass: the general authentication-method permissions only.
        ("GET", ["users", _, "authentication", "temporaryAccessPassMethods", ..]) => {
            Some(&[METHODS_READ])
        }
        (_, ["users", _, "authentication", "temporaryAccessPassMethods", ..]) => {
            Some(&[&["UserAuthenticationMethod.ReadWrite.All"]])
        }
        // Provenance (beta): identityverificationstatus-post-verificationevents and
        // authenticationmethod-attestprovenance, each its own permission only.
        (_, ["users", _, "identityVerificationStatus", ..]) => {
            Some(&[&["IdentityVerification.ReadWrite.All"]])
        }
        (_, ["users", _, "authentication", "methods", _, "attestProvenance"]) => {
            Some(&[&["CredentialProvenance.ReadWrite.All"]])
        }
        // authentication-list-methods: not covered by the passkey-only permissions.
        ("GET", ["users", _, "authentication", "methods"]) => Some(&[METHODS_READ]),
        ("GET", ["users", _, "authentication", ..]) => Some(&[PASSKEY_READ]),
        (_, ["users", _, "authentication", ..]) => Some(&[PASSKEY_WRITE]),
        // user-checkmembergroups / user-list-transitivememberof: User.Read.All and
        // GroupMember.Read.All (or Directory.Read.All).
        (_, ["users", _, "checkMemberGroups" | "transitiveMemberOf"]) => {
            Some(&[USER_READ, MEMBERS_READ])
        }
        ("POST", ["users", _, "revokeSignInSessions"]) => Some(&[REVOKE_SESSIONS]),
        (_, ["users", ..]) => Some(&[USER_READ]),
        (_, ["groups", ..]) => Some(&[MEMBERS_READ]),
        // authenticationmethodconfiguration-update: the write permission only.
        ("PATCH", ["policies", ..]) => Some(&[&["Policy.ReadWrite.AuthenticationMethod"]]),
        (_, ["policies", ..]) => Some(&[POLICY_READ]),
        _ => None,
    }
}

fn finish(r: (u16, &'static str, &'static str), rid: &str) -> Resp {
    error(r.0, r.1, r.2, rid)
}

fn authenticate(
    shared: &Shared,
    auth: Option<&str>,
) -> Result<String, (u16, &'static str, &'static str)> {
    let token = auth.and_then(|a| a.strip_prefix("Bearer ")).ok_or((
        401,
        "InvalidAuthenticationToken",
        "Access token is empty.",
    ))?;
    let st = shared.state();
    let (client, exp) = st.tokens.get(token).ok_or((
        401,
        "InvalidAuthenticationToken",
        "Access token validation failure. Invalid audience.",
    ))?;
    if st.now() >= *exp {
        return Err((
            401,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        ));
    }
    Ok(client.clone())
}

/// Graph's identity throttling: every request costs one resource unit from the read
/// bucket, and a write (anything but GET) one more from the separate write bucket
/// (3 000 writes per 150 s, FACTS). An empty bucket answers 429 with `Retry-After` and
/// `x-ms-throttle-scope` / `x-ms-throttle-information` naming which limit it was.
pub(super) fn throttled(shared: &Shared, client: &str, method: &str, rid: &str) -> Option<Resp> {
    let (read, write) = {
        let k = shared.knobs();
        (k.throttle, k.write_throttle)
    };
    let mut st = shared.state();
    let (wait, scope, info) =
        if let Some(wait) = read.and_then(|cfg| throttle(&mut st.buckets, cfg, client)) {
            (wait, "Tenant_Application/Read", "ResourceUnitLimitExceeded")
        } else if let Some(wait) = write
            .filter(|_| method != "GET")
            .and_then(|cfg| throttle(&mut st.write_buckets, cfg, client))
        {
            (wait, "Tenant_Application/Write", "WriteLimitExceeded")
        } else {
            return None;
        };
    drop(st);
    let mut r = error(429, "TooManyRequests", "Too many requests.", rid);
    r.retry_after = Some(wait);
    r.headers.push(("x-ms-throttle-scope", scope.into()));
    r.headers.push(("x-ms-throttle-information", info.into()));
    Some(r)
}

/// Token bucket per client: `Some(seconds to wait)` when empty.
fn throttle(
    buckets: &mut std::collections::HashMap<String, super::state::Bucket>,
    cfg: super::state::ThrottleConfig,
    client: &str,
) -> Option<u64> {
    let now = Instant::now();
    let b = buckets
        .entry(client.to_owned())
        .or_insert(super::state::Bucket {
            tokens: cfg.capacity,
            last: now,
        });
    let elapsed = now.duration_since(b.last).as_secs_f64();
    b.tokens = (b.tokens + elapsed * cfg.refill_per_sec).min(cfg.capacity);
    b.last = now;
    if b.tokens >= 1.0 {
        b.tokens -= 1.0;
        None
    } else {
        let wait = ((1.0 - b.tokens) / cfg.refill_per_sec).ceil().max(1.0);
        Some(wait as u64)
    }
}

fn token(shared: &Shared, s: &[&str], body: &[u8], rid: &str) -> Resp {
    let tenant = s.first().copied().unwrap_or("");
    let token_url = format!("{}/{}/oauth2/v2.0/token", shared.base_url, tenant);
    let failure = |status: u16, error: &str, code: u64, desc: &str| {
        json(
            status,
            &serde_json::json!({
                "error": error,
                "error_description": format!("{desc} Trace ID: {rid}"),
                "error_codes": [code],
                "timestamp": iso8601(std::time::SystemTime::now()),
                "trace_id": rid,
                "correlation_id": rid,
            }),
        )
    };
    if tenant != shared.config.tenant.tenant_id && !verified_domain(shared, tenant) {
        return failure(
            400,
            "invalid_request",
            90002,
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    let form = parse_form(body);
    if let Some(aud) = super::apitoken::api_audience(&form) {
        let known = |id: &str| shared.apps.iter().any(|(a, _)| a.client_id == id);
        let r = super::apitoken::api_token(
            &form,
            &aud,
            &shared.base_url,
            &shared.state(),
            known,
            &shared.oidc(),
            shared.config.token_lifetime,
        );
        return r.map_or_else(
            |f| failure(f.status, f.error, f.code, &f.description),
            |v| json(200, &v),
        );
    }
    if form.get("grant_type").map(String::as_str) == Some("password") {
        let st = shared.state();
        let known = |id: &str| shared.apps.iter().any(|(a, _)| a.client_id == id);
        let oidc = shared.oidc();
        return match super::oidc::password_grant(
            &form,
            &shared.base_url,
            &st,
            known,
            &oidc,
            shared.config.token_lifetime,
        ) {
            Ok(v) => json(200, &v),
            Err(f) => failure(f.status, f.error, f.code, &f.description),
        };
    }
    if form.get("grant_type").map(String::as_str) == Some("authorization_code") {
        let st = shared.state();
        let known = |id: &str| shared.apps.iter().any(|(a, _)| a.client_id == id);
        let mut oidc = shared.oidc();
        let lifetime = shared.config.token_lifetime;
        return match super::authorize::code_grant(
            &form,
            &shared.base_url,
            &st,
            known,
            &mut oidc,
            lifetime,
        ) {
            Ok(v) => json(200, &v),
            Err(f) => failure(f.status, f.error, f.code, &f.description),
        };
    }
    let mut st = shared.state();
    let now = st.now();
    let client =
        match check_client_credentials(&form, &shared.apps, &token_url, now, &mut st.used_jtis) {
            Ok(c) => c,
            Err(f) => return failure(f.status, f.error, f.code, &f.description),
        };
    let mut raw = [0u8; 32];
    OsRng.fill_bytes(&mut raw);
    let access = format!("emu.{}", encode_b64url(&raw));
    let lifetime = shared.config.token_lifetime;
    if st.tokens.len() > 10_000 {
        st.tokens.retain(|_, (_, exp)| *exp > now);
    }
    st.tokens.insert(access.clone(), (client, now + lifetime));
    json(
        200,
        &serde_json::json!({
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "ext_expires_in": lifetime.as_secs(),
            "access_token": access,
        }),
    )
}

/// `GET /{tenant}/oauth2/v2.0/authorize` (`authorize.rs`): a 302 to the loopback
/// redirect, or an error page.
fn authorize(shared: &Shared, tenant: &str, query: &[(String, String)], rid: &str) -> Resp {
    if let Err(r) = known_tenant(shared, tenant, rid) {
        return r;
    }
    let st = shared.state();
    let known = |id: &str| shared.apps.iter().any(|(a, _)| a.client_id == id);
    let mut oidc = shared.oidc();
    match super::authorize::authorize(query, &st, known, &mut oidc) {
        super::authorize::Outcome::Redirect(url) => Resp {
            status: 302,
            body: vec![],
            retry_after: None,
            json: false,
            location: Some(url),
            headers: Vec::new(),
        },
        super::authorize::Outcome::Page(status, text) => Resp {
            status,
            body: text.into_bytes(),
            retry_after: None,
            json: false,
            location: None,
            headers: Vec::new(),
        },
    }
}

/// True when `name` is one of the tenant's verified domains (the domain part of its
/// users' UPNs), which the token endpoint takes in place of the tenant id (YUB).
fn verified_domain(shared: &Shared, name: &str) -> bool {
    shared.state().tenant.users.iter().any(|u| {
        u.user_principal_name
            .as_deref()
            .and_then(|p| p.rsplit_once('@'))
            .is_some_and(|(_, d)| d.eq_ignore_ascii_case(name))
    })
}

/// The batch's requests in an order that runs each after those it `dependsOn`; an
/// error for duplicate ids, unknown dependencies or a cycle (as Graph refuses them).
fn batch_order(
    mut pending: Vec<crate::wire::BatchRequestItem>,
) -> Result<Vec<crate::wire::BatchRequestItem>, String> {
    let mut ids = std::collections::HashSet::new();
    for r in &pending {
        if !ids.insert(r.id.clone()) {
            return Err(format!(
                "Batch request ids must be unique: '{}' is repeated.",
                r.id
            ));
        }
    }
    if let Some((r, d)) = pending.iter().find_map(|r| {
        r.depends_on
            .iter()
            .find(|d| !ids.contains(*d))
            .map(|d| (r, d))
    }) {
        return Err(format!(
            "Request '{}' depends on '{d}', which is not in the batch.",
            r.id
        ));
    }
    let mut out: Vec<crate::wire::BatchRequestItem> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|r| r.depends_on.iter().all(|d| out.iter().any(|o| &o.id == d)));
        match ready {
            Some(i) => out.push(pending.remove(i)),
            None => return Err("The dependsOn chain of the batch has a cycle.".into()),
        }
    }
    Ok(out)
}

/// Why an inner request is not run: a dependency that failed (424), or a body without
/// a `Content-Type` header (400).
fn batch_precondition(
    item: &crate::wire::BatchRequestItem,
    statuses: &std::collections::HashMap<String, u16>,
    rid: &str,
) -> Option<Resp> {
    if item
        .depends_on
        .iter()
        .any(|d| !statuses.get(d).is_some_and(|s| (200..300).contains(s)))
    {
        return Some(error(
            424,
            "FailedDependency",
            "A request this one depends on failed.",
            rid,
        ));
    }
    let typed = item
        .headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("content-type"));
    if item.body.is_some() && !typed {
        return Some(error(
            400,
            "BadRequest",
            "A request with a body needs a Content-Type header.",
            rid,
        ));
    }
    None
}

fn batch(shared: &Shared, ver: &str, auth: Option<&str>, body: &[u8], rid: &str) -> Resp {
    let Ok(req) = serde_json::from_slice::<BatchRequest>(body) else {
        return error(400, "BadRequest", "Invalid batch payload format.", rid);
    };
    if req.requests.len() > crate::MAX_BATCH {
        return error(
            400,
            "BadRequest",
            "Number of batch requests exceeded. Max requests allowed is 20.",
            rid,
        );
    }
    let items = match batch_order(req.requests) {
        Ok(items) => items,
        Err(message) => return error(400, "BadRequest", &message, rid),
    };
    let mut statuses: std::collections::HashMap<String, u16> = Default::default();
    let mut responses = Vec::with_capacity(items.len());
    for item in items {
        let inner_rid = crate::http::request_id();
        let path = format!("/{ver}/{}", item.url.trim_start_matches('/'));
        let r = match take_fault(shared, &item.method, &path) {
            (
                Some(Fault::Status {
                    status,
                    retry_after,
                }),
                _,
            ) => {
                let mut r = error(status, "serviceUnavailable", "Injected fault.", &inner_rid);
                r.retry_after = retry_after;
                r
            }
            _ => match batch_precondition(&item, &statuses, &inner_rid) {
                Some(r) => r,
                None => {
                    let body = item
                        .body
                        .as_ref()
                        .map(|b| b.as_str().as_bytes().to_vec())
                        .unwrap_or_default();
                    route(shared, &item.method, &path, auth, &body, &inner_rid)
                }
            },
        };
        statuses.insert(item.id.clone(), r.status);
        log(shared, &item.method, &path, r.status);
        let mut headers = std::collections::BTreeMap::new();
        headers.insert("request-id".to_owned(), inner_rid.clone());
        if r.json {
            headers.insert("Content-Type".to_owned(), "application/json".to_owned());
        }
        if let Some(s) = r.retry_after {
            headers.insert("Retry-After".to_owned(), retry_after_value(shared, s));
        }
        for (k, v) in &r.headers {
            headers.insert((*k).to_owned(), v.clone());
        }
        responses.push(BatchResponseItem {
            id: item.id,
            status: r.status,
            headers,
            body: crate::wire::JsonText::from_slice(&r.body),
        });
    }
    json(200, &BatchResponse { responses })
}

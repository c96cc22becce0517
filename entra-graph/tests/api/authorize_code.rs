//! The emulator's authorization endpoint and `authorization_code` grant with PKCE, and
//! the holder checks of review G1 (`entra_graph::oidc::check_holder`) on its tokens.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use entra_graph::emulator::{Emulator, HolderTokenOptions};
use entra_graph::oidc::{check_holder, HolderRequirements, OidcSettings, OidcVerifier};
use entra_graph::GraphError;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::harness::{emulator, KIM, KIM_ID};

/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "http://127.0.0.1:49152/callback";

/// One HTTP/1.1 exchange; returns status, headers (lowercase names) and body.
fn http(
    emu: &Emulator,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(emu.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        emu.addr(),
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn authorize(emu: &Emulator, extra: &[(&str, &str)], skip: &[&str]) -> (u16, Option<String>) {
    let mut params = vec![
        ("client_id", emu.client_id().to_owned()),
        ("response_type", "code".into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid profile".into()),
        ("state", "st-1".into()),
        ("nonce", "nonce-1".into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
        ("login_hint", KIM.into()),
        ("max_age", "600".into()),
    ];
    params.retain(|(k, _)| !skip.contains(k) && !extra.iter().any(|(e, _)| e == k));
    params.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect();
    let path = format!("/{}/oauth2/v2.0/authorize?{}", emu.tenant_id(), q.join("&"));
    let (status, headers, _) = http(emu, "GET", &path, "");
    let loc = headers
        .into_iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v);
    (status, loc)
}

fn param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

fn code(emu: &Emulator) -> String {
    let (status, loc) = authorize(emu, &[], &[]);
    assert_eq!(status, 302);
    let loc = loc.unwrap();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("st-1"));
    param(&loc, "code").unwrap()
}

fn redeem(emu: &Emulator, code: &str, verifier: &str, redirect: &str) -> (u16, Value) {
    let body = format!(
        "grant_type=authorization_code&client_id={}&code={}&redirect_uri={}&code_verifier={}",
        enc(emu.client_id()),
        enc(code),
        enc(redirect),
        enc(verifier)
    );
    let (status, _, body) = http(
        emu,
        "POST",
        &format!("/{}/oauth2/v2.0/token", emu.tenant_id()),
        &body,
    );
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn aadsts(v: &Value) -> u64 {
    v["error_codes"][0].as_u64().unwrap_or(0)
}

fn verifier(emu: &Emulator) -> OidcVerifier {
    let mut s = OidcSettings::new(emu.oidc_issuer(), emu.client_id());
    s.jwks_url = Some(emu.jwks_url());
    s.tenant_id = Some(emu.tenant_id().to_owned());
    OidcVerifier::new(s).unwrap()
}

fn claim(r: Result<(), GraphError>) -> &'static str {
    match r {
        Err(GraphError::Oidc { claim, .. }) => claim,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_code_with_pkce_yields_a_fresh_mfa_id_token_with_the_nonce() {
    let emu = emulator();
    let code = code(&emu);
    let (status, answer) = redeem(&emu, &code, VERIFIER, REDIRECT);
    assert_eq!(status, 200, "{answer}");
    let token = answer["id_token"].as_str().unwrap();
    let payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(payload["ver"], "2.0");
    assert_eq!(payload["amr"], serde_json::json!(["pwd", "mfa"]));
    assert_eq!(payload["oid"], KIM_ID);
    let t = verifier(&emu).verify(token, SystemTime::now()).unwrap();
    assert_eq!(t.nonce.as_deref(), Some("nonce-1"));
    assert_eq!(t.object_id.as_deref(), Some(KIM_ID));
    let mut req = HolderRequirements::new("nonce-1");
    req.tenant_id = Some(emu.tenant_id().to_owned());
    check_holder(&t, &req, SystemTime::now()).unwrap();
    assert_eq!(
        claim(check_holder(
            &t,
            &HolderRequirements::new("other"),
            SystemTime::now()
        )),
        "nonce"
    );
    // The code is single use.
    let (status, again) = redeem(&emu, &code, VERIFIER, REDIRECT);
    assert_eq!((status, aadsts(&again)), (400, 54005), "{again}");
}

#[test]
fn wrong_verifier_redirect_or_age_spend_the_code() {
    let emu = emulator();
    let c = code(&emu);
    let wrong = URL_SAFE_NO_PAD.encode(Sha256::digest(b"another verifier"));
    let (status, a) = redeem(&emu, &c, &wrong, REDIRECT);
    assert_eq!((status, aadsts(&a)), (400, 501481), "{a}");
    // Spent by the failed attempt.
    assert_eq!(aadsts(&redeem(&emu, &c, VERIFIER, REDIRECT).1), 54005);
    let c = code(&emu);
    let (_, a) = redeem(&emu, &c, VERIFIER, "http://127.0.0.1:49153/callback");
    assert_eq!(aadsts(&a), 50148, "{a}");
    let c = code(&emu);
    let (_, a) = redeem(&emu, &c, "short", REDIRECT);
    assert_eq!(aadsts(&a), 501481, "{a}");
    let c = code(&emu);
    emu.advance_clock(Duration::from_secs(61));
    let (_, a) = redeem(&emu, &c, VERIFIER, REDIRECT);
    assert_eq!(aadsts(&a), 70008, "{a}");
    assert_eq!(
        aadsts(&redeem(&emu, "made-up", VERIFIER, REDIRECT).1),
        9002313
    );
}

#[test]
fn authorize_refuses_plain_pkce_missing_challenges_and_foreign_redirects() {
    let emu = emulator();
    let error = |extra: &[(&str, &str)], skip: &[&str]| {
        let (status, loc) = authorize(&emu, extra, skip);
        assert_eq!(status, 302);
        let loc = loc.unwrap();
        assert_eq!(param(&loc, "state").as_deref(), Some("st-1"));
        assert!(param(&loc, "code").is_none(), "{loc}");
        param(&loc, "error").unwrap()
    };
    assert_eq!(
        error(&[("code_challenge_method", "plain")], &[]),
        "invalid_request"
    );
    assert_eq!(error(&[], &["code_challenge_method"]), "invalid_request");
    assert_eq!(error(&[], &["code_challenge"]), "invalid_request");
    assert_eq!(error(&[("code_challenge", "abc")], &[]), "invalid_request");
    assert_eq!(
        error(&[("response_type", "token")], &[]),
        "unsupported_response_type"
    );
    assert_eq!(error(&[], &["login_hint"]), "login_required");
    emu.set_account_enabled(KIM, false);
    assert_eq!(error(&[], &[]), "access_denied");
    emu.set_account_enabled(KIM, true);
    // Foreign or non-loopback redirects get an error page, never a redirect.
    for r in [
        "https://evil.example/cb",
        "http://evil.example/cb",
        "http://127.0.0.1.evil.example/cb",
    ] {
        let (status, loc) = authorize(&emu, &[("redirect_uri", r)], &[]);
        assert_eq!((status, loc), (400, None), "{r}");
    }
    let (status, loc) = authorize(&emu, &[("client_id", "unknown-client")], &[]);
    assert_eq!((status, loc), (400, None));
}

#[test]
fn holder_checks_want_fresh_mfa_sign_ins_in_the_right_tenant() {
    let emu = emulator();
    let v = verifier(&emu);
    let verify = |opts: HolderTokenOptions| {
        let opts = HolderTokenOptions {
            audience: emu.client_id().to_owned(),
            ..opts
        };
        v.verify(&emu.holder_token_with(&opts).unwrap(), SystemTime::now())
            .unwrap()
    };
    let base = || HolderTokenOptions::new(KIM, "").nonce("n");
    let req = HolderRequirements::new("n");
    let now = SystemTime::now();
    check_holder(&verify(base()), &req, now).unwrap();
    let old = verify(HolderTokenOptions {
        auth_age: Duration::from_secs(700),
        ..base()
    });
    assert_eq!(claim(check_holder(&old, &req, now)), "auth_time");
    let pwd = verify(HolderTokenOptions {
        amr: vec!["pwd".into()],
        ..base()
    });
    assert_eq!(claim(check_holder(&pwd, &req, now)), "amr");
    let with_acrs = verify(HolderTokenOptions {
        amr: vec!["pwd".into()],
        acrs: vec!["c1".into()],
        ..base()
    });
    assert_eq!(claim(check_holder(&with_acrs, &req, now)), "amr");
    let mut acrs_ok = req.clone();
    acrs_ok.accepted_acrs = vec!["c1".into()];
    check_holder(&with_acrs, &acrs_ok, now).unwrap();
    let no_nonce = verify(HolderTokenOptions::new(KIM, ""));
    assert_eq!(claim(check_holder(&no_nonce, &req, now)), "nonce");
    let mut other_tenant = req.clone();
    other_tenant.tenant_id = Some("00000000-0000-0000-0000-000000000000".into());
    assert_eq!(
        claim(check_holder(&verify(base()), &other_tenant, now)),
        "tid"
    );
    let mut no_auth_time = verify(base());
    no_auth_time.auth_time = None;
    assert_eq!(claim(check_holder(&no_auth_time, &req, now)), "auth_time");
    assert!(matches!(
        check_holder(&verify(base()), &HolderRequirements::new(""), now),
        Err(GraphError::Config { .. })
    ));
}

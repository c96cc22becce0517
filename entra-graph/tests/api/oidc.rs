//! Holder authentication: the emulator's OIDC endpoints and ID tokens, and the verifier
//! (`entra_graph::oidc`) against them, plus one token from an independent implementation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use entra_graph::emulator::{Emulator, DEMO_PASSWORD};
use entra_graph::oidc::{
    verify_with_jwks, Jwks, JwsAlg, OidcSettings, OidcVerifier, MAX_TOKEN_BYTES,
};
use entra_graph::GraphError;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::harness::{emulator, raw, KIM, KIM_ID};

const AUDIENCE: &str = "4f3c2b1a-0000-4000-8000-00000000c11e";
const HOUR: Duration = Duration::from_secs(3600);

fn settings(emu: &Emulator) -> OidcSettings {
    let mut s = OidcSettings::new(emu.oidc_issuer(), AUDIENCE);
    s.jwks_url = Some(emu.jwks_url());
    s.tenant_id = Some(emu.tenant_id().to_owned());
    s
}

fn verifier(emu: &Emulator) -> OidcVerifier {
    OidcVerifier::new(settings(emu)).unwrap()
}

fn jwks(emu: &Emulator) -> Jwks {
    let (status, body) = raw(
        emu,
        "GET",
        &format!("/{}/discovery/v2.0/keys", emu.tenant_id()),
        &[],
        b"",
    );
    assert_eq!(status, 200, "{body}");
    Jwks::from_json(body.as_bytes()).unwrap()
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn refused(r: Result<entra_graph::oidc::VerifiedToken, GraphError>) -> &'static str {
    match r {
        Err(GraphError::Oidc { claim, reason }) => {
            assert!(!reason.contains("eyJ"), "no token in errors: {reason}");
            claim
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn claims(emu: &Emulator) -> Value {
    serde_json::from_str(&emu.holder_claims_json(KIM, AUDIENCE, HOUR).unwrap()).unwrap()
}

fn with(emu: &Emulator, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut c = claims(emu);
    f(c.as_object_mut().unwrap());
    emu.sign_claims(&c.to_string()).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().to_vec()
}

#[test]
fn discovery_and_keys_look_like_entra() {
    let emu = emulator();
    let (status, body) = raw(
        &emu,
        "GET",
        &format!("/{}/v2.0/.well-known/openid-configuration", emu.tenant_id()),
        &[],
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let d: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d["issuer"], emu.oidc_issuer());
    assert_eq!(
        d["issuer"],
        format!("{}/{}/v2.0", emu.base_url(), emu.tenant_id())
    );
    assert_eq!(d["jwks_uri"], emu.jwks_url());
    assert_eq!(d["token_endpoint"], emu.token_url());
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    let conn: Value = serde_json::from_str(&emu.connection_json()).unwrap();
    assert_eq!(conn["oidc_issuer"], emu.oidc_issuer());
    assert_eq!(conn["jwks_url"], emu.jwks_url());
    let (status, body) = raw(&emu, "GET", "/no-such-tenant/discovery/v2.0/keys", &[], b"");
    assert_eq!(status, 400, "{body}");
    let (_, body) = raw(
        &emu,
        "GET",
        &format!("/{}/discovery/v2.0/keys", emu.tenant_id()),
        &[],
        b"",
    );
    let k: Value = serde_json::from_str(&body).unwrap();
    let key = &k["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["n"].as_str().unwrap())
            .unwrap()
            .len(),
        256
    );
    assert_eq!(key["kid"], emu.signing_kids().unwrap()[0]);
}

#[test]
fn holder_token_verifies_through_discovery_and_explicit_jwks_url() {
    let emu = emulator();
    let token = emu.holder_token(KIM, AUDIENCE, HOUR).unwrap();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&segments(&token)[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");

    let explicit = verifier(&emu);
    let v = explicit.verify(&token, now()).unwrap();
    assert_eq!(v.object_id.as_deref(), Some(KIM_ID));
    assert_eq!(v.upn.as_deref(), Some(KIM));
    assert_eq!(v.name.as_deref(), Some("Kim Akers"));
    assert_eq!(v.tenant_id.as_deref(), Some(emu.tenant_id()));
    assert_eq!(v.issuer, emu.oidc_issuer());
    assert_eq!(v.audience, AUDIENCE);
    // `sub` is pairwise: not the object id, and different for another app.
    assert_ne!(v.subject, KIM_ID);
    let other = emu.holder_token(KIM, "another-client", HOUR).unwrap();
    let mut s2 = settings(&emu);
    s2.audience = "another-client".into();
    let v2 = OidcVerifier::new(s2)
        .unwrap()
        .verify(&other, now())
        .unwrap();
    assert_ne!(v2.subject, v.subject);
    assert!(v.expires_at > now() && v.issued_at <= now());
    assert_eq!(explicit.key_fetches(), 1);
    // Debug shows claims but never the raw token.
    assert!(!format!("{v:?} {explicit:?}").contains(&token));

    let mut s = settings(&emu);
    s.jwks_url = None;
    let discovered = OidcVerifier::new(s).unwrap();
    assert_eq!(discovered.verify(&token, now()).unwrap(), v);
    let paths: Vec<String> = emu.request_log().into_iter().map(|r| r.path).collect();
    assert!(paths
        .iter()
        .any(|p| p.ends_with("/.well-known/openid-configuration")));
}

#[test]
fn forged_and_malformed_tokens_are_refused() {
    let emu = emulator();
    let keys = jwks(&emu);
    let s = settings(&emu);
    let good = emu.holder_token(KIM, AUDIENCE, HOUR).unwrap();
    assert!(verify_with_jwks(&good, &keys, &s, now()).is_ok());
    let seg = segments(&good);

    // Tampered payload: another user's object id under the original signature.
    let mut c = claims(&emu);
    c["oid"] = json!("87d349ed-44d7-43e1-9a83-5f2406dee5bd");
    let tampered = format!("{}.{}.{}", seg[0], b64(c.to_string().as_bytes()), seg[2]);
    assert_eq!(
        refused(verify_with_jwks(&tampered, &keys, &s, now())),
        "signature"
    );

    // A key that is not published: unknown kid, or a published kid with its signature.
    let rogue = emu.sign_unpublished(&claims(&emu).to_string()).unwrap();
    assert_eq!(refused(verify_with_jwks(&rogue, &keys, &s, now())), "kid");
    let r = segments(&rogue);
    let relabelled = format!("{}.{}.{}", seg[0], r[1], r[2]);
    assert_eq!(
        refused(verify_with_jwks(&relabelled, &keys, &s, now())),
        "signature"
    );

    // alg none, with and without a signature.
    let kid = emu.signing_kids().unwrap()[0].clone();
    let none = b64(json!({"alg": "none", "kid": kid}).to_string().as_bytes());
    assert_eq!(
        refused(verify_with_jwks(
            &format!("{none}.{}.", seg[1]),
            &keys,
            &s,
            now()
        )),
        "alg"
    );
    assert_eq!(
        refused(verify_with_jwks(
            &format!("{none}.{}.{}", seg[1], seg[2]),
            &keys,
            &s,
            now()
        )),
        "alg"
    );

    // HS256 keyed with the published RSA modulus (algorithm confusion).
    let (_, body) = raw(
        &emu,
        "GET",
        &format!("/{}/discovery/v2.0/keys", emu.tenant_id()),
        &[],
        b"",
    );
    let jwk: Value = serde_json::from_str(&body).unwrap();
    for secret in [
        jwk["keys"][0]["n"].as_str().unwrap().as_bytes().to_vec(),
        URL_SAFE_NO_PAD
            .decode(jwk["keys"][0]["n"].as_str().unwrap())
            .unwrap(),
        body.as_bytes().to_vec(),
    ] {
        let h = b64(json!({"alg": "HS256", "typ": "JWT", "kid": kid})
            .to_string()
            .as_bytes());
        let input = format!("{h}.{}", seg[1]);
        let mac = hmac_sha256(&secret, input.as_bytes());
        let forged = format!("{input}.{}", b64(&mac));
        assert_eq!(refused(verify_with_jwks(&forged, &keys, &s, now())), "alg");
    }
    // An allowed algorithm that does not match the key type.
    let mut es = s.clone();
    es.allowed_algs = vec![JwsAlg::Rs256, JwsAlg::Es256];
    let h = b64(json!({"alg": "ES256", "kid": kid}).to_string().as_bytes());
    let t = format!("{h}.{}.{}", seg[1], b64(&[1u8; 64]));
    assert_eq!(refused(verify_with_jwks(&t, &keys, &es, now())), "alg");
    // PS256 is not allowed by default.
    let h = b64(json!({"alg": "PS256", "kid": kid}).to_string().as_bytes());
    assert_eq!(
        refused(verify_with_jwks(
            &format!("{h}.{}.{}", seg[1], seg[2]),
            &keys,
            &s,
            now()
        )),
        "alg"
    );
    // typ other than JWT, crit.
    for (header, claim) in [
        (json!({"alg": "RS256", "kid": kid, "typ": "at+jwt"}), "typ"),
        (json!({"alg": "RS256", "kid": kid, "crit": ["exp"]}), "crit"),
        (json!({"alg": 256, "kid": kid}), "alg"),
        (json!({"alg": "RS256", "kid": 7}), "kid"),
    ] {
        let h = b64(header.to_string().as_bytes());
        let t = format!("{h}.{}.{}", seg[1], seg[2]);
        assert_eq!(
            refused(verify_with_jwks(&t, &keys, &s, now())),
            claim,
            "{header}"
        );
    }

    // Malformed segments.
    for (t, claim) in [
        (String::new(), "token"),
        ("abc".to_owned(), "token"),
        (format!("{}.{}", seg[0], seg[1]), "token"),
        (format!("{good}.x"), "token"),
        (format!(".{}.{}", seg[1], seg[2]), "header"),
        (format!("{}==.{}.{}", seg[0], seg[1], seg[2]), "header"),
        (format!("{}.{}+.{}", seg[0], seg[1], seg[2]), "payload"),
        (format!("{}.{}.{}/", seg[0], seg[1], seg[2]), "signature"),
        (format!("{}.{}.{}", b64(b"[1]"), seg[1], seg[2]), "header"),
    ] {
        assert_eq!(
            refused(verify_with_jwks(&t, &keys, &s, now())),
            claim,
            "{t:.40}"
        );
    }
    // A JSON payload that is not an object, signed properly.
    let not_object = emu.sign_claims("[]");
    assert!(not_object.is_err(), "the emulator only signs objects");

    // Oversized.
    let mut c = claims(&emu);
    c["padding"] = json!("x".repeat(MAX_TOKEN_BYTES));
    let big = emu.sign_claims(&c.to_string()).unwrap();
    assert_eq!(refused(verify_with_jwks(&big, &keys, &s, now())), "token");
    assert_eq!(refused(verifier(&emu).verify(&big, now())), "token");
}

#[test]
fn claims_are_checked() {
    let emu = emulator();
    let keys = jwks(&emu);
    let s = settings(&emu);
    let check = |t: &str| verify_with_jwks(t, &keys, &s, now());
    let t_now = now().duration_since(UNIX_EPOCH).unwrap().as_secs();

    let wrong_iss = with(&emu, |c| {
        c.insert(
            "iss".into(),
            json!("https://login.microsoftonline.com/other/v2.0"),
        );
    });
    assert_eq!(refused(check(&wrong_iss)), "iss");
    // The issuer is compared exactly (no trailing-slash or case games).
    let slash = with(&emu, |c| {
        c.insert("iss".into(), json!(format!("{}/", emu.oidc_issuer())));
    });
    assert_eq!(refused(check(&slash)), "iss");

    let wrong_aud = emu.holder_token(KIM, "someone-else", HOUR).unwrap();
    assert_eq!(refused(check(&wrong_aud)), "aud");
    let aud_array = with(&emu, |c| {
        c.insert("aud".into(), json!(["api://other", AUDIENCE]));
    });
    assert_eq!(check(&aud_array).unwrap().audience, AUDIENCE);
    let aud_array_without = with(&emu, |c| {
        c.insert("aud".into(), json!(["api://other"]));
    });
    assert_eq!(refused(check(&aud_array_without)), "aud");
    let aud_number = with(&emu, |c| {
        c.insert("aud".into(), json!(5));
    });
    assert_eq!(refused(check(&aud_number)), "aud");

    // Expiry with the default 5 minutes leeway, and without.
    let expired = with(&emu, |c| {
        c.insert("exp".into(), json!(t_now - 600));
    });
    assert_eq!(refused(check(&expired)), "exp");
    let just_expired = with(&emu, |c| {
        c.insert("exp".into(), json!(t_now - 60));
    });
    assert!(check(&just_expired).is_ok(), "within leeway");
    let mut strict = s.clone();
    strict.leeway = Duration::ZERO;
    assert_eq!(
        refused(verify_with_jwks(&just_expired, &keys, &strict, now())),
        "exp"
    );
    let short = emu
        .holder_token(KIM, AUDIENCE, Duration::from_secs(60))
        .unwrap();
    assert!(check(&short).is_ok());
    assert_eq!(
        refused(verify_with_jwks(
            &short,
            &keys,
            &s,
            now() + Duration::from_secs(3600)
        )),
        "exp"
    );

    // Not before.
    let soon = with(&emu, |c| {
        c.insert("nbf".into(), json!(t_now + 120));
    });
    assert!(check(&soon).is_ok(), "within leeway");
    assert_eq!(
        refused(verify_with_jwks(&soon, &keys, &strict, now())),
        "nbf"
    );
    let later = with(&emu, |c| {
        c.insert("nbf".into(), json!(t_now + 3600));
        c.insert("exp".into(), json!(t_now + 7200));
    });
    assert_eq!(refused(check(&later)), "nbf");
    let future_iat = with(&emu, |c| {
        c.insert("iat".into(), json!(t_now + 3600));
    });
    assert_eq!(refused(check(&future_iat)), "iat");

    // Required claims and their types.
    for (name, claim) in [
        ("oid", "oid"),
        ("exp", "exp"),
        ("iat", "iat"),
        ("sub", "sub"),
        ("iss", "iss"),
        ("aud", "aud"),
        ("tid", "tid"),
    ] {
        let t = with(&emu, |c| {
            c.remove(name);
        });
        assert_eq!(refused(check(&t)), claim, "missing {name}");
    }
    for (name, value) in [
        ("exp", json!("tomorrow")),
        ("oid", json!(12)),
        ("preferred_username", json!(["a"])),
        ("name", json!({})),
        ("sub", json!(null)),
        ("nbf", json!(-5)),
    ] {
        let t = with(&emu, |c| {
            c.insert(name.into(), value.clone());
        });
        assert_eq!(refused(check(&t)), name, "{name} = {value}");
    }
    // Another tenant.
    let other_tenant = with(&emu, |c| {
        c.insert("tid".into(), json!("72f988bf-86f1-41af-91ab-2d7cd011db47"));
    });
    assert_eq!(refused(check(&other_tenant)), "tid");
    // Without a tenant or oid requirement those pass.
    let mut lax = s.clone();
    lax.tenant_id = None;
    lax.require_object_id = false;
    let no_oid = with(&emu, |c| {
        c.remove("oid");
    });
    assert_eq!(
        verify_with_jwks(&no_oid, &keys, &lax, now())
            .unwrap()
            .object_id,
        None
    );
    assert!(verify_with_jwks(&other_tenant, &keys, &lax, now()).is_ok());
}

#[test]
fn key_rotation_is_found_by_refetching() {
    let emu = emulator();
    let mut s = settings(&emu);
    s.jwks_refetch_interval = Duration::ZERO;
    let v = OidcVerifier::new(s).unwrap();
    let before = emu.holder_token(KIM, AUDIENCE, HOUR).unwrap();
    v.verify(&before, now()).unwrap();
    assert_eq!(v.key_fetches(), 1);

    let old_kid = emu.signing_kids().unwrap()[0].clone();
    let new_kid = emu.rotate_signing_key().unwrap();
    assert_ne!(new_kid, old_kid);
    assert_eq!(
        emu.signing_kids().unwrap(),
        vec![new_kid.clone(), old_kid.clone()]
    );
    let after = emu.holder_token(KIM, AUDIENCE, HOUR).unwrap();
    v.verify(&after, now()).unwrap();
    assert_eq!(v.key_fetches(), 2, "the unknown kid caused one refetch");
    // The previous key is still published.
    v.verify(&before, now()).unwrap();
    // Two rotations later the first key is gone.
    emu.rotate_signing_key().unwrap();
    let third = emu.holder_token(KIM, AUDIENCE, HOUR).unwrap();
    v.verify(&third, now()).unwrap();
    assert!(!emu.signing_kids().unwrap().contains(&old_kid));
    assert_eq!(refused(v.verify(&before, now())), "kid");
}

#[test]
fn unknown_kids_do_not_hammer_the_issuer() {
    let emu = emulator();
    let v = verifier(&emu); // default: at most one refetch a minute
    let good = emu.holder_token(KIM, AUDIENCE, HOUR).unwrap();
    v.verify(&good, now()).unwrap();
    let seg = segments(&good);
    for i in 0..50 {
        let h = b64(json!({"alg": "RS256", "kid": format!("made-up-{i}")})
            .to_string()
            .as_bytes());
        let t = format!("{h}.{}.{}", seg[1], seg[2]);
        assert_eq!(refused(v.verify(&t, now())), "kid");
    }
    // Malformed tokens never fetch.
    for _ in 0..10 {
        assert_eq!(refused(v.verify("not.a-token", now())), "token");
    }
    let fetches = emu
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/discovery/v2.0/keys"))
        .count();
    assert_eq!(fetches, 1, "one fetch, no refetch within the interval");
    assert_eq!(v.key_fetches(), 1);
    v.verify(&good, now()).unwrap();
}

#[test]
fn verifier_settings_and_fetch_failures() {
    let emu = emulator();
    let mut s = settings(&emu);
    s.issuer = "http://evil.example/t/v2.0".into();
    assert!(matches!(
        OidcVerifier::new(s),
        Err(GraphError::Config {
            setting: "oidc.issuer",
            ..
        })
    ));
    let mut s = settings(&emu);
    s.jwks_url = Some("ftp://127.0.0.1/keys".into());
    assert!(matches!(
        OidcVerifier::new(s),
        Err(GraphError::Config {
            setting: "oidc.jwks_url",
            ..
        })
    ));
    let mut s = settings(&emu);
    s.audience = " ".into();
    assert!(OidcVerifier::new(s).is_err());
    let mut s = settings(&emu);
    s.allowed_algs.clear();
    assert!(OidcVerifier::new(s).is_err());

    // Keys not found: a typed key error, not a token refusal.
    let mut s = settings(&emu);
    s.jwks_url = Some(format!("{}/nowhere/keys", emu.base_url()));
    let v = OidcVerifier::new(s).unwrap();
    let token = emu.holder_token(KIM, AUDIENCE, HOUR).unwrap();
    assert!(matches!(
        v.verify(&token, now()),
        Err(GraphError::OidcKeys { .. })
    ));
    // Discovery under an issuer that is not served.
    let mut s = settings(&emu);
    s.jwks_url = None;
    s.issuer = format!("{}/other-tenant/v2.0", emu.base_url());
    let v = OidcVerifier::new(s).unwrap();
    assert!(matches!(
        v.verify(&token, now()),
        Err(GraphError::OidcKeys { .. })
    ));
    assert!(emu
        .holder_token("nobody@contoso.onmicrosoft.com", AUDIENCE, HOUR)
        .is_err());
}

#[test]
fn password_grant_returns_a_verifiable_id_token() {
    let emu = emulator();
    let path = format!("/{}/oauth2/v2.0/token", emu.tenant_id());
    let form = |user: &str, password: &str, scope: &str| {
        format!(
            "grant_type=password&client_id={}&username={}&password={}&scope={}",
            emu.client_id(),
            user.replace('@', "%40"),
            password,
            scope
        )
    };
    let post = |body: String| {
        raw(
            &emu,
            "POST",
            &path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    };
    let (status, body) = post(form(KIM, DEMO_PASSWORD, "openid%20profile"));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let id_token = v["id_token"].as_str().unwrap();
    let mut s = settings(&emu);
    s.audience = emu.client_id().to_owned();
    let verified = OidcVerifier::new(s)
        .unwrap()
        .verify(id_token, now())
        .unwrap();
    assert_eq!(verified.object_id.as_deref(), Some(KIM_ID));
    // The user's access token is not an application token for Graph.
    let at = v["access_token"].as_str().unwrap();
    let (status, _) = raw(
        &emu,
        "GET",
        "/v1.0/users",
        &[("Authorization", &format!("Bearer {at}"))],
        b"",
    );
    assert_eq!(status, 401);

    let (status, body) = post(form(KIM, "wrong", "openid"));
    assert_eq!(status, 400);
    assert!(body.contains("AADSTS50126"), "{body}");
    let (status, body) = post(form(
        "nobody@contoso.onmicrosoft.com",
        DEMO_PASSWORD,
        "openid",
    ));
    assert_eq!(status, 400);
    assert!(body.contains("AADSTS50034"), "{body}");
    let (status, body) = post(form(KIM, DEMO_PASSWORD, "User.Read"));
    assert_eq!(status, 200, "{body}");
    assert!(serde_json::from_str::<Value>(&body)
        .unwrap()
        .get("id_token")
        .is_none());
    let (status, body) = post(format!(
        "grant_type=password&client_id=unknown&username=kim&password={DEMO_PASSWORD}&scope=openid"
    ));
    assert_eq!(status, 400);
    assert!(body.contains("AADSTS700016"), "{body}");
}

/// Tokens and JWKS made by Python's `cryptography` package (an independent RSA and
/// ECDSA implementation), generated at test time: RS256 (what Entra uses), PS256 and
/// ES256. Skipped when python3 or the package is missing, except in CI (`CI` set), where
/// that is a failure.
#[test]
fn interop_tokens_from_python_cryptography() {
    const SCRIPT: &str = r#"
import base64, json, time
from cryptography.hazmat.primitives.asymmetric import rsa, ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives import hashes
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def uint(i, size=None): return b64(i.to_bytes(size or (i.bit_length() + 7) // 8, "big"))
now = int(time.time())
claims = {"iss": "https://login.microsoftonline.com/python-tenant/v2.0", "aud": "py-client",
          "iat": now, "nbf": now, "exp": now + 3600, "sub": "py-subject", "oid": "py-oid",
          "tid": "python-tenant", "preferred_username": "py@contoso.example", "name": "Py Thon",
          "ver": "2.0"}
def token(alg, kid, sign):
    header = {"typ": "JWT", "alg": alg, "kid": kid}
    si = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
    return si.decode() + "." + b64(sign(si))
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pub = rsa_key.public_key().public_numbers()
ec_key = ec.generate_private_key(ec.SECP256R1())
ecp = ec_key.public_key().public_numbers()
def es256(si):
    r, s = decode_dss_signature(ec_key.sign(si, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
out = {
  "jwks": {"keys": [
    {"kty": "RSA", "use": "sig", "kid": "py-rsa", "n": uint(pub.n), "e": uint(pub.e)},
    {"kty": "EC", "use": "sig", "kid": "py-ec", "crv": "P-256", "x": uint(ecp.x, 32), "y": uint(ecp.y, 32)}]},
  "RS256": token("RS256", "py-rsa", lambda si: rsa_key.sign(si, padding.PKCS1v15(), hashes.SHA256())),
  "PS256": token("PS256", "py-rsa", lambda si: rsa_key.sign(si, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())),
  "ES256": token("ES256", "py-ec", es256),
}
print(json.dumps(out))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        other => {
            assert!(
                std::env::var_os("CI").is_none(),
                "python3 with the cryptography package is required in CI: {other:?}"
            );
            eprintln!("SKIPPED: python3 with the cryptography package is not available");
            return;
        }
    };
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = Jwks::from_json(v["jwks"].to_string().as_bytes()).unwrap();
    assert_eq!(keys.len(), 2);
    let mut s = OidcSettings::new(
        "https://login.microsoftonline.com/python-tenant/v2.0",
        "py-client",
    );
    s.tenant_id = Some("python-tenant".into());
    s.allowed_algs = vec![JwsAlg::Rs256, JwsAlg::Ps256, JwsAlg::Es256];
    for alg in ["RS256", "PS256", "ES256"] {
        let token = v[alg].as_str().unwrap();
        let t = verify_with_jwks(token, &keys, &s, now()).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(t.subject, "py-subject");
        assert_eq!(t.object_id.as_deref(), Some("py-oid"));
        assert_eq!(t.upn.as_deref(), Some("py@contoso.example"));
        // One flipped signature bit fails.
        let mut seg = segments(token);
        let mut sig = URL_SAFE_NO_PAD.decode(&seg[2]).unwrap();
        sig[10] ^= 1;
        seg[2] = b64(&sig);
        assert_eq!(
            refused(verify_with_jwks(&seg.join("."), &keys, &s, now())),
            "signature",
            "{alg}"
        );
    }
    // With the default settings (RS256 only) the others are refused by algorithm.
    s.allowed_algs = vec![JwsAlg::Rs256];
    assert!(verify_with_jwks(v["RS256"].as_str().unwrap(), &keys, &s, now()).is_ok());
    for alg in ["PS256", "ES256"] {
        assert_eq!(
            refused(verify_with_jwks(v[alg].as_str().unwrap(), &keys, &s, now())),
            "alg"
        );
    }
}

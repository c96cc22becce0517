//! ID tokens as Entra issues them (nonce, auth_time, amr, tid, uti; `oid` only with the
//! `profile` scope) and access tokens refused by the verifier.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use entra_graph::emulator::{Emulator, HolderTokenOptions, DEMO_PASSWORD};
use entra_graph::oidc::{OidcSettings, OidcVerifier, VerifiedToken};
use entra_graph::GraphError;
use serde_json::{json, Value};

use super::harness::{emulator, raw, KIM, KIM_ID};

const AUDIENCE: &str = "4f3c2b1a-0000-4000-8000-00000000c11e";

fn verifier(emu: &Emulator) -> OidcVerifier {
    let mut s = OidcSettings::new(emu.oidc_issuer(), AUDIENCE);
    s.jwks_url = Some(emu.jwks_url());
    s.tenant_id = Some(emu.tenant_id().to_owned());
    OidcVerifier::new(s).unwrap()
}

fn verify(emu: &Emulator, token: &str) -> Result<VerifiedToken, GraphError> {
    verifier(emu).verify(token, SystemTime::now())
}

fn claim(r: Result<VerifiedToken, GraphError>) -> (&'static str, String) {
    match r {
        Err(GraphError::Oidc { claim, reason }) => (claim, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn id_tokens_carry_the_sign_in_facts() {
    let emu = emulator();
    let opts = HolderTokenOptions {
        auth_age: Duration::from_secs(120),
        amr: vec!["pwd".into(), "mfa".into()],
        acrs: vec!["c1".into()],
        ..HolderTokenOptions::new(KIM, AUDIENCE).nonce("n-123")
    };
    let t = verify(&emu, &emu.holder_token_with(&opts).unwrap()).unwrap();
    assert_eq!(t.nonce.as_deref(), Some("n-123"));
    assert_eq!(t.amr, ["pwd", "mfa"]);
    assert_eq!(t.acrs, ["c1"]);
    assert_eq!(t.object_id.as_deref(), Some(KIM_ID));
    assert_eq!(t.tenant_id.as_deref(), Some(emu.tenant_id()));
    assert!(t.token_id.as_deref().is_some_and(|u| !u.is_empty()));
    let age = t.issued_at.duration_since(t.auth_time.unwrap()).unwrap();
    assert_eq!(age, Duration::from_secs(120));
    // Two sign-ins, two token ids.
    let t2 = verify(&emu, &emu.holder_token_with(&opts).unwrap()).unwrap();
    assert_ne!(t.token_id, t2.token_id);

    // Without the profile scope Entra leaves out oid (and the other profile claims); the
    // verifier says what is missing.
    let opts = HolderTokenOptions {
        scope: "openid".into(),
        ..HolderTokenOptions::new(KIM, AUDIENCE)
    };
    let claims: Value = serde_json::from_str(&emu.holder_claims_json_with(&opts).unwrap()).unwrap();
    for absent in ["oid", "name", "preferred_username", "nonce"] {
        assert!(claims.get(absent).is_none(), "{absent}: {claims}");
    }
    let (c, reason) = claim(verify(&emu, &emu.holder_token_with(&opts).unwrap()));
    assert_eq!(c, "oid");
    assert!(reason.contains("profile scope"), "{reason}");
}

/// A change to a token's claims.
type Edit = dyn Fn(&mut Value);

#[test]
fn access_tokens_are_not_id_tokens() {
    let emu = emulator();
    let base: Value = serde_json::from_str(
        &emu.holder_claims_json_with(&HolderTokenOptions::new(KIM, AUDIENCE))
            .unwrap(),
    )
    .unwrap();
    let sign = |edit: &Edit| {
        let mut c = base.clone();
        edit(&mut c);
        emu.sign_claims(&c.to_string()).unwrap()
    };
    assert!(verify(&emu, &sign(&|_| {})).is_ok());
    let cases: [(&str, &Edit); 7] = [
        ("scp", &|c| c["scp"] = json!("User.Read")),
        ("roles", &|c| c["roles"] = json!(["Task.Write"])),
        ("idtyp", &|c| c["idtyp"] = json!("app")),
        ("ver", &|c| c["ver"] = json!("1.0")),
        ("ver", &|c| {
            c.as_object_mut().unwrap().remove("ver");
        }),
        ("azp", &|c| c["azp"] = json!("some-other-client")),
        ("tid", &|c| c["tid"] = json!("another-tenant")),
    ];
    for (want, edit) in cases {
        let (c, reason) = claim(verify(&emu, &sign(edit)));
        assert_eq!(c, want, "{reason}");
    }
    // azp equal to the audience is fine; ver may be absent where the settings allow it.
    assert!(verify(&emu, &sign(&|c| c["azp"] = json!(AUDIENCE))).is_ok());
    let mut s = OidcSettings::new(emu.oidc_issuer(), AUDIENCE);
    s.jwks_url = Some(emu.jwks_url());
    s.require_version = false;
    let no_ver = sign(&|c| {
        c.as_object_mut().unwrap().remove("ver");
    });
    assert!(OidcVerifier::new(s)
        .unwrap()
        .verify(&no_ver, SystemTime::now())
        .is_ok());
}

#[test]
fn password_grant_copies_the_nonce_and_sets_amr() {
    let emu = emulator();
    let path = format!("/{}/oauth2/v2.0/token", emu.tenant_id());
    let post = |extra: &str| {
        let body = format!(
            "grant_type=password&client_id={}&username={}&password={DEMO_PASSWORD}&scope=openid%20profile{extra}",
            emu.client_id(),
            KIM.replace('@', "%40"),
        );
        let (status, body) = raw(
            &emu,
            "POST",
            &path,
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let mut s = OidcSettings::new(emu.oidc_issuer(), emu.client_id());
        s.jwks_url = Some(emu.jwks_url());
        OidcVerifier::new(s)
            .unwrap()
            .verify(v["id_token"].as_str().unwrap(), SystemTime::now())
            .unwrap()
    };
    let t = post("&nonce=abc");
    assert_eq!(t.nonce.as_deref(), Some("abc"));
    assert_eq!(t.amr, ["pwd", "mfa"]);
    assert!(t.auth_time.is_some_and(|a| a > UNIX_EPOCH));
    let t = post("&amr=pwd");
    assert_eq!((t.nonce, t.amr), (None, vec!["pwd".to_owned()]));

    // A disabled account gets no tokens (AADSTS50057); enabled again, it does.
    assert!(emu.set_account_enabled(KIM, false));
    let (status, body) = raw(
        &emu,
        "GET",
        &format!("/v1.0/users/{KIM_ID}"),
        &[(
            "Authorization",
            &format!("Bearer {}", super::harness::raw_token(&emu)),
        )],
        b"",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["accountEnabled"],
        false
    );
    let body = format!(
        "grant_type=password&client_id={}&username={}&password={DEMO_PASSWORD}&scope=openid",
        emu.client_id(),
        KIM.replace('@', "%40"),
    );
    let (status, body) = raw(
        &emu,
        "POST",
        &path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    );
    assert_eq!(status, 400);
    assert!(body.contains("AADSTS50057"), "{body}");
    assert!(emu.set_account_enabled(KIM, true));
    assert!(!emu.set_account_enabled("nobody@contoso.onmicrosoft.com", false));
}

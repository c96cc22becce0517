//! The emulator rejects what Entra rejects.

use std::time::Duration;

use entra_graph::ids::{decode_b64url_strict, encode_b64url};
use entra_graph::webauthn::{build_registration, ClientData, FLAG_AT, FLAG_UP};
use entra_graph::wire::{EnforcementType, KeyRestrictions, MethodState, RegistrationBody};
use entra_graph::{ApiVersion, GraphError};

use super::harness::*;
use super::soft_key::{make_credential, Attest, MakeArgs, YK5_STR};

fn rejected(e: GraphError, needle: &str) {
    match &e {
        GraphError::Api {
            status: 400,
            message,
            request_id,
            ..
        } => {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            assert!(request_id.is_some());
        }
        other => panic!("expected 400 mentioning {needle:?}, got {other:?}"),
    }
}

fn setup() -> (entra_graph::emulator::Emulator, entra_graph::GraphClient) {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    (emu, c)
}

#[test]
fn wrong_origin() {
    let (emu, c) = setup();
    let (body, _) = registration(
        &c,
        KIM,
        "k",
        Some("https://login.microsoftonline.com"),
        &MakeArgs::default(),
    );
    rejected(c.register(KIM, &body).unwrap_err(), "origin");
    assert_eq!(emu.method_count(), 0);
}

#[test]
fn wrong_rp_id() {
    let (emu, c) = setup();
    let args = MakeArgs {
        rp_id: "login.microsoftonline.com",
        ..MakeArgs::default()
    };
    let (body, _) = registration(&c, KIM, "k", None, &args);
    rejected(c.register(KIM, &body).unwrap_err(), "rpIdHash");
    assert_eq!(emu.method_count(), 0);
}

#[test]
fn missing_uv() {
    let (_emu, c) = setup();
    let args = MakeArgs {
        flags: FLAG_UP | FLAG_AT,
        ..MakeArgs::default()
    };
    let (body, _) = registration(&c, KIM, "k", None, &args);
    rejected(c.register(KIM, &body).unwrap_err(), "User verification");
}

#[test]
fn expired_challenge() {
    let (emu, c) = setup();
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    emu.advance_clock(Duration::from_secs(5 * 60 + 1));
    rejected(c.register(KIM, &body).unwrap_err(), "expired");
    assert_eq!(emu.method_count(), 0);
}

#[test]
fn challenge_not_issued_or_for_another_user() {
    let (_emu, c) = setup();
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    rejected(
        c.register("adelev@contoso.onmicrosoft.com", &body)
            .unwrap_err(),
        "challenge",
    );
    let mut opts = c.creation_options(KIM, None).unwrap();
    opts.public_key.challenge = encode_b64url(b"made up by the client");
    let cd = ClientData::for_creation(&opts, None).unwrap();
    let (r, _) = make_credential(&cd.hash, &MakeArgs::default());
    rejected(
        c.register(KIM, &build_registration(&cd, "k", &r).unwrap())
            .unwrap_err(),
        "challenge",
    );
}

#[test]
fn tampered_attestation() {
    let (emu, c) = setup();
    for attest in [Attest::X5c, Attest::SelfPacked] {
        let opts = c.creation_options(KIM, None).unwrap();
        let cd = ClientData::for_creation(&opts, None).unwrap();
        let (mut r, _) = make_credential(
            &cd.hash,
            &MakeArgs {
                attest,
                ..MakeArgs::default()
            },
        );
        // Change the signature counter after signing.
        r.auth_data[36] ^= 0x01;
        let body = build_registration(&cd, "k", &r).unwrap();
        rejected(c.register(KIM, &body).unwrap_err(), "signature");
    }
    assert_eq!(emu.method_count(), 0);
}

#[test]
fn blocked_aaguid_and_allow_list() {
    let (emu, c) = setup();
    let mut p = emu.policy();
    p.set_key_restrictions(Some(KeyRestrictions {
        is_enforced: true,
        enforcement_type: Some(EnforcementType::Block),
        aa_guids: vec![YK5_STR.into()],
    }));
    emu.set_policy(p.clone());
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    rejected(c.register(KIM, &body).unwrap_err(), "blocked");
    p.set_key_restrictions(Some(KeyRestrictions {
        is_enforced: true,
        enforcement_type: Some(EnforcementType::Allow),
        aa_guids: vec!["00000000-0000-0000-0000-000000000001".into()],
    }));
    emu.set_policy(p);
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    rejected(c.register(KIM, &body).unwrap_err(), "allow list");
    assert_eq!(emu.method_count(), 0);
}

/// Issue 13 item 1: enforcement means "in the FIDO MDS and passing the checks", so a
/// verifying certificate chain that MDS does not list (the soft key's home-made one;
/// the emulator has no metadata here) is refused too. The old emulator accepted it.
#[test]
fn attestation_enforced_refuses_none_self_and_chains_not_in_mds() {
    let (emu, c) = setup();
    let mut p = emu.policy();
    p.set_attestation_enforced(true);
    emu.set_policy(p);
    for attest in [Attest::None, Attest::SelfPacked] {
        let (body, _) = registration(
            &c,
            KIM,
            "k",
            None,
            &MakeArgs {
                attest,
                ..MakeArgs::default()
            },
        );
        rejected(
            c.register(KIM, &body).unwrap_err(),
            "Attestation is enforced",
        );
    }
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    rejected(
        c.register(KIM, &body).unwrap_err(),
        "Attestation is enforced",
    );
    assert_eq!(emu.method_count(), 0);
    // Enforcement off: it registers, and Entra says what it is: not attested.
    let mut p = emu.policy();
    p.set_attestation_enforced(false);
    emu.set_policy(p);
    let m = c.register(KIM, &body).unwrap().method;
    assert_eq!(
        m.attestation_level,
        Some(entra_graph::wire::AttestationLevel::NotAttested)
    );
    assert_eq!(
        m.attestation_certificates.len(),
        1,
        "the chain is still listed"
    );
    // With FIDO metadata listing the model, enforcement passes and it is attested.
    emu.set_attestation_metadata(Some(mds_listing_the_soft_key()));
    let mut p = emu.policy();
    p.set_attestation_enforced(true);
    emu.set_policy(p);
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    let m = c.register(KIM, &body).unwrap().method;
    assert_eq!(
        m.attestation_level,
        Some(entra_graph::wire::AttestationLevel::Attested)
    );
}

#[test]
fn v1_needs_self_service_registration() {
    let (emu, c) = setup();
    let mut p = emu.policy();
    p.is_self_service_registration_allowed = Some(false);
    emu.set_policy(p);
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    rejected(
        c.register(KIM, &body).unwrap_err(),
        "isSelfServiceRegistrationAllowed",
    );
}

#[test]
fn excluded_credential_registered_twice() {
    let (emu, c) = setup();
    let opts = c.creation_options(KIM, None).unwrap();
    let cd = ClientData::for_creation(&opts, None).unwrap();
    let (r, _) = make_credential(&cd.hash, &MakeArgs::default());
    let body = build_registration(&cd, "k", &r).unwrap();
    c.register(KIM, &body).unwrap();
    // The same credential over a new challenge.
    let opts2 = c.creation_options(KIM, None).unwrap();
    let cd2 = ClientData::for_creation(&opts2, None).unwrap();
    let mut body2 = build_registration(&cd2, "k", &r).unwrap();
    body2.display_name = "again".into();
    rejected(c.register(KIM, &body2).unwrap_err(), "already registered");
    assert_eq!(emu.method_count(), 1);
}

fn post_raw(emu: &entra_graph::emulator::Emulator, body: &[u8]) -> (u16, String) {
    let token = raw_token(emu);
    raw(
        emu,
        "POST",
        &format!("/v1.0/users/{KIM}/authentication/fido2Methods"),
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        body,
    )
}

#[test]
fn display_name_of_31_refused_30_accepted() {
    let (emu, c) = setup();
    let (mut body, _): (RegistrationBody, _) =
        registration(&c, KIM, "k", None, &MakeArgs::default());
    body.display_name = "x".repeat(31);
    // The client refuses before sending ...
    assert!(matches!(
        c.register(KIM, &body),
        Err(GraphError::InvalidInput {
            field: "displayName",
            ..
        })
    ));
    // ... and the emulator refuses it too.
    let (status, text) = post_raw(&emu, &serde_json::to_vec(&body).unwrap());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("displayName"), "{text}");
    body.display_name = "y".repeat(30);
    let (status, text) = post_raw(&emu, &serde_json::to_vec(&body).unwrap());
    assert_eq!(status, 201, "{text}");
    assert_eq!(emu.method_count(), 1);
}

#[test]
fn body_serialised_twice_is_missing_entity() {
    let (emu, c) = setup();
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    let once = serde_json::to_string(&body).unwrap();
    let twice = serde_json::to_vec(&once).unwrap();
    let (status, text) = post_raw(&emu, &twice);
    assert_eq!(status, 400);
    let e: entra_graph::wire::ODataErrorBody = serde_json::from_str(&text).unwrap();
    assert_eq!(
        e.error.message,
        "The request is missing a fido2AuthenticationMethod entity"
    );
    assert!(e.error.inner_error.unwrap().request_id.is_some());
}

#[test]
fn unauthenticated_and_me_and_unknown_segments() {
    let emu = emulator();
    let (status, _) = raw(&emu, "GET", "/v1.0/users", &[], b"");
    assert_eq!(status, 401);
    let token = raw_token(&emu);
    let auth = format!("Bearer {token}");
    let (status, _) = raw(
        &emu,
        "GET",
        "/v1.0/me/authentication/fido2Methods",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(status, 405);
    let (status, text) = raw(
        &emu,
        "GET",
        "/v1.0/nonsense",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(status, 400);
    assert!(text.contains("nonsense"));
    let cd = decode_b64url_strict("eyJ9", "x");
    assert!(cd.is_ok());
}

#[test]
fn user_outside_the_policy_targets() {
    let (emu, c) = setup();
    let mut p = emu.policy();
    p.include_targets[0].id = GROUP.into();
    emu.set_policy(p.clone());
    // Lee is not in the group; Kim is.
    let lee = "leeg@contoso.onmicrosoft.com";
    // Issue 13 item 8: Entra refuses an out-of-scope user at creationOptions with 400
    // (the old emulator issued options and refused only the POST, with 403).
    let e = c.creation_options(lee, None).unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    c.register(KIM, &body).unwrap();
    // Options issued while in scope; then excluding Kim's group wins over including
    // it, and the POST is refused.
    let (body, _) = registration(&c, KIM, "k2", None, &MakeArgs::default());
    p.exclude_targets = p.include_targets.clone();
    emu.set_policy(p.clone());
    assert_eq!(c.register(KIM, &body).unwrap_err().status(), Some(403));
    assert_eq!(
        c.creation_options(KIM, None).unwrap_err().status(),
        Some(400)
    );
    // A disabled method fails at creationOptions too.
    p.exclude_targets.clear();
    p.state = MethodState::Disabled;
    emu.set_policy(p);
    assert_eq!(
        c.creation_options(KIM, None).unwrap_err().status(),
        Some(400)
    );
    assert_eq!(emu.method_count(), 1);
}

#[test]
fn passkey_profile_without_device_bound() {
    let (emu, c) = setup();
    let mut p = emu.policy();
    p.default_passkey_profile = Some("p1".into());
    p.passkey_profiles = vec![entra_graph::wire::PasskeyProfile {
        id: "p1".into(),
        name: Some("Synced only".into()),
        passkey_types: Some("synced".into()),
        attestation_enforcement: None,
        key_restrictions: None,
    }];
    emu.set_policy(p);
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    rejected(c.register(KIM, &body).unwrap_err(), "Device-bound");
    assert!(matches!(
        plain(c.preflight(KIM, YK5_STR, true)),
        Err(GraphError::Preflight(
            entra_graph::policy::PreflightError::DeviceBoundNotAllowed { .. }
        ))
    ));
}

#[test]
fn attestation_certificate_for_another_model() {
    let (emu, c) = setup();
    // The attestation certificate names the YubiKey 5 AAGUID; authData claims another.
    let args = MakeArgs {
        aaguid: [0x42; 16],
        ..MakeArgs::default()
    };
    let (body, _) = registration(&c, KIM, "k", None, &args);
    rejected(
        c.register(KIM, &body).unwrap_err(),
        "Attestation signature verification failed",
    );
    assert_eq!(emu.method_count(), 0);
}

#[test]
fn token_endpoint_checks_assertions() {
    use entra_graph::auth::{AssertionAlg, CertificateCredential};
    use entra_graph::emulator::{AppRegistration, Emulator, EmulatorConfig};
    let fixture = |n: &str| {
        std::fs::read_to_string(format!("{}/tests/fixtures/{n}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    };
    let emu = Emulator::start(EmulatorConfig {
        apps: vec![AppRegistration {
            client_id: "cert-app".into(),
            client_secret: None,
            certificates_pem: vec![fixture("app-cert.pem")],
            roles: None,
        }],
        ..EmulatorConfig::default()
    })
    .unwrap();
    let cert = CertificateCredential::from_pem(
        &fixture("app-cert.pem"),
        &fixture("app-key.pem"),
        AssertionAlg::Ps256,
    )
    .unwrap();
    let post = |assertion: &str, client_id: &str| {
        let form = format!(
            "grant_type=client_credentials&client_id={client_id}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default\
             &client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
        );
        raw(
            &emu,
            "POST",
            &format!("/{}/oauth2/v2.0/token", emu.tenant_id()),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
    };
    let now = std::time::SystemTime::now();
    let good = cert.assertion("cert-app", &emu.token_url(), now);
    assert_eq!(post(&good, "cert-app").0, 200);
    let (status, body) = post(&good, "cert-app");
    assert_eq!(status, 401, "replayed jti");
    assert!(body.contains("AADSTS700025"), "{body}");
    let wrong_aud = cert.assertion(
        "cert-app",
        "https://login.microsoftonline.com/other/oauth2/v2.0/token",
        now,
    );
    let (status, body) = post(&wrong_aud, "cert-app");
    assert_eq!(status, 401);
    assert!(body.contains("AADSTS700024"), "{body}");
    let expired = cert.assertion(
        "cert-app",
        &emu.token_url(),
        now - Duration::from_secs(3600),
    );
    let (status, body) = post(&expired, "cert-app");
    assert_eq!(status, 401);
    assert!(body.contains("valid time range"), "{body}");
    let signed = cert.assertion("cert-app", &emu.token_url(), now);
    // Change one character in the middle of the signature.
    let at = signed.rfind('.').unwrap() + 20;
    let old = &signed[at..at + 1];
    let new = if old == "A" { "B" } else { "A" };
    let tampered = format!("{}{new}{}", &signed[..at], &signed[at + 1..]);
    let (status, body) = post(&tampered, "cert-app");
    assert_eq!(status, 401);
    assert!(body.contains("AADSTS700027"), "{body}");
    let (status, body) = post(
        &cert.assertion("other-app", &emu.token_url(), now),
        "other-app",
    );
    assert_eq!(status, 400);
    assert!(body.contains("AADSTS700016"), "{body}");
}

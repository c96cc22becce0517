//! Issue 19 item 7: provenance on beta (identity verification events and
//! `attestProvenance`) against the emulator over HTTP. The emulator behaviour each test
//! relies on is cited in `docs/ENTRA.md`, section "Provenance".

use std::time::{Duration, SystemTime};

use entra_graph::provenance::{
    event_id_for, ProvenanceError, VerificationDetails, VerificationEvent, DETAILS_PROPERTY,
};

use super::*;

const WHFB: &str = "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod";

fn event(id: &str, source: &str) -> VerificationEvent {
    let at = SystemTime::now() - Duration::from_secs(60);
    VerificationEvent {
        id: id.into(),
        details: VerificationDetails {
            source: source.into(),
            external_credential_id: format!("urn:keysmith:test:{id}"),
            issued: at,
            verified: at,
            expires: None,
        },
    }
}

fn app_with(roles: &[&str]) -> EmulatorConfig {
    EmulatorConfig {
        apps: vec![AppRegistration {
            client_id: "prov-app".into(),
            client_secret: Some("prov-secret".into()),
            certificates_pem: vec![],
            roles: Some(roles.iter().map(|r| (*r).to_owned()).collect()),
        }],
        ..EmulatorConfig::default()
    }
}

/// The event id is an idempotency key: the same id and body record one event (also when
/// the first answer is lost and the client retries); the same id with other facts is
/// 409, typed as `EventConflict`.
#[test]
fn verification_events_are_idempotent_by_id() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::Beta);
    let id = event_id_for(&["job-1", "key-1"]);
    let first = c
        .record_verification_event(KIM, &event(&id, "operator alice"))
        .unwrap();
    assert_eq!(first.id, id);
    assert_eq!(first.state.as_deref(), Some("active"));
    let again = c
        .record_verification_event(KIM, &event(&id, "operator alice"))
        .unwrap();
    assert_eq!(again.id, id);
    assert_eq!(emu.verification_events(KIM).len(), 1, "no duplicate");
    assert!(matches!(
        c.record_verification_event(KIM, &event(&id, "operator bob")),
        Err(ProvenanceError::EventConflict { ref event_id, .. }) if *event_id == id
    ));
    // The answer is lost after the event was recorded: the retry records nothing more.
    let id2 = event_id_for(&["job-2", "key-1"]);
    emu.inject(FaultRule::new(
        "POST",
        "/verificationEvents",
        Fault::CommitThenDrop,
        1,
    ));
    let got = c
        .record_verification_event(KIM, &event(&id2, "operator alice"))
        .unwrap();
    assert_eq!(got.id, id2);
    assert_eq!(emu.verification_events(KIM).len(), 2);
    assert_eq!(
        emu.verification_events(KIM)[0][DETAILS_PROPERTY]["source"],
        "operator alice"
    );
}

/// The emulator checks the facts as documented (source ≤ 200, a URN ≤ 256, issued not in
/// the future, expiry after verification) even for a caller that does not.
#[test]
fn the_emulator_checks_the_documented_limits() {
    let emu = emulator();
    let token = raw_token(&emu);
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let path = format!("/beta/users/{KIM}/identityVerificationStatus/verificationEvents");
    let post = |details: serde_json::Value| {
        let body = serde_json::json!({ "id": "e-1", DETAILS_PROPERTY: details });
        raw(&emu, "POST", &path, &headers, body.to_string().as_bytes())
    };
    let long = "s".repeat(201);
    let (status, text) = post(serde_json::json!({ "source": long }));
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("200 characters"), "{text}");
    let urn = format!("urn:keysmith:{}", "x".repeat(250));
    let (status, text) = post(serde_json::json!({ "externalCredentialId": urn }));
    assert_eq!((status, text.contains("256")), (400, true), "{text}");
    let (status, text) = post(serde_json::json!({ "externalCredentialId": "not-a-urn" }));
    assert_eq!((status, text.contains("URN")), (400, true), "{text}");
    let (status, text) = post(serde_json::json!({ "issuedDateTime": "2999-01-01T00:00:00Z" }));
    assert_eq!((status, text.contains("future")), (400, true), "{text}");
    let (status, text) = post(serde_json::json!({
        "verifiedDateTime": "2026-01-02T00:00:00Z",
        "expiresDateTime": "2026-01-01T00:00:00Z",
    }));
    assert_eq!(
        (status, text.contains("after verifiedDateTime")),
        (400, true),
        "{text}"
    );
    let (status, text) = raw(
        &emu,
        "POST",
        &path,
        &headers,
        b"{\"verificationDetails\":{}}",
    );
    assert_eq!(
        (status, text.contains("id is required")),
        (400, true),
        "{text}"
    );
    assert!(emu.verification_events(KIM).is_empty());
    // Not on v1.0.
    let v1 = path.replacen("/beta/", "/v1.0/", 1);
    let (status, text) = raw(&emu, "POST", &v1, &headers, b"{}");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("identityVerificationStatus"), "{text}");
}

/// `attestProvenance` ties the event to a FIDO2 method (200, a `credentialProvenance`
/// naming the event; again adds nothing); another method type is refused (400), as is an
/// event the user does not have.
#[test]
fn attest_provenance_only_on_fido2_methods() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::Beta);
    let (body, _) = registration(&c, KIM, "key", None, &MakeArgs::default());
    let method = c.register(KIM, &body).unwrap().method;
    let id = event_id_for(&["job", "key"]);
    c.record_verification_event(KIM, &event(&id, "operator alice"))
        .unwrap();
    let p = c
        .attest_provenance(KIM, &method.id, "in-person check", &id)
        .unwrap();
    assert_eq!(p.assertions.len(), 1);
    assert_eq!(
        p.assertions[0].verification_event_id.as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        p.assertions[0].provenance_type.as_deref(),
        Some("manualAttestation")
    );
    assert_eq!(p.asserted_by_type.as_deref(), Some("application"));
    let p = c
        .attest_provenance(KIM, &method.id, "in-person check", &id)
        .unwrap();
    assert_eq!(p.assertions.len(), 1, "attesting again adds nothing");
    // Not a FIDO2 method.
    let whfb = emu.add_authentication_method(KIM, WHFB).unwrap();
    match c.attest_provenance(KIM, &whfb, "in-person check", &id) {
        Err(ProvenanceError::MethodRefused { method_id, source }) => {
            assert_eq!(method_id, whfb);
            assert_eq!(source.status(), Some(400));
            assert!(source.to_string().contains("FIDO2"), "{source}");
        }
        other => panic!("expected MethodRefused, got {other:?}"),
    }
    assert!(emu.provenance_assertions(&whfb).is_empty());
    // An event the user does not have.
    assert!(matches!(
        c.attest_provenance(KIM, &method.id, "in-person check", "no-such-event"),
        Err(ProvenanceError::MethodRefused { .. })
    ));
    assert_eq!(emu.provenance_assertions(&method.id).len(), 1);
}

/// Both calls need a beta connection: a v1.0 client refuses before sending anything.
#[test]
fn a_v1_connection_is_refused_before_any_request() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let before = emu.request_log().len();
    assert_eq!(
        c.record_verification_event(KIM, &event("e", "op")),
        Err(ProvenanceError::NeedsBeta { version: "v1.0" })
    );
    assert!(matches!(
        c.attest_provenance(KIM, "m", "r", "e"),
        Err(ProvenanceError::NeedsBeta { .. })
    ));
    assert_eq!(emu.request_log().len(), before, "nothing sent");
}

/// Each call needs its own permission (checked from the token's roles): a passkey-only
/// app gets 403, typed with the permission it lacks.
#[test]
fn each_call_needs_its_permission() {
    let emu = Emulator::start(app_with(&["UserAuthMethod-Passkey.ReadWrite.All"])).unwrap();
    let c = client(&emu, ApiVersion::Beta);
    let (body, _) = registration(&c, KIM, "key", None, &MakeArgs::default());
    let method = c.register(KIM, &body).unwrap().method;
    assert!(matches!(
        c.record_verification_event(KIM, &event("e", "op")),
        Err(ProvenanceError::PermissionMissing {
            permission: "IdentityVerification.ReadWrite.All",
            ..
        })
    ));
    assert!(matches!(
        c.attest_provenance(KIM, &method.id, "r", "e"),
        Err(ProvenanceError::PermissionMissing {
            permission: "CredentialProvenance.ReadWrite.All",
            ..
        })
    ));
    let emu = Emulator::start(app_with(&[
        "UserAuthMethod-Passkey.ReadWrite.All",
        "IdentityVerification.ReadWrite.All",
        "CredentialProvenance.ReadWrite.All",
    ]))
    .unwrap();
    let c = client(&emu, ApiVersion::Beta);
    let (body, _) = registration(&c, KIM, "key", None, &MakeArgs::default());
    let method = c.register(KIM, &body).unwrap().method;
    c.record_verification_event(KIM, &event("e", "op")).unwrap();
    c.attest_provenance(KIM, &method.id, "r", "e").unwrap();
}

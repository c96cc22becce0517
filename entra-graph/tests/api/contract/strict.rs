//! Issue 13 item 8: the emulator as strict and as lenient as Entra. Each test shows a
//! behaviour the old emulator got wrong (it would pass, or fail, the other way).

use entra_graph::webauthn::{build_registration, ClientData};

use super::super::soft_key::make_credential;
use super::*;

/// Lenient like Entra: a challenge is reusable until it expires (DSI-TEST registers two
/// passkeys from one creationOptions answer). The old emulator consumed it on first use
/// and answered 400 "not issued" to the second key.
#[test]
fn two_keys_register_on_one_challenge() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let options = c.creation_options(KIM, None).unwrap();
    let cd = ClientData::for_creation(&options, None).unwrap();
    for name in ["first", "second"] {
        let (result, _) = make_credential(&cd.hash, &MakeArgs::default());
        let body = build_registration(&cd, name, &result).unwrap();
        c.register(KIM, &body).unwrap();
    }
    assert_eq!(emu.methods(KIM).len(), 2);
    assert_eq!(emu.outstanding_challenges(), 1, "kept until it expires");
    // Expired, it is refused.
    emu.advance_clock(Duration::from_secs(6 * 60));
    let (result, _) = make_credential(&cd.hash, &MakeArgs::default());
    let body = build_registration(&cd, "late", &result).unwrap();
    let e = c.register(KIM, &body).unwrap_err();
    assert!(e.to_string().contains("expired"), "{e}");
}

/// Strict like Entra: members other than `id`, `response`, `clientExtensionResults`
/// are refused (DSI-PKC). The client sends only those; a browser-style body with
/// `rawId`/`type` (which the old emulator took) gets 400.
#[test]
fn unknown_members_in_the_registration_body_are_refused() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let token = raw_token(&emu);
    let auth = format!("Bearer {token}");
    let path = format!("/v1.0/users/{KIM_ID}/authentication/fido2Methods");
    for (member, at) in [
        ("rawId", "publicKeyCredential"),
        ("type", "publicKeyCredential"),
        ("authenticatorAttachment", "publicKeyCredential"),
        ("transports", "response"),
        ("isUsableOnce", ""),
    ] {
        let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
        let mut v = serde_json::to_value(&body).unwrap();
        let target = match at {
            "publicKeyCredential" => &mut v["publicKeyCredential"],
            "response" => &mut v["publicKeyCredential"]["response"],
            _ => &mut v,
        };
        target[member] = serde_json::json!("x");
        let (status, text) = raw(
            &emu,
            "POST",
            &path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &serde_json::to_vec(&v).unwrap(),
        );
        assert_eq!(status, 400, "{member}: {text}");
        assert!(text.contains(member), "{text}");
    }
    assert_eq!(emu.method_count(), 0);
    // What the client sends is accepted.
    let (body, _) = registration(&c, KIM, "k", None, &MakeArgs::default());
    c.register(KIM, &body).unwrap();
}

/// Strict like Entra: a method id is an exact key. The old emulator also matched the
/// credential id in any other encoding, so a delete by raw credential id passed.
#[test]
fn method_ids_are_exact() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let (body, cred) = registration(&c, KIM, "k", None, &MakeArgs::default());
    let m = c.register(KIM, &body).unwrap().method;
    for other in [
        encode_b64url(&cred),
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &cred),
    ] {
        assert_ne!(other, m.id);
        assert_eq!(c.get_method(KIM, &other).unwrap_err().status(), Some(404));
    }
    assert_eq!(c.get_method(KIM, &m.id).unwrap(), m);
}

//! Raw CTAP messages against the trussed firmware at the 64-byte report boundary.

use super::firmware::*;
use super::*;

use fido_core::cbor::{self, Value};

fn config() -> HidConfig {
    HidConfig {
        inactivity_timeout: Duration::from_secs(5),
        transaction_timeout: Duration::from_secs(30),
        ..HidConfig::default()
    }
}

fn ctap2(t: &mut CtapHidTransport<FirmwarePipe>, request: &[u8]) -> (u8, Option<Value>) {
    let resp = t.transact(request, &mut |_| {}).unwrap();
    let body = match resp.get(1..) {
        Some(b) if !b.is_empty() => Some(cbor::decode(b).unwrap()),
        _ => None,
    };
    (resp[0], body)
}

#[test]
fn init_ping_wink_and_get_info() {
    with_trussed_key(|pipe| {
        let mut t = CtapHidTransport::with_config(pipe, config()).unwrap();
        let init = *t.init_response();
        assert_eq!(init.protocol_version, 2);
        assert!(init.cid.is_allocatable());
        assert!(init
            .capabilities
            .contains(fido_core::ctaphid::Capabilities::CBOR));

        for len in [0usize, 1, 57, 58, 116, 117, 1024, 3000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            t.ping(&data).unwrap();
        }
        assert!(matches!(t.wink(), Err(Error::Unsupported(_))));

        let (status, body) = ctap2(&mut t, &[0x04]);
        assert_eq!(status, 0x00);
        let body = body.expect("getInfo has a body");
        let map = body.as_map("getInfo").unwrap();
        let versions = map
            .require_int(1, "getInfo.versions")
            .unwrap()
            .as_text_array("getInfo.versions")
            .unwrap();
        assert!(versions.iter().any(|v| v == "FIDO_2_0"), "{versions:?}");
        let aaguid = map
            .require_int(3, "getInfo.aaguid")
            .unwrap()
            .as_byte_array::<16>("getInfo.aaguid")
            .unwrap();
        assert_eq!(aaguid.len(), 16);
        // A second channel on the same key works too (fresh INIT).
        t.resync().unwrap();
        assert_eq!(ctap2(&mut t, &[0x04]).0, 0x00);
    });
}

#[test]
fn large_garbage_request_crosses_many_reports() {
    with_trussed_key(|pipe| {
        let mut t = CtapHidTransport::with_config(pipe, config()).unwrap();
        // 7000 bytes: one init report and 118 continuations into the firmware. The
        // CBOR is not valid, so the key must answer with a CTAP error status.
        let mut req = vec![0x01];
        req.extend(std::iter::repeat_n(0xff, 6999));
        let resp = t.transact(&req, &mut |_| {}).unwrap();
        assert_ne!(resp[0], 0x00, "garbage must not succeed");
        // The link is still in step.
        assert_eq!(ctap2(&mut t, &[0x04]).0, 0x00);
    });
}

fn client_pin(
    t: &mut CtapHidTransport<FirmwarePipe>,
    params: Vec<(u64, Value)>,
) -> (u8, Option<Value>) {
    let mut req = vec![0x06];
    req.extend(cbor::encode(&Value::map(params)));
    ctap2(t, &req)
}

fn key_agreement(t: &mut CtapHidTransport<FirmwarePipe>) -> fido_core::cose::CoseKey {
    let (status, body) = client_pin(t, vec![(1, Value::from(2u64)), (2, Value::from(2u64))]);
    assert_eq!(status, 0x00, "getKeyAgreement");
    let body = body.unwrap();
    let key = body
        .as_map("clientPIN")
        .unwrap()
        .require_int(1, "clientPIN.keyAgreement")
        .unwrap()
        .clone();
    fido_core::cose::CoseKey::from_value(&key).unwrap()
}

#[test]
fn set_pin_and_pin_token_v2_with_permissions() {
    use fido_core::pin::{
        pin_token_request, set_pin, Permissions, Pin, PinUvAuthProtocol, PinUvAuthToken,
    };
    use rand_core::OsRng;

    with_trussed_key(|pipe| {
        let mut t = CtapHidTransport::with_config(pipe, config()).unwrap();
        let proto = PinUvAuthProtocol::Two;
        let pin = Pin::new("2468ace").unwrap();

        // setPIN (protocol two).
        let peer = key_agreement(&mut t);
        let p = set_pin(proto, &peer, &pin, &mut OsRng).unwrap();
        let (status, _) = client_pin(
            &mut t,
            vec![
                (1, Value::from(2u64)),
                (2, Value::from(3u64)),
                (3, p.key_agreement.to_value()),
                (4, Value::from(p.pin_uv_auth_param.clone())),
                (5, Value::from(p.new_pin_enc.clone())),
            ],
        );
        assert_eq!(status, 0x00, "setPIN");

        // getInfo now reports clientPin = true.
        let (_, info) = ctap2(&mut t, &[0x04]);
        let info = info.unwrap();
        let options = info
            .as_map("getInfo")
            .unwrap()
            .require_int(4, "getInfo.options")
            .unwrap()
            .clone();
        let client_pin_set = options
            .as_map("getInfo.options")
            .unwrap()
            .get_text("clientPin")
            .map(|v| v.as_bool("getInfo.options.clientPin").unwrap());
        assert_eq!(client_pin_set, Some(true));

        // getPinUvAuthTokenUsingPinWithPermissions (0x09), credential management.
        let perms = Permissions::CREDENTIAL_MANAGEMENT;
        let token_request = |t: &mut CtapHidTransport<FirmwarePipe>, pin: &Pin| {
            let peer = key_agreement(t);
            let req = pin_token_request(proto, &peer, pin, &mut OsRng).unwrap();
            let (status, body) = client_pin(
                t,
                vec![
                    (1, Value::from(2u64)),
                    (2, Value::from(9u64)),
                    (3, req.key_agreement.to_value()),
                    (6, Value::from(req.pin_hash_enc.clone())),
                    (9, Value::from(u64::from(perms.bits()))),
                ],
            );
            (status, body, req.shared_secret)
        };
        let (status, _, _) = token_request(&mut t, &Pin::new("wrong-pin").unwrap());
        assert_eq!(status, 0x31, "CTAP2_ERR_PIN_INVALID for a wrong PIN");

        let (status, body, shared) = token_request(&mut t, &pin);
        assert_eq!(status, 0x00, "getPinUvAuthTokenUsingPinWithPermissions");
        let body = body.unwrap();
        let enc = body
            .as_map("clientPIN")
            .unwrap()
            .require_int(2, "clientPIN.pinUvAuthToken")
            .unwrap()
            .as_bytes("clientPIN.pinUvAuthToken")
            .unwrap()
            .to_vec();
        let token = PinUvAuthToken::decrypt(proto, &shared, &enc, perms, None).unwrap();

        // The token works: credentialManagement getCredsMetadata (0x0A, sub 0x01).
        let mut req = vec![0x0a];
        req.extend(cbor::encode(&Value::map([
            (1u64, Value::from(1u64)),
            (3u64, Value::from(2u64)),
            (4u64, Value::from(token.authenticate(&[0x01]))),
        ])));
        let (status, body) = ctap2(&mut t, &req);
        assert_eq!(status, 0x00, "getCredsMetadata with the token");
        let existing = body
            .unwrap()
            .as_map("credMgmt")
            .unwrap()
            .require_int(1, "credMgmt.existingResidentCredentialsCount")
            .unwrap()
            .as_u64("credMgmt.existingResidentCredentialsCount")
            .unwrap();
        assert_eq!(existing, 0);

        // A forged pinUvAuthParam is refused.
        let mut req = vec![0x0a];
        req.extend(cbor::encode(&Value::map([
            (1u64, Value::from(1u64)),
            (3u64, Value::from(2u64)),
            (4u64, Value::from(vec![0u8; 32])),
        ])));
        assert_eq!(ctap2(&mut t, &req).0, 0x33, "CTAP2_ERR_PIN_AUTH_INVALID");
    });
}

/// authenticatorMakeCredential (0x01) for an ES256 credential, no PIN, no UV.
fn make_credential_request(rp_id: &str, client_data_hash: &[u8]) -> Vec<u8> {
    let mut req = vec![0x01];
    req.extend(cbor::encode(&Value::map([
        (1u64, Value::from(client_data_hash.to_vec())),
        (2u64, Value::map([("id", Value::from(rp_id))])),
        (
            3u64,
            Value::map([
                ("id", Value::from(vec![0x55u8; 16])),
                ("name", Value::from("user@example.com")),
            ]),
        ),
        (
            4u64,
            Value::from(vec![Value::map([
                ("alg", Value::from(-7i64)),
                ("type", Value::from("public-key")),
            ])]),
        ),
    ])));
    req
}

#[test]
fn keepalives_while_waiting_for_touch_reach_the_callback() {
    with_trussed_key_touching_after(Duration::from_millis(600), |pipe| {
        // Shorter than the touch delay: only keepalives keep the transaction alive.
        let config = HidConfig {
            inactivity_timeout: Duration::from_millis(300),
            ..config()
        };
        let mut t = CtapHidTransport::with_config(pipe, config).unwrap();
        let mut progress = Vec::new();
        let start = Instant::now();
        let resp = t
            .transact(
                &make_credential_request("example.org", &[7; 32]),
                &mut |p| progress.push(p),
            )
            .unwrap();
        assert_eq!(resp[0], 0x00, "makeCredential after the touch");
        assert!(start.elapsed() >= Duration::from_millis(600));
        assert!(
            progress.contains(&Progress::UserPresenceNeeded),
            "{progress:?}"
        );
    });
}

#[test]
fn cancel_reaches_the_firmware_but_virt_cannot_interrupt_the_touch_wait() {
    // CTAPHID_CANCEL goes out on the wire; usbd-ctaphid would raise trussed's
    // interrupt flag, but the virt platform has none wired into the client, so the
    // key keeps waiting for the touch and then answers normally. The transport
    // reports that real answer (the operation did happen) rather than Cancelled.
    with_trussed_key_touching_after(Duration::from_millis(800), |pipe| {
        let mut t = CtapHidTransport::with_config(pipe, config()).unwrap();
        let token = t.cancel_token();
        let mut cancelled = false;
        let resp = t.transact(
            &make_credential_request("example.net", &[9; 32]),
            &mut |p| {
                if p == Progress::UserPresenceNeeded && !cancelled {
                    cancelled = true;
                    token.cancel();
                }
            },
        );
        assert!(cancelled);
        let resp = resp.unwrap();
        assert_eq!(resp[0], 0x00);
    });
}

#[test]
fn make_credential_then_get_assertion_signature_verifies() {
    use p256::ecdsa::signature::Verifier;
    use sha2::{Digest, Sha256};

    with_trussed_key(|pipe| {
        let mut t = CtapHidTransport::with_config(pipe, config()).unwrap();
        let rp_id = "login.example.com";
        let client_data_hash = Sha256::digest(b"client data of the test");

        // authenticatorMakeCredential (0x01), ES256, no PIN set: user presence only.
        let req = make_credential_request(rp_id, &client_data_hash);
        let resp = t.transact(&req, &mut |_| {}).unwrap();
        assert_eq!(resp[0], 0x00, "makeCredential");
        let att = cbor::decode(&resp[1..]).unwrap();
        let att = att.as_map("attestationObject").unwrap();
        att.require_int(1, "fmt").unwrap().as_text("fmt").unwrap();
        let auth_data = att
            .require_int(2, "authData")
            .unwrap()
            .as_bytes("authData")
            .unwrap()
            .to_vec();
        assert_eq!(
            &auth_data[..32],
            Sha256::digest(rp_id.as_bytes()).as_slice()
        );
        let flags = auth_data[32];
        assert_eq!(flags & 0x41, 0x41, "UP and AT flags");
        // attestedCredentialData: aaguid(16) | credIdLen(2) | credId | COSE key.
        let acd = &auth_data[37..];
        let id_len = usize::from(u16::from_be_bytes([acd[16], acd[17]]));
        let cred_id = acd[18..18 + id_len].to_vec();
        let (cose, _) =
            cbor::decode_prefix_with(&acd[18 + id_len..], cbor::Limits::RESPONSE).unwrap();
        let fido_core::cose::CoseKey::Ec2 { x, y, .. } =
            fido_core::cose::CoseKey::from_value(&cose).unwrap()
        else {
            panic!("ES256 credential expected");
        };
        let mut sec1 = vec![0x04];
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).unwrap();

        // authenticatorGetAssertion (0x02) with that credential.
        let client_data_hash = Sha256::digest(b"another challenge");
        let mut req = vec![0x02];
        req.extend(cbor::encode(&Value::map([
            (1u64, Value::from(rp_id)),
            (2u64, Value::from(client_data_hash.to_vec())),
            (
                3u64,
                Value::from(vec![Value::map([
                    ("id", Value::from(cred_id.clone())),
                    ("type", Value::from("public-key")),
                ])]),
            ),
        ])));
        let (status, body) = ctap2(&mut t, &req);
        assert_eq!(status, 0x00, "getAssertion");
        let body = body.unwrap();
        let m = body.as_map("getAssertion").unwrap();
        let auth_data = m
            .require_int(2, "authData")
            .unwrap()
            .as_bytes("authData")
            .unwrap();
        let signature = m
            .require_int(3, "signature")
            .unwrap()
            .as_bytes("signature")
            .unwrap();
        let mut signed = auth_data.to_vec();
        signed.extend_from_slice(&client_data_hash);
        let signature = p256::ecdsa::Signature::from_der(signature).unwrap();
        public
            .verify(&signed, &signature)
            .expect("the assertion signature verifies with the credential key");
        // A different message does not verify (the check can fail).
        signed[0] ^= 1;
        assert!(public.verify(&signed, &signature).is_err());
    });
}

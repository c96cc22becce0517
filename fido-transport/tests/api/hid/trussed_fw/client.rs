//! Our high-level [`fido_transport::client::Authenticator`] against the trussed firmware:
//! a whole key-management session over CTAPHID reports, then reset and its time window.

use super::firmware::{with_fresh_firmware, FirmwarePipe, DEFAULT_MSG_SIZE};
use super::*;

use fido_core::attestation::{verify_assertion, AttestationType, CertificatePolicy};
use fido_core::authdata::AuthDataFlags;
use fido_core::cbor::Value;
use fido_core::commands::{CredentialDescriptor, MakeCredentialExtensions, RpEntity, UserEntity};
use fido_core::pin::{Permissions, PinUvAuthProtocol};
use fido_core::CtapStatus;
use fido_transport::client::{Authenticator, GetAssertionArgs, MakeCredentialArgs};
use sha2::{Digest, Sha256};

type Key = Authenticator<CtapHidTransport<FirmwarePipe>>;

const RP: &str = "login.example.com";
const OTHER_RP: &str = "other.example.org";

fn client(pipe: FirmwarePipe) -> Key {
    let config = HidConfig {
        inactivity_timeout: Duration::from_secs(5),
        transaction_timeout: Duration::from_secs(30),
        ..HidConfig::default()
    };
    Authenticator::new(CtapHidTransport::with_config(pipe, config).unwrap())
}

fn ctap(e: &Error) -> Option<CtapStatus> {
    match e {
        Error::Ctap(s) => Some(*s),
        _ => None,
    }
}

fn mc_args(rp: &str, user: u8, cdh: [u8; 32]) -> MakeCredentialArgs {
    let mut args = MakeCredentialArgs::new(
        cdh,
        RpEntity {
            id: rp.into(),
            name: Some(format!("{rp} name")),
        },
        UserEntity {
            id: vec![user; 16],
            name: Some(format!("user{user}@{rp}")),
            display_name: Some(format!("User {user}")),
        },
    );
    args.resident_key = true;
    args
}

#[test]
fn full_session_with_our_client() {
    with_fresh_firmware(true, |pipe, uptime| {
        let mut key = client(pipe);

        // --- getInfo: what this firmware advertises.
        let info = key.info().unwrap().clone();
        for v in ["U2F_V2", "FIDO_2_0", "FIDO_2_1"] {
            assert!(info.versions.iter().any(|x| x == v), "{:?}", info.versions);
        }
        assert!(info.is_ctap21());
        for (option, value) in [
            ("rk", true),
            ("up", true),
            ("clientPin", false),
            ("credMgmt", true),
            ("authnrCfg", true),
            ("setMinPINLength", true),
            ("alwaysUv", false),
            ("makeCredUvNotRqd", true),
            ("pinUvAuthToken", true),
            ("largeBlobs", true),
        ] {
            assert_eq!(info.supports_option(option), Some(value), "option {option}");
        }
        // No built-in UV and no enterprise attestation on this firmware.
        assert_eq!(info.supports_option("uv"), None);
        assert_eq!(info.supports_option("ep"), None);
        for ext in ["minPinLength", "largeBlobKey", "credProtect", "hmac-secret"] {
            assert!(info.has_extension(ext), "{ext}: {:?}", info.extensions);
        }
        assert_eq!(info.max_rpids_for_set_min_pin_length, Some(4));
        assert_eq!(info.min_pin_length, Some(4));
        assert_eq!(info.force_pin_change, Some(false));
        assert_eq!(info.pin_uv_auth_protocols, Some(vec![2, 1]));
        assert_eq!(info.max_msg_size, Some(DEFAULT_MSG_SIZE));
        assert_eq!(info.max_serialized_large_blob_array, Some(1024));
        assert_eq!(key.pin_protocol().unwrap(), PinUvAuthProtocol::Two);

        // --- setPIN, changePIN (wrong current PIN first).
        key.set_pin("123456").unwrap();
        assert_eq!(key.info().unwrap().supports_option("clientPin"), Some(true));
        assert_eq!(key.pin_retries().unwrap().retries, 8);
        let e = key.change_pin("000000", "24681357").unwrap_err();
        assert!(
            matches!(
                e,
                Error::PinInvalid {
                    retries_left: 7,
                    power_cycle_required: false
                }
            ),
            "{e:?}"
        );
        key.change_pin("123456", "24681357").unwrap();
        // A correct PIN puts the counter back to the maximum.
        assert_eq!(key.pin_retries().unwrap().retries, 8);
        let mut pin = String::from("24681357");

        // --- PIN/UV auth token, protocol 2, exact permissions.
        let cm = key
            .pin_token(&pin, Permissions::CREDENTIAL_MANAGEMENT, None)
            .unwrap();
        assert_eq!(cm.protocol(), PinUvAuthProtocol::Two);
        assert_eq!(cm.permissions(), Permissions::CREDENTIAL_MANAGEMENT);
        assert_eq!(key.credentials_metadata(&cm).unwrap().existing, 0);
        // The client refuses to use it for something it was not granted.
        assert!(matches!(
            key.set_min_pin_length(Some(6), &[], false, Some(&cm)),
            Err(Error::InvalidArgument(_))
        ));

        // --- Protocol 1 (advertised): a token obtained with protocol one on the
        // wire, then used by our client, which authenticates with its protocol.
        let cm1 = protocol_one_token(&mut key, &pin, Permissions::CREDENTIAL_MANAGEMENT);
        assert_eq!(cm1.protocol(), PinUvAuthProtocol::One);
        assert_eq!(key.credentials_metadata(&cm1).unwrap().existing, 0);
        // Getting a new token revoked the protocol-two one (one token at a time):
        // the firmware checks the MAC with the current token and refuses.
        assert_eq!(
            ctap(&key.credentials_metadata(&cm).unwrap_err()),
            Some(CtapStatus::PinAuthInvalid)
        );

        // --- setMinPINLength with RP ids and forceChangePin.
        let acfg = key
            .pin_token(&pin, Permissions::AUTHENTICATOR_CONFIG, None)
            .unwrap();
        // More RP ids than maxRPIDsForSetMinPINLength: refused before sending.
        let five: Vec<String> = (0..5).map(|i| format!("rp{i}.example")).collect();
        assert!(matches!(
            key.set_min_pin_length(Some(8), &five, false, Some(&acfg)),
            Err(Error::Unsupported(_))
        ));
        key.set_min_pin_length(Some(8), &[RP.to_string()], true, Some(&acfg))
            .unwrap();
        let info = key.info().unwrap().clone();
        assert_eq!(info.min_pin_length, Some(8));
        assert_eq!(info.force_pin_change, Some(true));
        // The minimum can only grow: refused before sending.
        assert!(matches!(
            key.set_min_pin_length(Some(6), &[], false, Some(&acfg)),
            Err(Error::InvalidArgument(_))
        ));
        // While the PIN must change, no token is handed out.
        assert_eq!(
            ctap(
                &key.pin_token(&pin, Permissions::CREDENTIAL_MANAGEMENT, None)
                    .unwrap_err()
            ),
            Some(CtapStatus::PinPolicyViolation)
        );
        // A new PIN shorter than the new minimum is refused by the client.
        assert!(key.change_pin(&pin, "1357913").is_err());
        key.change_pin(&pin, "13579135").unwrap();
        pin = "13579135".into();
        assert_eq!(key.info().unwrap().force_pin_change, Some(false));

        // --- makeCredential rk + uv, with the minPinLength extension.
        let cdh: [u8; 32] = Sha256::digest(b"registration").into();
        let mut args = mc_args(RP, 1, cdh);
        args.extensions = Some(MakeCredentialExtensions {
            min_pin_length: Some(true),
            large_blob_key: Some(true),
            ..MakeCredentialExtensions::default()
        });
        let mc = key
            .pin_token(&pin, Permissions::MAKE_CREDENTIAL, Some(RP))
            .unwrap();
        let cred = key.make_credential(&args, Some(&mc), &mut |_| {}).unwrap();
        let ad = cred.attestation.auth_data();
        assert!(ad.is_for_rp_id(RP));
        let flags = ad.flags();
        assert!(flags.contains(AuthDataFlags::UP), "{flags:?}");
        assert!(flags.contains(AuthDataFlags::UV), "{flags:?}");
        assert!(flags.contains(AuthDataFlags::AT), "{flags:?}");
        // RP listed in setMinPINLength: the extension reports the minimum.
        assert_eq!(ad.min_pin_length(), Some(8));
        assert_eq!(cred.large_blob_key.as_ref().map(|k| k.len()), Some(32));
        assert_eq!(cred.attestation.fmt(), "packed");
        // The virt platform has no attestation key/certificate provisioned (a
        // real key gets them at the factory, under special ids the app cannot
        // write), so the firmware falls back to `packed` SELF attestation, signed
        // with the new credential's key and without x5c, and to its placeholder
        // AAGUID. Strict verification therefore passes (there is no leaf
        // certificate to judge); the x5c leaf rules cannot be exercised here.
        let verified = cred.attestation.verify(&cdh).unwrap();
        assert_eq!(verified.attestation_type, AttestationType::Self_);
        assert_eq!(verified.public_key, cred.public_key);
        assert_eq!(verified.credential_id, cred.credential_id);
        assert_eq!(verified.aaguid, *b"AAGUID0123456789");
        assert_eq!(verified.aaguid, info.aaguid);
        // The attestation fails with another client data hash (the check can fail).
        assert!(cred
            .attestation
            .verify_with(&[0; 32], CertificatePolicy::SignatureOnly)
            .is_err());

        // The firmware enforces the token's RP binding: a makeCredential for
        // another RP, correctly MACed with a token bound to RP, is refused with
        // PIN_AUTH_INVALID. Sent raw, since our client refuses it before sending.
        let mc = key
            .pin_token(&pin, Permissions::MAKE_CREDENTIAL, Some(RP))
            .unwrap();
        let raw_mc = |rp: &str| {
            let mut req = vec![0x01];
            req.extend(fido_core::cbor::encode(&Value::map([
                (1u64, Value::from(cdh.to_vec())),
                (2u64, Value::map([("id", Value::from(rp))])),
                (
                    3u64,
                    Value::map([
                        ("id", Value::from(vec![9u8; 16])),
                        ("name", Value::from("mallory")),
                    ]),
                ),
                (
                    4u64,
                    Value::from(vec![Value::map([
                        ("alg", Value::from(-7i64)),
                        ("type", Value::from("public-key")),
                    ])]),
                ),
                (8u64, Value::from(mc.authenticate(&cdh))),
                (9u64, Value::from(u64::from(mc.protocol().id()))),
            ])));
            req
        };
        // Control: the same request for the bound RP (non-resident) succeeds.
        let resp = key
            .transport_mut()
            .transact(&raw_mc(RP), &mut |_| {})
            .unwrap();
        assert_eq!(resp.first(), Some(&0x00));
        let resp = key
            .transport_mut()
            .transact(&raw_mc(OTHER_RP), &mut |_| {})
            .unwrap();
        assert_eq!(resp, vec![CtapStatus::PinAuthInvalid.to_u8()]);

        // An RP not listed in setMinPINLength gets no minPinLength output.
        let mut other = mc_args(OTHER_RP, 2, cdh);
        other.extensions = Some(MakeCredentialExtensions {
            min_pin_length: Some(true),
            ..MakeCredentialExtensions::default()
        });
        let mc2 = key
            .pin_token(&pin, Permissions::MAKE_CREDENTIAL, Some(OTHER_RP))
            .unwrap();
        let cred2 = key
            .make_credential(&other, Some(&mc2), &mut |_| {})
            .unwrap();
        assert_eq!(cred2.attestation.auth_data().min_pin_length(), None);

        // --- getAssertion with UV; the signature verifies with the credential key.
        let cdh_ga: [u8; 32] = Sha256::digest(b"authentication").into();
        let ga = key
            .pin_token(&pin, Permissions::GET_ASSERTION, Some(RP))
            .unwrap();
        let mut ga_args = GetAssertionArgs::new(RP, cdh_ga);
        ga_args.allow_list = vec![CredentialDescriptor::public_key(cred.credential_id.clone())];
        let assertions = key.get_assertion(&ga_args, Some(&ga), &mut |_| {}).unwrap();
        assert_eq!(assertions.len(), 1);
        let a = &assertions[0];
        assert_eq!(a.credential.id, cred.credential_id);
        let parsed =
            verify_assertion(&cred.public_key, &a.auth_data_bytes, &cdh_ga, &a.signature).unwrap();
        assert!(parsed.flags().contains(AuthDataFlags::UV));
        assert!(
            verify_assertion(&cred.public_key, &a.auth_data_bytes, &[0; 32], &a.signature).is_err()
        );
        // Discoverable: an empty allow list finds it too, with the user.
        let ga = key
            .pin_token(&pin, Permissions::GET_ASSERTION, Some(RP))
            .unwrap();
        let found = key
            .get_assertion(&GetAssertionArgs::new(RP, cdh_ga), Some(&ga), &mut |_| {})
            .unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].credential.id, cred.credential_id);
        assert_eq!(
            found[0].user.as_ref().map(|u| u.id.clone()),
            Some(vec![1; 16])
        );

        // --- alwaysUv on / off.
        let acfg = key
            .pin_token(&pin, Permissions::AUTHENTICATOR_CONFIG, None)
            .unwrap();
        assert!(key.set_always_uv(true, Some(&acfg)).unwrap());
        let info = key.info().unwrap().clone();
        assert_eq!(info.supports_option("alwaysUv"), Some(true));
        assert_eq!(info.supports_option("makeCredUvNotRqd"), Some(false));
        // CTAP 2.1 §7.2.4: with alwaysUv and no built-in UV, U2F goes away.
        assert!(!info.versions.iter().any(|v| v == "U2F_V2"));
        // Without a token, a (non-resident) registration now needs UV.
        let mut plain = mc_args(OTHER_RP, 3, cdh);
        plain.resident_key = false;
        assert_eq!(
            ctap(&key.make_credential(&plain, None, &mut |_| {}).unwrap_err()),
            Some(CtapStatus::PuatRequired)
        );
        // Already on: nothing is sent.
        assert!(!key.set_always_uv(true, Some(&acfg)).unwrap());
        assert!(key.set_always_uv(false, Some(&acfg)).unwrap());
        let info = key.info().unwrap().clone();
        assert_eq!(info.supports_option("alwaysUv"), Some(false));
        assert_eq!(info.supports_option("makeCredUvNotRqd"), Some(true));
        // The firmware enforces the token's permissions itself: a correctly
        // MACed toggleAlwaysUv under a token granted only credential management is
        // refused with PIN_AUTH_INVALID (CTAP 2.1 §6.11 step 4.5). Sent raw, since
        // our client refuses such a token before sending.
        let cm_only = key
            .pin_token(&pin, Permissions::CREDENTIAL_MANAGEMENT, None)
            .unwrap();
        let mut message = vec![0xff; 32];
        message.extend_from_slice(&[0x0d, 0x02]);
        let mut req = vec![0x0d];
        req.extend(fido_core::cbor::encode(&Value::map([
            (1u64, Value::from(2u64)),
            (3u64, Value::from(u64::from(cm_only.protocol().id()))),
            (4u64, Value::from(cm_only.authenticate(&message))),
        ])));
        let resp = key.transport_mut().transact(&req, &mut |_| {}).unwrap();
        assert_eq!(resp, vec![CtapStatus::PinAuthInvalid.to_u8()]);
        assert_eq!(
            key.refresh_info().unwrap().supports_option("alwaysUv"),
            Some(false)
        );

        // --- large blobs: write with the largeBlobWrite permission, read back.
        let lbw = key
            .pin_token(&pin, Permissions::LARGE_BLOB_WRITE, None)
            .unwrap();
        assert_eq!(key.read_large_blob_array().unwrap(), Vec::<Value>::new());
        let entry = Value::map([
            (1u64, Value::from(vec![0xabu8; 40])),
            (2u64, Value::from(vec![0x11u8; 12])),
            (3u64, Value::from(300u64)),
        ]);
        key.write_large_blob_array(&lbw, std::slice::from_ref(&entry))
            .unwrap();
        assert_eq!(key.read_large_blob_array().unwrap(), vec![entry]);

        // --- credential management: metadata, enumerate, delete.
        let cm = key
            .pin_token(&pin, Permissions::CREDENTIAL_MANAGEMENT, None)
            .unwrap();
        let meta = key.credentials_metadata(&cm).unwrap();
        assert_eq!(meta.existing, 2);
        assert!(meta.remaining > 0);
        let mut rps: Vec<String> = key
            .enumerate_rps(&cm)
            .unwrap()
            .into_iter()
            .map(|r| {
                assert_eq!(r.rp_id_hash, fido_core::authdata::rp_id_hash(&r.rp.id));
                r.rp.id
            })
            .collect();
        rps.sort();
        assert_eq!(rps, vec![RP.to_string(), OTHER_RP.to_string()]);
        let creds = key
            .enumerate_credentials(&cm, fido_core::authdata::rp_id_hash(RP))
            .unwrap();
        assert_eq!(creds.len(), 1);
        assert_eq!(creds[0].credential_id.id, cred.credential_id);
        assert_eq!(creds[0].public_key, cred.public_key);
        assert_eq!(creds[0].user.id, vec![1; 16]);
        assert_eq!(
            creds[0].user.name.as_deref(),
            Some("user1@login.example.com")
        );
        // updateUserInformation: the new name is what enumeration shows next.
        let renamed = UserEntity {
            id: vec![1; 16],
            name: Some("renamed@login.example.com".into()),
            display_name: Some("Renamed".into()),
        };
        key.update_user(&cm, &creds[0].credential_id, &renamed)
            .unwrap();
        let creds = key
            .enumerate_credentials(&cm, fido_core::authdata::rp_id_hash(RP))
            .unwrap();
        assert_eq!(creds.len(), 1);
        assert_eq!(creds[0].user, renamed);
        key.delete_credential(&cm, &creds[0].credential_id).unwrap();
        assert_eq!(key.credentials_metadata(&cm).unwrap().existing, 1);
        let rps = key.enumerate_rps(&cm).unwrap();
        assert_eq!(rps.len(), 1);
        assert_eq!(rps[0].rp.id, OTHER_RP);
        assert_eq!(
            key.enumerate_credentials(&cm, fido_core::authdata::rp_id_hash(RP))
                .unwrap(),
            Vec::new()
        );
        // The deleted credential no longer signs.
        let ga = key
            .pin_token(&pin, Permissions::GET_ASSERTION, Some(RP))
            .unwrap();
        assert_eq!(
            ctap(
                &key.get_assertion(&ga_args, Some(&ga), &mut |_| {})
                    .unwrap_err()
            ),
            Some(CtapStatus::NoCredentials)
        );

        // --- reset outside the window: the virt platform's uptime clock is moved
        // past the firmware's 10 s limit. The key answers NOT_ALLOWED; a HID
        // transport cannot power-cycle the key, so the client says "reattach".
        uptime.add(Duration::from_secs(11));
        // The firmware's own answer, raw: CTAP2_ERR_NOT_ALLOWED.
        let resp = key.transport_mut().transact(&[0x07], &mut |_| {}).unwrap();
        assert_eq!(resp, vec![CtapStatus::NotAllowed.to_u8()]);
        let e = key.reset(&mut |_| {}).unwrap_err();
        assert!(matches!(e, Error::ReattachRequired), "{e:?}");
        // Nothing was erased.
        assert_eq!(key.info().unwrap().supports_option("clientPin"), Some(true));
    });
}

/// A token obtained with PIN/UV auth protocol one (raw clientPIN on the wire; our
/// client always picks two when offered), as our client's type.
fn protocol_one_token(
    key: &mut Key,
    pin: &str,
    permissions: Permissions,
) -> fido_core::pin::PinUvAuthToken {
    use fido_core::cbor;
    use fido_core::pin::{pin_token_request, Pin, PinUvAuthToken};
    let proto = PinUvAuthProtocol::One;
    let t = key.transport_mut();
    let raw = |t: &mut CtapHidTransport<FirmwarePipe>, params: Vec<(u64, Value)>| {
        let mut req = vec![0x06];
        req.extend(cbor::encode(&Value::map(params)));
        let resp = t.transact(&req, &mut |_| {}).unwrap();
        assert_eq!(resp[0], 0x00, "clientPIN protocol one");
        cbor::decode(&resp[1..]).unwrap()
    };
    let ka = raw(t, vec![(1, Value::from(1u64)), (2, Value::from(2u64))]);
    let peer = fido_core::cose::CoseKey::from_value(
        ka.as_map("clientPIN")
            .unwrap()
            .require_int(1, "keyAgreement")
            .unwrap(),
    )
    .unwrap();
    let req =
        pin_token_request(proto, &peer, &Pin::new(pin).unwrap(), &mut rand_core::OsRng).unwrap();
    let body = raw(
        t,
        vec![
            (1, Value::from(1u64)),
            (2, Value::from(9u64)),
            (3, req.key_agreement.to_value()),
            (6, Value::from(req.pin_hash_enc.clone())),
            (9, Value::from(u64::from(permissions.bits()))),
        ],
    );
    let enc = body
        .as_map("clientPIN")
        .unwrap()
        .require_int(2, "pinUvAuthToken")
        .unwrap()
        .as_bytes("pinUvAuthToken")
        .unwrap()
        .to_vec();
    PinUvAuthToken::decrypt(proto, &req.shared_secret, &enc, permissions, None).unwrap()
}

#[test]
fn reset_right_after_power_up_erases_pin_and_credentials() {
    with_fresh_firmware(false, |pipe, _uptime| {
        let mut key = client(pipe);
        key.set_pin("123456").unwrap();
        let mc = key
            .pin_token("123456", Permissions::MAKE_CREDENTIAL, Some(RP))
            .unwrap();
        key.make_credential(&mc_args(RP, 1, [3; 32]), Some(&mc), &mut |_| {})
            .unwrap();
        // Well within 10 s of creating the firmware instance (the virt uptime
        // clock starts with the platform). The crate feature
        // `disable-reset-time-window` is not enabled here: Cargo would unify it
        // into every test of this crate, and advancing the uptime clock (see the
        // session test) exercises the refusal without it.
        key.reset(&mut |_| {}).unwrap();
        let info = key.info().unwrap().clone();
        assert_eq!(info.supports_option("clientPin"), Some(false));
        assert_eq!(info.min_pin_length, Some(4));
        // The PIN is gone: a new one can be set, and no credential is left.
        key.set_pin("654321").unwrap();
        let cm = key
            .pin_token("654321", Permissions::CREDENTIAL_MANAGEMENT, None)
            .unwrap();
        assert_eq!(key.credentials_metadata(&cm).unwrap().existing, 0);
    });
}

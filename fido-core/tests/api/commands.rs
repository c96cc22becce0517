//! Integration tests: commands.

use fido_core::cbor::{self, CborError, Value};
use fido_core::commands::*;
use fido_core::cose::CoseKey;
use fido_core::pin::Permissions;
use fido_core::{CtapStatus, Error};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::support::{fixture_bytes, fixture_lines, hex};

/// A CTAPHID message reassembled from 64-byte reports.
struct HidMessage {
    cmd: u8,
    data: Vec<u8>,
}

/// Reassembles the CBOR (0x10) messages of a recorded CTAPHID fixture, skipping
/// KEEPALIVE (0x3B) and INIT (0x06) replies. Test-only; the real state machine lives in
/// `ctaphid`.
fn cbor_messages(name: &str) -> Vec<Vec<u8>> {
    let mut done: Vec<HidMessage> = Vec::new();
    let mut current: Option<(HidMessage, usize)> = None;
    for frame in fixture_lines(name) {
        // libfido2 trimmed the zero padding of a few final reports.
        assert!(
            frame.len() >= 7 && frame.len() <= 64,
            "{name}: report length"
        );
        let b4 = frame[4];
        if b4 & 0x80 != 0 {
            assert!(current.is_none(), "{name}: init frame inside a message");
            let bcnt = u16::from_be_bytes([frame[5], frame[6]]) as usize;
            let take = bcnt.min(57);
            let msg = HidMessage {
                cmd: b4 & 0x7f,
                data: frame[7..(7 + take).min(frame.len())].to_vec(),
            };
            if msg.data.len() == bcnt {
                done.push(msg);
            } else {
                current = Some((msg, bcnt));
            }
        } else {
            let (mut msg, bcnt) = current.take().expect("continuation without init");
            let take = (bcnt - msg.data.len()).min(59);
            msg.data
                .extend_from_slice(&frame[5..(5 + take).min(frame.len())]);
            if msg.data.len() == bcnt {
                done.push(msg);
            } else {
                current = Some((msg, bcnt));
            }
        }
    }
    assert!(current.is_none(), "{name}: message cut short");
    done.into_iter()
        .filter(|m| m.cmd == 0x10)
        .map(|m| m.data)
        .collect()
}

/// The only CBOR message of a fixture.
fn one_message(name: &str) -> Vec<u8> {
    let mut m = cbor_messages(name);
    assert_eq!(m.len(), 1, "{name}: expected one CBOR message");
    m.remove(0)
}

// ---------------------------------------------------------------------------------
// Recorded YubiKey responses (libfido2).

#[test]
fn fixture_get_info() {
    let info = decode_response::<GetInfo>(&one_message("wiredata-ctap_cbor_info.hex")).unwrap();
    assert_eq!(
        info.versions,
        ["U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1", "FIDO_2_3"]
    );
    assert!(info.is_ctap21());
    assert_eq!(
        info.aaguid.to_vec(),
        hex("f8a011f38c0a4d15800617111f9edc7d")
    );
    assert_eq!(info.max_msg_size, Some(1536));
    assert_eq!(info.pin_uv_auth_protocols, Some(vec![2, 1]));
    assert!(info.supports_pin_protocol(1) && info.supports_pin_protocol(2));
    assert!(!info.supports_pin_protocol(3));
    assert_eq!(info.supports_option("clientPin"), Some(false));
    assert_eq!(info.supports_option("credMgmt"), Some(true));
    assert_eq!(info.supports_option("credentialMgmtPreview"), Some(true));
    assert_eq!(info.supports_option("bioEnroll"), None);
    assert!(info.has_extension("credProtect") && info.has_extension("hmac-secret"));
    assert!(!info.has_extension("appid"));
    assert_eq!(info.max_credential_count_in_list, Some(8));
    assert_eq!(info.max_credential_id_length, Some(128));
    assert_eq!(
        info.transports,
        Some(vec!["nfc".into(), "usb".into(), "smart-card".into()])
    );
    let algs: Vec<i64> = info.algorithms.unwrap().iter().map(|a| a.alg).collect();
    assert_eq!(algs, [-7, -8, -35]);
    assert_eq!(info.max_serialized_large_blob_array, Some(4096));
    assert_eq!(info.force_pin_change, Some(false));
    assert_eq!(info.min_pin_length, Some(4));
    assert_eq!(info.firmware_version, Some(1));
    assert_eq!(info.max_cred_blob_length, Some(32));
    assert_eq!(info.max_rpids_for_set_min_pin_length, Some(1));
    assert_eq!(info.remaining_discoverable_credentials, Some(100));
    assert_eq!(info.certifications, None);
}

#[test]
fn fixture_client_pin_responses() {
    let ka = decode_response::<ClientPin>(&one_message("wiredata-ctap_cbor_authkey.hex")).unwrap();
    match ka.key_agreement {
        Some(CoseKey::Ec2 { alg, x, .. }) => {
            assert_eq!(alg, fido_core::cose::ALG_ECDH_ES_HKDF_256);
            assert_eq!(&x[..4], &hex("2ab82d36")[..]);
        }
        other => panic!("{other:?}"),
    }
    let tok =
        decode_response::<ClientPin>(&one_message("wiredata-ctap_cbor_pintoken.hex")).unwrap();
    assert_eq!(
        tok.pin_uv_auth_token.as_ref().map(SecretBytes::len),
        Some(16)
    );
    assert!(format!("{tok:?}").contains("redacted"));
    let r = decode_response::<ClientPin>(&one_message("wiredata-ctap_cbor_retries.hex")).unwrap();
    assert_eq!(r.pin_retries, Some(8));
    assert_eq!(r.power_cycle_state, None);
    let status = one_message("wiredata-ctap_cbor_status.hex");
    assert_eq!(status, vec![0x00]);
    assert_eq!(
        decode_response::<ClientPin>(&status),
        Ok(ClientPinResponse::default())
    );
    assert_eq!(decode_response::<Reset>(&status), Ok(()));
}

#[test]
fn fixture_get_assertion() {
    let a = decode_response::<GetAssertion>(&one_message("wiredata-ctap_cbor_assert.hex")).unwrap();
    let cred = a.credential.unwrap();
    assert_eq!(cred.cred_type, "public-key");
    assert_eq!(cred.id.len(), 64);
    assert_eq!(&cred.id[..4], &hex("4a4c9ecc")[..]);
    assert_eq!(a.auth_data.len(), 37);
    assert_eq!(&a.auth_data[33..37], &[0, 0, 0, 9]); // signCount 9
    assert_eq!(a.signature.len(), 71);
    assert_eq!(a.signature[0], 0x30); // DER SEQUENCE
    assert_eq!(a.user, None);
    assert_eq!(a.number_of_credentials, None);
}

#[test]
fn fixture_make_credential() {
    let r = decode_response::<MakeCredential>(&one_message("wiredata-ctap_cbor_cred.hex")).unwrap();
    assert_eq!(r.fmt, "packed");
    assert_eq!(r.auth_data[32], 0x45); // UP | UV | AT
    assert_eq!(
        &r.auth_data[37..53],
        &hex("f8a011f38c0a4d15800617111f9edc7d")[..]
    );
    let st = r.att_stmt.as_map("attStmt").unwrap();
    assert_eq!(st.get_text("alg").unwrap().as_i64("alg"), Ok(-7));
    assert_eq!(
        st.get_text("x5c").unwrap().as_array("x5c").unwrap().len(),
        1
    );
    assert_eq!(r.ep_att, None);

    // The regress/cred.c exchange: its authData is the `cred-authdata` fixture.
    let r = decode_response::<MakeCredential>(&one_message("cred-wiredata-makecred.hex")).unwrap();
    let authdata_cbor = fixture_bytes("cred-authdata.hex");
    let authdata = cbor::decode(&authdata_cbor).unwrap();
    assert_eq!(r.auth_data, authdata.as_bytes("authData").unwrap());
    let sig = fixture_bytes("cred-sig.hex");
    let st = r.att_stmt.as_map("attStmt").unwrap();
    assert_eq!(
        st.get_text("sig").unwrap().as_bytes("sig").unwrap(),
        &sig[..]
    );

    let r = decode_response::<MakeCredential>(&one_message("cred-wiredata-makecred_entattest.hex"))
        .unwrap();
    assert_eq!(r.ep_att, Some(true));
    assert_eq!(r.fmt, "packed");
}

#[test]
fn fixture_credential_management() {
    let meta = decode_response::<CredentialManagement>(&one_message(
        "wiredata-ctap_cbor_credman_meta.hex",
    ))
    .unwrap();
    assert_eq!(meta.existing_resident_credentials_count, Some(0));
    assert_eq!(
        meta.max_possible_remaining_resident_credentials_count,
        Some(25)
    );

    let rps: Vec<CredentialManagementResponse> =
        cbor_messages("wiredata-ctap_cbor_credman_rplist.hex")
            .iter()
            .map(|m| decode_response::<CredentialManagement>(m).unwrap())
            .collect();
    assert_eq!(rps.len(), 3);
    assert_eq!(rps[0].total_rps, Some(3));
    assert_eq!(rps[1].total_rps, None);
    let ids: Vec<&str> = rps
        .iter()
        .map(|r| r.rp.as_ref().unwrap().id.as_str())
        .collect();
    assert_eq!(ids, ["yubico.com", "yubikey.org", "webauthn.dev"]);
    for r in &rps {
        let rp = r.rp.as_ref().unwrap();
        let expected: [u8; 32] = Sha256::digest(rp.id.as_bytes()).into();
        assert_eq!(r.rp_id_hash, Some(expected), "rpIDHash of {}", rp.id);
    }

    let rks: Vec<CredentialManagementResponse> =
        cbor_messages("wiredata-ctap_cbor_credman_rklist.hex")
            .iter()
            .map(|m| decode_response::<CredentialManagement>(m).unwrap())
            .collect();
    assert_eq!(rks.len(), 5);
    assert_eq!(rks[0].total_credentials, Some(5));
    for r in &rks {
        let user = r.user.as_ref().unwrap();
        assert_eq!(user.name.as_deref(), Some("bob banana"));
        assert_eq!(user.display_name.as_deref(), Some("bbanana"));
        assert_eq!(user.id.len(), 32);
        assert_eq!(r.credential_id.as_ref().unwrap().id.len(), 16);
        assert_eq!(r.cred_protect, Some(1));
    }
    let kinds: Vec<i64> = rks
        .iter()
        .map(|r| r.public_key.as_ref().unwrap().alg())
        .collect();
    assert_eq!(kinds, [-7, -8, -8, -7, -7]);
}

#[test]
fn fixture_bio_enrollment() {
    // KEEPALIVE reports are interleaved with the three replies.
    let enroll: Vec<BioEnrollmentResponse> = cbor_messages("wiredata-ctap_cbor_bio_enroll.hex")
        .iter()
        .map(|m| decode_response::<BioEnrollment>(m).unwrap())
        .collect();
    assert_eq!(enroll.len(), 3);
    assert_eq!(enroll[0].template_id, Some(hex("6896")));
    let remaining: Vec<Option<u32>> = enroll.iter().map(|r| r.remaining_samples).collect();
    assert_eq!(remaining, [Some(2), Some(1), Some(0)]);
    assert!(enroll
        .iter()
        .all(|r| r.last_enroll_sample_status == Some(0)));

    let list =
        decode_response::<BioEnrollment>(&one_message("wiredata-ctap_cbor_bio_enum.hex")).unwrap();
    let infos = list.template_infos.unwrap();
    let names: Vec<&str> = infos
        .iter()
        .map(|t| t.template_friendly_name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["finger1", "finger2", "finger3"]);
    assert_eq!(infos[0].template_id, hex("cea3"));

    let info =
        decode_response::<BioEnrollment>(&one_message("wiredata-ctap_cbor_bio_info.hex")).unwrap();
    assert_eq!(info.fingerprint_kind, Some(1));
    assert_eq!(info.max_capture_samples_required_for_enroll, Some(4));
}

#[test]
fn fixture_large_blob_get() {
    let r =
        decode_response::<LargeBlobs>(&one_message("wiredata-ctap_cbor_largeblob_get_array.hex"))
            .unwrap();
    let config = r.config.unwrap();
    // A serialized large-blob array: CBOR array || left 16 bytes of its SHA-256.
    let (array, used) = cbor::decode_prefix_with(&config, cbor::Limits::RESPONSE).unwrap();
    assert!(matches!(array, Value::Array(ref a) if a.len() == 1));
    assert_eq!(config.len() - used, 16);
    assert_eq!(&config[used..], &Sha256::digest(&config[..used])[..16]);
}

#[test]
fn fixture_responses_survive_truncation_without_panics() {
    for name in [
        "wiredata-ctap_cbor_info.hex",
        "wiredata-ctap_cbor_cred.hex",
        "wiredata-ctap_cbor_assert.hex",
        "wiredata-ctap_cbor_credman_rklist.hex",
    ] {
        let msg = cbor_messages(name).remove(0);
        // (cut 1 is the bare status byte: a valid empty payload for some commands.)
        for cut in 2..msg.len() {
            let t = &msg[..cut];
            let results = [
                decode_response::<GetInfo>(t).map(|_| ()),
                decode_response::<MakeCredential>(t).map(|_| ()),
                decode_response::<GetAssertion>(t).map(|_| ()),
                decode_response::<CredentialManagement>(t).map(|_| ()),
            ];
            for r in results {
                // A cut in the middle of a map is never a complete CBOR item.
                assert!(
                    matches!(r, Err(Error::Cbor(_))),
                    "{name} cut at {cut}: {r:?}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Round-trip properties.

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._@-]{0,24}"
}
fn cose_key() -> impl Strategy<Value = CoseKey> {
    prop_oneof![
        (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(x, y)| CoseKey::Ec2 {
            alg: fido_core::cose::ALG_ECDH_ES_HKDF_256,
            x,
            y
        }),
        any::<[u8; 32]>().prop_map(|x| CoseKey::Okp {
            alg: fido_core::cose::ALG_EDDSA,
            x
        }),
    ]
}
fn rp() -> impl Strategy<Value = RpEntity> {
    (text(), proptest::option::of(text())).prop_map(|(id, name)| RpEntity { id, name })
}
fn user() -> impl Strategy<Value = UserEntity> {
    (
        bytes(64),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(|(id, name, display_name)| UserEntity {
            id,
            name,
            display_name,
        })
}
fn descriptor() -> impl Strategy<Value = CredentialDescriptor> {
    (
        bytes(80),
        proptest::option::of(proptest::collection::vec(text(), 0..3)),
    )
        .prop_map(|(id, transports)| CredentialDescriptor {
            cred_type: "public-key".into(),
            id,
            transports,
        })
}
/// Map entries in CTAP2 canonical key order (shorter first, then bytewise), as they
/// come back from the wire.
fn canonical<V>(m: std::collections::BTreeMap<String, V>) -> Vec<(String, V)> {
    let mut v: Vec<(String, V)> = m.into_iter().collect();
    v.sort_by(|a, b| (a.0.len(), a.0.as_bytes()).cmp(&(b.0.len(), b.0.as_bytes())));
    v
}
fn other_ext() -> impl Strategy<Value = Vec<(String, Value)>> {
    proptest::collection::btree_map(
        "x-[a-z]{1,8}",
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::Unsigned),
            bytes(8).prop_map(Value::Bytes),
        ],
        0..3,
    )
    .prop_map(canonical)
}
fn make_credential() -> impl Strategy<Value = MakeCredential> {
    (
        (
            any::<[u8; 32]>(),
            rp(),
            user(),
            proptest::collection::vec(any::<i64>(), 0..4),
            proptest::option::of(proptest::collection::vec(descriptor(), 0..3)),
        ),
        proptest::option::of((
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(bytes(32)),
            proptest::option::of(any::<bool>()),
            other_ext(),
        )),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
        ),
        (
            proptest::option::of(bytes(32)),
            proptest::option::of(any::<u8>()),
            proptest::option::of(any::<u8>()),
        ),
    )
        .prop_map(
            |((cdh, rp, user, algs, excl), ext, (rk, up, uv), (param, proto, ep))| {
                let mut mc = MakeCredential::new(
                    cdh,
                    rp,
                    user,
                    algs.into_iter()
                        .map(PublicKeyCredentialParameters::public_key)
                        .collect(),
                );
                mc.exclude_list = excl;
                mc.extensions =
                    ext.map(|(cp, hs, mpl, blob, lbk, other)| MakeCredentialExtensions {
                        cred_protect: cp,
                        hmac_secret: hs,
                        min_pin_length: mpl,
                        cred_blob: blob,
                        large_blob_key: lbk,
                        other,
                    });
                mc.options = MakeCredentialOptions { rk, up, uv };
                mc.pin_uv_auth_param = param;
                mc.pin_uv_auth_protocol = proto;
                mc.enterprise_attestation = ep;
                mc
            },
        )
}
fn get_assertion() -> impl Strategy<Value = GetAssertion> {
    (
        text(),
        any::<[u8; 32]>(),
        proptest::option::of(proptest::collection::vec(descriptor(), 0..3)),
        proptest::option::of((
            proptest::option::of((
                cose_key(),
                bytes(64),
                bytes(32),
                proptest::option::of(1u8..3),
            )),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
            other_ext(),
        )),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
        ),
        proptest::option::of(bytes(32)),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(|(rp_id, cdh, allow, ext, (up, uv), param, proto)| {
            let mut ga = GetAssertion::new(rp_id, cdh);
            ga.allow_list = allow;
            ga.extensions = ext.map(|(hs, cb, lbk, other)| GetAssertionExtensions {
                hmac_secret: hs.map(|(key_agreement, salt_enc, salt_auth, p)| HmacSecretInput {
                    key_agreement,
                    salt_enc,
                    salt_auth,
                    pin_uv_auth_protocol: p,
                }),
                cred_blob: cb,
                large_blob_key: lbk,
                other,
            });
            ga.options = GetAssertionOptions { up, uv };
            ga.pin_uv_auth_param = param;
            ga.pin_uv_auth_protocol = proto;
            ga
        })
}
fn client_pin() -> impl Strategy<Value = ClientPin> {
    let p = 1u8..3;
    prop_oneof![
        proptest::option::of(p.clone()).prop_map(|pin_uv_auth_protocol| ClientPin::GetPinRetries {
            pin_uv_auth_protocol
        }),
        proptest::option::of(p.clone()).prop_map(|pin_uv_auth_protocol| ClientPin::GetUvRetries {
            pin_uv_auth_protocol
        }),
        p.clone()
            .prop_map(|pin_uv_auth_protocol| ClientPin::GetKeyAgreement {
                pin_uv_auth_protocol
            }),
        (p.clone(), cose_key(), bytes(80), bytes(32)).prop_map(|(a, k, n, m)| ClientPin::SetPin {
            pin_uv_auth_protocol: a,
            key_agreement: k,
            new_pin_enc: n,
            pin_uv_auth_param: m
        }),
        (p.clone(), cose_key(), bytes(32), bytes(80), bytes(32)).prop_map(|(a, k, h, n, m)| {
            ClientPin::ChangePin {
                pin_uv_auth_protocol: a,
                key_agreement: k,
                pin_hash_enc: h,
                new_pin_enc: n,
                pin_uv_auth_param: m,
            }
        }),
        (p.clone(), cose_key(), bytes(32)).prop_map(|(a, k, h)| ClientPin::GetPinToken {
            pin_uv_auth_protocol: a,
            key_agreement: k,
            pin_hash_enc: h
        }),
        (
            p.clone(),
            cose_key(),
            any::<u8>(),
            proptest::option::of(text())
        )
            .prop_map(|(a, k, perm, rp)| {
                ClientPin::GetPinUvAuthTokenUsingUvWithPermissions {
                    pin_uv_auth_protocol: a,
                    key_agreement: k,
                    permissions: Permissions::from_bits(perm),
                    rp_id: rp,
                }
            }),
        (
            p,
            cose_key(),
            bytes(32),
            any::<u8>(),
            proptest::option::of(text())
        )
            .prop_map(|(a, k, h, perm, rp)| {
                ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
                    pin_uv_auth_protocol: a,
                    key_agreement: k,
                    pin_hash_enc: h,
                    permissions: Permissions::from_bits(perm),
                    rp_id: rp,
                }
            }),
    ]
}
fn auth() -> impl Strategy<Value = (Option<u8>, Option<Vec<u8>>)> {
    (
        proptest::option::of(1u8..3),
        proptest::option::of(bytes(32)),
    )
}
fn cred_mgmt() -> impl Strategy<Value = CredentialManagement> {
    let sub = prop_oneof![
        Just(CredMgmtSubCommand::GetCredsMetadata),
        Just(CredMgmtSubCommand::EnumerateRpsBegin),
        Just(CredMgmtSubCommand::EnumerateRpsGetNextRp),
        any::<[u8; 32]>()
            .prop_map(|rp_id_hash| CredMgmtSubCommand::EnumerateCredentialsBegin { rp_id_hash }),
        Just(CredMgmtSubCommand::EnumerateCredentialsGetNextCredential),
        descriptor()
            .prop_map(|credential_id| CredMgmtSubCommand::DeleteCredential { credential_id }),
        (descriptor(), user()).prop_map(|(credential_id, user)| {
            CredMgmtSubCommand::UpdateUserInformation {
                credential_id,
                user,
            }
        }),
    ];
    (sub, auth(), any::<bool>()).prop_map(|(sub_command, (p, a), prototype)| CredentialManagement {
        sub_command,
        pin_uv_auth_protocol: p,
        pin_uv_auth_param: a,
        prototype,
    })
}
fn bio() -> impl Strategy<Value = BioEnrollment> {
    let t = proptest::option::of(any::<u32>());
    let sub = prop_oneof![
        t.clone()
            .prop_map(|timeout_milliseconds| BioSubCommand::EnrollBegin {
                timeout_milliseconds
            }),
        (bytes(8), t).prop_map(|(template_id, timeout_milliseconds)| {
            BioSubCommand::EnrollCaptureNextSample {
                template_id,
                timeout_milliseconds,
            }
        }),
        Just(BioSubCommand::CancelCurrentEnrollment),
        Just(BioSubCommand::EnumerateEnrollments),
        (bytes(8), text()).prop_map(|(template_id, template_friendly_name)| {
            BioSubCommand::SetFriendlyName {
                template_id,
                template_friendly_name,
            }
        }),
        bytes(8).prop_map(|template_id| BioSubCommand::RemoveEnrollment { template_id }),
        Just(BioSubCommand::GetFingerprintSensorInfo),
    ];
    (
        proptest::option::of(any::<u8>()),
        proptest::option::of(sub),
        auth(),
        proptest::option::of(any::<bool>()),
        any::<bool>(),
    )
        .prop_map(
            |(modality, sub_command, (p, a), get_modality, prototype)| BioEnrollment {
                modality,
                sub_command,
                pin_uv_auth_protocol: p,
                pin_uv_auth_param: a,
                get_modality,
                prototype,
            },
        )
}
fn config() -> impl Strategy<Value = AuthenticatorConfig> {
    let sub = prop_oneof![
        Just(ConfigSubCommand::EnableEnterpriseAttestation),
        Just(ConfigSubCommand::ToggleAlwaysUv),
        (
            proptest::option::of(any::<u8>()),
            proptest::option::of(proptest::collection::vec(text(), 0..3)),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(n, r, f)| ConfigSubCommand::SetMinPinLength {
                new_min_pin_length: n,
                min_pin_length_rpids: r,
                force_change_pin: f
            }),
        any::<u64>()
            .prop_map(|vendor_command_id| ConfigSubCommand::VendorPrototype { vendor_command_id }),
    ];
    (sub, auth()).prop_map(|(sub_command, (p, a))| AuthenticatorConfig {
        sub_command,
        pin_uv_auth_protocol: p,
        pin_uv_auth_param: a,
    })
}
fn large_blobs() -> impl Strategy<Value = LargeBlobs> {
    (
        proptest::option::of(any::<u32>()),
        proptest::option::of(bytes(64)),
        any::<u32>(),
        proptest::option::of(any::<u32>()),
        auth(),
    )
        .prop_map(|(get, set, offset, length, (p, a))| LargeBlobs {
            get,
            set,
            offset,
            length,
            pin_uv_auth_param: a,
            pin_uv_auth_protocol: p,
        })
}
fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        make_credential().prop_map(Request::MakeCredential),
        get_assertion().prop_map(Request::GetAssertion),
        Just(Request::GetInfo(GetInfo)),
        client_pin().prop_map(Request::ClientPin),
        Just(Request::Reset(Reset)),
        Just(Request::GetNextAssertion(GetNextAssertion)),
        bio().prop_map(Request::BioEnrollment),
        cred_mgmt().prop_map(Request::CredentialManagement),
        Just(Request::Selection(Selection)),
        large_blobs().prop_map(Request::LargeBlobs),
        config().prop_map(Request::Config),
    ]
}

fn info() -> impl Strategy<Value = AuthenticatorInfo> {
    let texts = || proptest::option::of(proptest::collection::vec(text(), 0..4));
    let u = || proptest::option::of(any::<u64>());
    (
        (
            proptest::collection::vec(text(), 0..4),
            texts(),
            any::<[u8; 16]>(),
            proptest::option::of(
                proptest::collection::btree_map(text(), any::<bool>(), 0..5).prop_map(canonical),
            ),
            u(),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..3)),
            u(),
            u(),
            texts(),
            proptest::option::of(proptest::collection::vec(
                any::<i64>().prop_map(PublicKeyCredentialParameters::public_key),
                0..3,
            )),
        ),
        (
            u(),
            proptest::option::of(any::<bool>()),
            u(),
            u(),
            u(),
            u(),
            u(),
            u(),
            proptest::option::of(
                proptest::collection::btree_map(text(), any::<u64>(), 0..3).prop_map(canonical),
            ),
            u(),
            proptest::option::of(proptest::collection::vec(any::<u64>(), 0..3)),
        ),
    )
        .prop_map(|(a, b)| AuthenticatorInfo {
            versions: a.0,
            extensions: a.1,
            aaguid: a.2,
            options: a.3,
            max_msg_size: a.4,
            pin_uv_auth_protocols: a.5,
            max_credential_count_in_list: a.6,
            max_credential_id_length: a.7,
            transports: a.8,
            algorithms: a.9,
            max_serialized_large_blob_array: b.0,
            force_pin_change: b.1,
            min_pin_length: b.2,
            firmware_version: b.3,
            max_cred_blob_length: b.4,
            max_rpids_for_set_min_pin_length: b.5,
            preferred_platform_uv_attempts: b.6,
            uv_modality: b.7,
            certifications: b.8,
            remaining_discoverable_credentials: b.9,
            vendor_prototype_config_commands: b.10,
        })
}

proptest! {
    #[test]
    fn request_round_trips(req in request()) {
        let bytes = req.encode();
        prop_assert_eq!(bytes[0], req.command_byte());
        let back = Request::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &req);
        // Our encoding is canonical: the strict reader accepts it and re-encoding is stable.
        prop_assert_eq!(back.encode(), bytes);
    }

    #[test]
    fn get_info_response_round_trips(info in info()) {
        let bytes = encode_response(&info);
        prop_assert_eq!(decode_response::<GetInfo>(&bytes).unwrap(), info);
    }

    #[test]
    fn client_pin_response_round_trips(
        key in proptest::option::of(cose_key()),
        token in proptest::option::of(bytes(48)),
        pin in proptest::option::of(any::<u32>()),
        pcs in proptest::option::of(any::<bool>()),
        uv in proptest::option::of(any::<u32>()),
    ) {
        let r = ClientPinResponse {
            key_agreement: key,
            pin_uv_auth_token: token.map(SecretBytes::from),
            pin_retries: pin,
            power_cycle_state: pcs,
            uv_retries: uv,
        };
        prop_assert_eq!(decode_response::<ClientPin>(&encode_response(&r)).unwrap(), r);
    }

    #[test]
    fn assertion_response_round_trips(
        credential in proptest::option::of(descriptor()),
        auth_data in bytes(200),
        signature in bytes(80),
        user in proptest::option::of(user()),
        n in proptest::option::of(any::<u32>()),
        sel in proptest::option::of(any::<bool>()),
        lbk in proptest::option::of(bytes(32)),
    ) {
        let r = GetAssertionResponse {
            credential,
            auth_data,
            signature,
            user,
            number_of_credentials: n,
            user_selected: sel,
            large_blob_key: lbk.map(SecretBytes::from),
        };
        let bytes = encode_response(&r);
        prop_assert_eq!(decode_response::<GetAssertion>(&bytes).unwrap(), r.clone());
        prop_assert_eq!(decode_response::<GetNextAssertion>(&bytes).unwrap(), r);
    }

    #[test]
    fn make_credential_response_round_trips(
        fmt in text(),
        auth_data in bytes(200),
        sig in bytes(72),
        ep in proptest::option::of(any::<bool>()),
        lbk in proptest::option::of(bytes(32)),
    ) {
        let r = MakeCredentialResponse {
            fmt,
            auth_data,
            att_stmt: Value::map([
                (Value::from("alg"), Value::from(-7i64)),
                (Value::from("sig"), Value::from(sig)),
            ]),
            ep_att: ep,
            large_blob_key: lbk.map(SecretBytes::from),
        };
        prop_assert_eq!(decode_response::<MakeCredential>(&encode_response(&r)).unwrap(), r);
    }

    #[test]
    fn cred_mgmt_response_round_trips(
        counts in (proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()),
                   proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>())),
        rp in proptest::option::of(rp()),
        hash in proptest::option::of(any::<[u8; 32]>()),
        user in proptest::option::of(user()),
        cred in proptest::option::of(descriptor()),
        key in proptest::option::of(cose_key()),
        cp in proptest::option::of(any::<u8>()),
        lbk in proptest::option::of(bytes(32)),
    ) {
        let r = CredentialManagementResponse {
            existing_resident_credentials_count: counts.0,
            max_possible_remaining_resident_credentials_count: counts.1,
            rp,
            rp_id_hash: hash,
            total_rps: counts.2,
            user,
            credential_id: cred,
            public_key: key,
            total_credentials: counts.3,
            cred_protect: cp,
            large_blob_key: lbk.map(SecretBytes::from),
        };
        prop_assert_eq!(decode_response::<CredentialManagement>(&encode_response(&r)).unwrap(), r);
    }

    #[test]
    fn bio_response_round_trips(
        small in (proptest::option::of(any::<u8>()), proptest::option::of(any::<u8>()),
                  proptest::option::of(any::<u8>())),
        big in (proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u32>())),
        tid in proptest::option::of(bytes(8)),
        infos in proptest::option::of(proptest::collection::vec(
            (bytes(8), proptest::option::of(text())).prop_map(|(template_id, template_friendly_name)| {
                TemplateInfo { template_id, template_friendly_name }
            }), 0..4)),
    ) {
        let r = BioEnrollmentResponse {
            modality: small.0,
            fingerprint_kind: small.1,
            max_capture_samples_required_for_enroll: big.0,
            template_id: tid,
            last_enroll_sample_status: small.2,
            remaining_samples: big.1,
            template_infos: infos,
            max_template_friendly_name: big.2,
        };
        prop_assert_eq!(decode_response::<BioEnrollment>(&encode_response(&r)).unwrap(), r);
    }

    #[test]
    fn large_blobs_response_round_trips(config in proptest::option::of(bytes(100))) {
        let r = LargeBlobsResponse { config };
        prop_assert_eq!(decode_response::<LargeBlobs>(&encode_response(&r)).unwrap(), r);
    }

    /// Arbitrary bytes never panic either decoder.
    #[test]
    fn garbage_never_panics(data in bytes(300)) {
        let _ = Request::decode(&data);
        let _ = decode_response::<GetInfo>(&data);
        let _ = decode_response::<MakeCredential>(&data);
        let _ = decode_response::<GetAssertion>(&data);
        let _ = decode_response::<ClientPin>(&data);
        let _ = decode_response::<CredentialManagement>(&data);
        let _ = decode_response::<BioEnrollment>(&data);
        let _ = decode_response::<LargeBlobs>(&data);
    }

    /// Valid requests with one byte flipped decode or fail with a typed error.
    #[test]
    fn mutated_requests_never_panic(req in request(), pos in any::<usize>(), byte in any::<u8>()) {
        let mut bytes = req.encode();
        let i = pos % bytes.len();
        bytes[i] = byte;
        let _ = Request::decode(&bytes);
        let _ = decode_response::<MakeCredential>(&bytes);
    }
}

#[test]
fn wrong_type_in_a_request_names_the_field() {
    // clientPIN with a text permissions value.
    let bad = hex("06 a4 01 02 02 09 03 a0 09 61 78");
    let err = Request::decode(&bad).unwrap_err();
    // The COSE key is checked before permissions; an empty map has no kty.
    assert!(matches!(err, Error::Cose(_)), "{err:?}");
    let key = cbor::encode(
        &CoseKey::Ec2 {
            alg: -25,
            x: [1; 32],
            y: [2; 32],
        }
        .to_value(),
    );
    let bad = [hex("06 a5 01 02 02 06 03"), key, hex("06 41 00 09 61 78")].concat();
    match Request::decode(&bad).unwrap_err() {
        Error::Cbor(CborError::WrongType {
            field, expected, ..
        }) => {
            assert_eq!(field, "clientPIN.permissions");
            assert_eq!(expected, "unsigned integer");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn status_errors_from_a_real_exchange_shape() {
    // A key that refuses a reset outside the power-up window.
    assert_eq!(
        decode_response::<Reset>(&encode_status(CtapStatus::NotAllowed)),
        Err(Error::Ctap(CtapStatus::NotAllowed))
    );
}

// ---------------------------------------------------------------------------------
// Published response vectors from Yubico's python-fido2 (`tests/test_ctap2.py`,
// BSD-2-Clause, Yubico AB), used as data.

const PYFIDO2_INFO: &str = "a60182665532465f5632684649444f5f325f3002826375766d6b686d61632d7365637265740350f8a011f38c0a4d15800617111f9edc7d04a462726bf5627570f564706c6174f469636c69656e7450696ef4051904b0068101";
const PYFIDO2_INFO_EXTRA_KEY: &str = "A70182665532465F5632684649444F5F325F3002826375766D6B686D61632D7365637265740350F8A011F38C0A4D15800617111F9EDC7D04A462726BF5627570F564706C6174F469636C69656E7450696EF4051904B006810118631904D2";
const PYFIDO2_GA_RESP: &str = "a301a26269645840fe3aac036d14c1e1c65518b698dd1da8f596bc33e11072813466c6bf3845691509b80fb76d59309b8d39e0a93452688f6ca3a39a76f3fc52744fb73948b1578364747970656a7075626c69632d6b65790258250021f5fc0b85cd22e60623bcd7d1ca48948909249b4776eb515154e57b66ae12010000001d035846304402206765cbf6e871d3af7f01ae96f06b13c90f26f54b905c5166a2c791274fc2397102200b143893586cc799fba4da83b119eaea1bd80ac3ce88fcedb3efbd596a1f4f63";

fn with_status(hex_body: &str) -> Vec<u8> {
    [vec![0x00], hex(hex_body)].concat()
}

#[test]
fn python_fido2_get_info_vector() {
    let info = decode_response::<GetInfo>(&with_status(PYFIDO2_INFO)).unwrap();
    assert_eq!(info.versions, ["U2F_V2", "FIDO_2_0"]);
    assert!(!info.is_ctap21());
    assert_eq!(
        info.extensions,
        Some(vec!["uvm".to_owned(), "hmac-secret".to_owned()])
    );
    assert_eq!(
        info.aaguid.to_vec(),
        hex("f8a011f38c0a4d15800617111f9edc7d")
    );
    assert_eq!(
        info.options,
        Some(vec![
            ("rk".to_owned(), true),
            ("up".to_owned(), true),
            ("plat".to_owned(), false),
            ("clientPin".to_owned(), false),
        ])
    );
    assert_eq!(info.max_msg_size, Some(1200));
    assert_eq!(info.pin_uv_auth_protocols, Some(vec![1]));
    // This vector is canonical: re-encoding gives the same bytes.
    assert_eq!(encode_response(&info), with_status(PYFIDO2_INFO));

    // An unknown key (0x63) is ignored.
    let extra = decode_response::<GetInfo>(&with_status(PYFIDO2_INFO_EXTRA_KEY)).unwrap();
    assert_eq!(extra, info);
}

#[test]
fn python_fido2_get_assertion_vector() {
    let r = decode_response::<GetAssertion>(&with_status(PYFIDO2_GA_RESP)).unwrap();
    let cred = r.credential.as_ref().unwrap();
    assert_eq!(cred.cred_type, "public-key");
    assert_eq!(
        cred.id,
        hex("fe3aac036d14c1e1c65518b698dd1da8f596bc33e11072813466c6bf3845691509b80fb76d59309b8d39e0a93452688f6ca3a39a76f3fc52744fb73948b15783")
    );
    assert_eq!(
        r.auth_data,
        hex("0021F5FC0B85CD22E60623BCD7D1CA48948909249B4776EB515154E57B66AE12010000001D")
    );
    assert_eq!(
        r.signature,
        hex("304402206765CBF6E871D3AF7F01AE96F06B13C90F26F54B905C5166A2C791274FC2397102200B143893586CC799FBA4DA83B119EAEA1BD80AC3CE88FCEDB3EFBD596A1F4F63")
    );
    assert_eq!(r.user, None);
    assert_eq!(r.number_of_credentials, None);
    assert_eq!(encode_response(&r), with_status(PYFIDO2_GA_RESP));
}

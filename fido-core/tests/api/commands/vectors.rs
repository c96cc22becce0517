//! Recorded and published responses: libfido2's YubiKey wire data and python-fido2's
//! test vectors, decoded into the typed responses.

use super::*;

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
    let algs: Vec<i64> = info
        .algorithms
        .clone()
        .unwrap()
        .iter()
        .map(|a| a.alg)
        .collect();
    assert_eq!(algs, [-7, -8, -35]);
    assert_eq!(info.max_serialized_large_blob_array, Some(4096));
    assert_eq!(info.force_pin_change, Some(false));
    assert_eq!(info.min_pin_length, Some(4));
    assert_eq!(info.firmware_version, Some(1));
    assert_eq!(info.max_cred_blob_length, Some(32));
    assert_eq!(info.max_rpids_for_set_min_pin_length, Some(1));
    assert_eq!(info.remaining_discoverable_credentials, Some(100));
    assert_eq!(info.certifications, None);
    // CTAP 2.2 / 2.3 keys 0x16-0x1F of the same recording.
    assert_eq!(info.attestation_formats, Some(vec!["packed".into()]));
    assert_eq!(info.uv_count_since_last_pin_entry, None);
    assert_eq!(info.long_touch_for_reset, Some(true));
    assert!(info.needs_long_touch_for_reset());
    let enc_id = info.enc_identifier.clone().expect("encIdentifier");
    assert_eq!(enc_id.len() % 16, 0, "IV plus AES blocks");
    assert_eq!(
        info.transports_for_reset,
        Some(vec!["usb".into(), "smart-card".into()])
    );
    assert_eq!(info.reset_allowed_over("usb"), Some(true));
    assert_eq!(info.reset_allowed_over("nfc"), Some(false));
    assert_eq!(info.pin_complexity_policy, Some(true));
    assert!(info
        .pin_complexity_policy_url
        .as_ref()
        .is_some_and(|u| !u.is_empty()));
    assert_eq!(info.max_pin_length, Some(63));
    assert!(info.enc_cred_store_state.is_some());
    assert_eq!(info.authenticator_config_commands, Some(vec![1, 2, 3]));
    assert_eq!(info.supports_config_command(3), Some(true));
    assert_eq!(info.supports_config_command(4), Some(false));
    // Decrypting needs the key's persistent token; any 32-byte token gives 16 bytes here.
    let id = info.decrypt_identifier(&[0x55; 32]).unwrap().unwrap();
    assert_eq!(id.len(), enc_id.len() - 16);
    // Re-encoding keeps every field.
    assert_eq!(
        decode_response::<GetInfo>(&encode_response(&info)).unwrap(),
        info
    );
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

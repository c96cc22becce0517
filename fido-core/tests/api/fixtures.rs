//! Every recorded real-authenticator exchange (libfido2, a YubiKey) through the whole
//! stack: CTAPHID reassembly by the host state machine, status + CBOR decoding into the
//! typed response of the command that produced it, and signature verification where the
//! recording carries what is needed (attestation with its clientDataHash, assertion with
//! its public key).

use fido_core::attestation::{
    verify_assertion, AttestationObject, AttestationType, CertificatePolicy,
};
use fido_core::commands::{
    decode_response, BioEnrollment, ClientPin, CredentialManagement, GetAssertion, GetInfo,
    LargeBlobs, MakeCredential, Reset,
};
use fido_core::cose::CoseKey;
use fido_core::ctaphid::{Cid, Command as HidCommand, Event};
use fido_core::pin::PinUvAuthProtocol;

use super::support::{fixture_bytes, fixture_lines, replay_reports};

/// The CTAP2 (CTAPHID_CBOR) responses of a recording, reassembled.
fn ctap_responses(name: &str) -> Vec<Vec<u8>> {
    let mut reports = fixture_lines(name);
    // libfido2 trimmed the final report of one recording; a real report is 64 bytes.
    for r in &mut reports {
        r.resize(64, 0);
    }
    let cid = Cid::from_bytes([reports[0][0], reports[0][1], reports[0][2], reports[0][3]]);
    if name == "wiredata-ctap_cbor_assert.hex" {
        // libfido2 edited this recording: its continuation reports carry another
        // channel id than its init report (see ctaphid::fixture_assert_*). Put them
        // back on one channel.
        for r in reports.iter_mut().skip(1) {
            r[..4].copy_from_slice(&cid.to_bytes());
        }
    }
    replay_reports(name, &reports, cid)
        .into_iter()
        .filter_map(|e| match e {
            Event::Response {
                cmd: HidCommand::Cbor,
                payload,
            } => Some(payload),
            Event::Keepalive(_) => None,
            other => panic!("{name}: unexpected event {other:?}"),
        })
        .collect()
}

fn single(name: &str) -> Vec<u8> {
    let mut r = ctap_responses(name);
    assert_eq!(r.len(), 1, "{name}: one response");
    r.remove(0)
}

fn cdh(name: &str) -> [u8; 32] {
    fixture_bytes(name)
        .try_into()
        .expect("32-byte clientDataHash")
}

#[test]
fn get_info() {
    let info = decode_response::<GetInfo>(&single("wiredata-ctap_cbor_info.hex")).unwrap();
    assert!(info.versions.iter().any(|v| v == "FIDO_2_0"));
    assert!(info.versions.iter().any(|v| v == "U2F_V2"));
    assert!(info.supports_pin_protocol(1));
    assert_eq!(info.max_msg_size, Some(1536));
    assert_eq!(info.supports_option("rk"), Some(true));
    assert!(info.has_extension("credProtect"));
}

#[test]
fn client_pin_key_agreement_is_a_usable_p256_key() {
    let resp = decode_response::<ClientPin>(&single("wiredata-ctap_cbor_authkey.hex")).unwrap();
    let key = resp.key_agreement.expect("keyAgreement");
    assert!(matches!(key, CoseKey::Ec2 { .. }));
    for protocol in [PinUvAuthProtocol::One, PinUvAuthProtocol::Two] {
        let (platform_key, _secret) = protocol
            .encapsulate(&key, &mut rand_core::OsRng)
            .expect("the recorded key is on the curve");
        assert!(matches!(platform_key, CoseKey::Ec2 { .. }));
    }
}

#[test]
fn client_pin_token_and_retries() {
    let token = decode_response::<ClientPin>(&single("wiredata-ctap_cbor_pintoken.hex")).unwrap();
    let enc = token.pin_uv_auth_token.as_ref().expect("pinUvAuthToken");
    assert_eq!(enc.expose().len() % 16, 0, "AES-CBC ciphertext");
    assert!(!format!("{token:?}").contains(&format!("{:?}", enc.expose())));
    let retries = decode_response::<ClientPin>(&single("wiredata-ctap_cbor_retries.hex")).unwrap();
    assert!(retries.pin_retries.is_some());
}

#[test]
fn empty_success() {
    decode_response::<Reset>(&single("wiredata-ctap_cbor_status.hex")).unwrap();
}

#[test]
fn make_credential_packed_x5c_verifies() {
    for name in [
        "wiredata-ctap_cbor_cred.hex",
        "cred-wiredata-makecred.hex",
        "cred-wiredata-makecred_entattest.hex",
    ] {
        let resp = decode_response::<MakeCredential>(&single(name)).unwrap();
        let obj =
            AttestationObject::from_parts(&resp.fmt, &resp.auth_data, &resp.att_stmt).unwrap();
        assert_eq!(obj.fmt(), "packed", "{name}");
        if name.starts_with("cred-wiredata") {
            if name == "cred-wiredata-makecred.hex" {
                assert_eq!(
                    resp.auth_data,
                    fixture_bytes("cred-authdata.hex")[2..],
                    "{name}"
                );
            }
            // The recorded certificate is an X.509 v1 certificate without the OU the
            // packed rules ask for, so only its signature can be checked.
            let verified = obj
                .verify_with(&cdh("cred-cdh.hex"), CertificatePolicy::SignatureOnly)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(matches!(
                verified.attestation_type,
                AttestationType::BasicOrAttCa { .. }
            ));
            if name == "cred-wiredata-makecred.hex" {
                assert_eq!(verified.credential_id, fixture_bytes("cred-id.hex"));
            }
            assert_eq!(verified.aaguid.to_vec(), fixture_bytes("cred-aaguid.hex"));
            let mut wrong = cdh("cred-cdh.hex");
            wrong[0] ^= 1;
            assert!(obj
                .verify_with(&wrong, CertificatePolicy::SignatureOnly)
                .is_err());
            if name == "cred-wiredata-makecred.hex" {
                let strict = obj.verify(&cdh("cred-cdh.hex"));
                assert!(strict.is_err(), "strict leaf rules refuse a v1 certificate");
            } else {
                // The enterprise-attestation recording carries a conformant certificate.
                obj.verify(&cdh("cred-cdh.hex")).unwrap();
            }
        }
        if name.ends_with("entattest.hex") {
            assert_eq!(resp.ep_att, Some(true), "{name}");
        }
    }
}

#[test]
fn get_assertion_signature_verifies() {
    let resp = decode_response::<GetAssertion>(&single("wiredata-ctap_cbor_assert.hex")).unwrap();
    assert!(!resp.signature.is_empty());
    // The recorded piecewise assertion (regress data) verifies with its ES256 key.
    let pk = fixture_bytes("assert-es256_pk.hex");
    let key = CoseKey::Ec2 {
        alg: fido_core::cose::ALG_ES256,
        x: pk[..32].try_into().unwrap(),
        y: pk[32..64].try_into().unwrap(),
    };
    let auth_data = fixture_bytes("assert-authdata.hex");
    let auth_data = if auth_data[0] == 0x58 {
        auth_data[2..].to_vec()
    } else {
        auth_data
    };
    verify_assertion(
        &key,
        &auth_data,
        &cdh("assert-cdh.hex"),
        &fixture_bytes("assert-sig.hex"),
    )
    .unwrap();
}

#[test]
fn credential_management() {
    let meta =
        decode_response::<CredentialManagement>(&single("wiredata-ctap_cbor_credman_meta.hex"))
            .unwrap();
    assert!(meta.existing_resident_credentials_count.is_some());
    let rps = ctap_responses("wiredata-ctap_cbor_credman_rplist.hex");
    assert!(rps.len() >= 2);
    for r in &rps {
        let rp = decode_response::<CredentialManagement>(r).unwrap();
        assert!(rp.rp.is_some() && rp.rp_id_hash.is_some());
    }
    let creds = ctap_responses("wiredata-ctap_cbor_credman_rklist.hex");
    assert!(creds.len() >= 2);
    for c in &creds {
        let cred = decode_response::<CredentialManagement>(c).unwrap();
        assert!(cred.credential_id.is_some() && cred.public_key.is_some() && cred.user.is_some());
    }
}

#[test]
fn bio_enrollment() {
    let enroll = ctap_responses("wiredata-ctap_cbor_bio_enroll.hex");
    assert_eq!(enroll.len(), 3, "three replies between keepalives");
    for r in &enroll {
        decode_response::<BioEnrollment>(r).unwrap();
    }
    let info =
        decode_response::<BioEnrollment>(&single("wiredata-ctap_cbor_bio_info.hex")).unwrap();
    assert!(info.fingerprint_kind.is_some());
    let list =
        decode_response::<BioEnrollment>(&single("wiredata-ctap_cbor_bio_enum.hex")).unwrap();
    assert!(!list.template_infos.unwrap_or_default().is_empty());
}

#[test]
fn large_blob_array() {
    let resp = decode_response::<LargeBlobs>(&single("wiredata-ctap_cbor_largeblob_get_array.hex"))
        .unwrap();
    let config = resp.config.expect("config");
    assert!(
        config.len() > 16,
        "serialized array with its 16-byte hash trailer"
    );
}

#[test]
fn every_ctaphid_recording_is_covered() {
    // A new recording dropped into the folder must be added above.
    let covered = [
        "wiredata-ctap_cbor_info.hex",
        "wiredata-ctap_cbor_authkey.hex",
        "wiredata-ctap_cbor_pintoken.hex",
        "wiredata-ctap_cbor_retries.hex",
        "wiredata-ctap_cbor_status.hex",
        "wiredata-ctap_cbor_cred.hex",
        "wiredata-ctap_cbor_assert.hex",
        "wiredata-ctap_cbor_credman_meta.hex",
        "wiredata-ctap_cbor_credman_rplist.hex",
        "wiredata-ctap_cbor_credman_rklist.hex",
        "wiredata-ctap_cbor_bio_enroll.hex",
        "wiredata-ctap_cbor_bio_info.hex",
        "wiredata-ctap_cbor_bio_enum.hex",
        "wiredata-ctap_cbor_largeblob_get_array.hex",
        "cred-wiredata-makecred.hex",
        "cred-wiredata-makecred_entattest.hex",
        // Not CTAP2 responses: checked in ctaphid.rs (INIT, KEEPALIVE) and apdu.rs (NFC).
        "wiredata-ctap_init.hex",
        "wiredata-ctap_keepalive.hex",
        "wiredata-ctap_nfc_init.hex",
        "wiredata-ctap_nfc_msg.hex",
        "wiredata-ctap_extended_apdu.hex",
    ];
    let dir = super::support::fixture_path("");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.contains("wiredata") {
            assert!(covered.contains(&name.as_str()), "{name} is not covered");
        }
    }
}

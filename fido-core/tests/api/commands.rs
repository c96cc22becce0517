//! Integration tests: commands. Round trips of every request and response here; the
//! recorded and published vectors in `vectors`.

use fido_core::cbor::{self, CborError, Value};
use fido_core::commands::*;
use fido_core::cose::CoseKey;
use fido_core::pin::Permissions;
use fido_core::{CtapStatus, Error};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::support::{fixture_bytes, fixture_lines, hex};

mod strategies;
mod vectors;

use strategies::*;

// ---------------------------------------------------------------------------------
// Round-trip properties.

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

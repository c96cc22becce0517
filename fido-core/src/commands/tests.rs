use super::*;
use crate::cose::{ALG_ES256, ALG_RS256};
use crate::pin::Permissions;

fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base16ct::mixed::decode_vec(clean).expect("hex in test data")
}

const CDH: &str = "687134968222ec17202e42505f8ed2b16ae22f16bb05b88c25db9e602645f141";
const PUBLIC_KEY: &str = "6a7075626c69632d6b6579"; // text(10) "public-key"

fn cdh() -> [u8; 32] {
    h(CDH).try_into().unwrap()
}

fn wrong_type(err: Error) -> &'static str {
    match err {
        Error::Cbor(CborError::WrongType { field, .. }) => field,
        other => panic!("expected WrongType, got {other:?}"),
    }
}

fn missing(err: Error) -> &'static str {
    match err {
        Error::Cbor(CborError::MissingField { field }) => field,
        other => panic!("expected MissingField, got {other:?}"),
    }
}

#[test]
fn get_info_request_is_the_bare_command_byte() {
    assert_eq!(encode_request(&GetInfo), vec![0x04]);
    assert_eq!(encode_request(&Reset), vec![0x07]);
    assert_eq!(encode_request(&GetNextAssertion), vec![0x08]);
    assert_eq!(encode_request(&Selection), vec![0x0B]);
}

/// The values of the CTAP 2.1 makeCredential example (without the deprecated user icon),
/// encoded by hand in canonical order: integer keys ascending, text keys shorter first.
#[test]
fn make_credential_known_answer_encoding() {
    let mut mc = MakeCredential::new(
        cdh(),
        RpEntity {
            id: "example.com".into(),
            name: Some("Acme".into()),
        },
        UserEntity {
            id: h("3082019330820138a0030201023082019330820138a003020102308201933082"),
            name: Some("johnpsmith@example.com".into()),
            display_name: Some("John P. Smith".into()),
        },
        vec![
            PublicKeyCredentialParameters::public_key(ALG_ES256),
            PublicKeyCredentialParameters::public_key(ALG_RS256),
        ],
    );
    mc.options.rk = Some(true);
    let expected = h(&format!(
        "01 a5
         01 5820 {CDH}
         02 a2 62 6964 6b 6578616d706c652e636f6d 64 6e616d65 64 41636d65
         03 a3 62 6964 5820 3082019330820138a0030201023082019330820138a003020102308201933082
               64 6e616d65 76 6a6f686e70736d697468406578616d706c652e636f6d
               6b 646973706c61794e616d65 6d 4a6f686e20502e20536d697468
         04 82 a2 63 616c67 26 64 74797065 {PUBLIC_KEY}
               a2 63 616c67 39 0100 64 74797065 {PUBLIC_KEY}
         07 a1 62 726b f5"
    ));
    let bytes = encode_request(&mc);
    assert_eq!(bytes, expected);
    assert_eq!(
        Request::decode(&bytes).unwrap(),
        Request::MakeCredential(mc)
    );
}

#[test]
fn get_assertion_known_answer_encoding() {
    let mut ga = GetAssertion::new("example.com", cdh());
    ga.allow_list = Some(vec![CredentialDescriptor::public_key(vec![1, 2, 3, 4])]);
    ga.options.up = Some(false);
    ga.pin_uv_auth_param = Some(vec![0xAA; 16]);
    ga.pin_uv_auth_protocol = Some(1);
    let expected = h(&format!(
        "02 a6
         01 6b 6578616d706c652e636f6d
         02 5820 {CDH}
         03 81 a2 62 6964 44 01020304 64 74797065 {PUBLIC_KEY}
         05 a1 62 7570 f4
         06 50 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
         07 01"
    ));
    assert_eq!(encode_request(&ga), expected);
}

#[test]
fn client_pin_known_answer_encodings() {
    let retries = ClientPin::GetPinRetries {
        pin_uv_auth_protocol: Some(2),
    };
    assert_eq!(encode_request(&retries), h("06 a2 01 02 02 01"));
    let ka = ClientPin::GetKeyAgreement {
        pin_uv_auth_protocol: 1,
    };
    assert_eq!(encode_request(&ka), h("06 a2 01 01 02 02"));
    let uv = ClientPin::GetUvRetries {
        pin_uv_auth_protocol: None,
    };
    assert_eq!(encode_request(&uv), h("06 a1 02 07"));
}

#[test]
fn client_pin_token_with_permissions_encoding_orders_keys() {
    let key = crate::cose::CoseKey::Ec2 {
        alg: crate::cose::ALG_ECDH_ES_HKDF_256,
        x: [1; 32],
        y: [2; 32],
    };
    let req = ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
        pin_uv_auth_protocol: 2,
        key_agreement: key.clone(),
        pin_hash_enc: vec![9; 32],
        permissions: Permissions::MAKE_CREDENTIAL | Permissions::GET_ASSERTION,
        rp_id: Some("a.b".into()),
    };
    let bytes = encode_request(&req);
    let cose = cbor::encode(&key.to_value());
    let expected = [
        h("06 a6 01 02 02 09 03"),
        cose,
        h("06 5820"),
        vec![9; 32],
        h("09 03 0a 63 612e62"),
    ]
    .concat();
    assert_eq!(bytes, expected);
    assert_eq!(Request::decode(&bytes).unwrap(), Request::ClientPin(req));
}

#[test]
fn cred_mgmt_auth_message_is_subcommand_then_params() {
    let cm = CredentialManagement::new(CredMgmtSubCommand::EnumerateCredentialsBegin {
        rp_id_hash: [0x11; 32],
    });
    let mut expected = h("04 a1 01 5820");
    expected.extend([0x11; 32]);
    assert_eq!(cm.pin_uv_auth_message(), expected);
    let meta = CredentialManagement::new(CredMgmtSubCommand::GetCredsMetadata);
    assert_eq!(meta.pin_uv_auth_message(), vec![0x01]);
    assert!(meta.sub_command_params_bytes().is_empty());
}

#[test]
fn cred_mgmt_prototype_selects_command_byte() {
    let mut cm = CredentialManagement::new(CredMgmtSubCommand::EnumerateRpsBegin);
    cm.pin_uv_auth_protocol = Some(1);
    cm.pin_uv_auth_param = Some(vec![7; 16]);
    assert_eq!(encode_request(&cm)[0], 0x0A);
    cm.prototype = true;
    let bytes = encode_request(&cm);
    assert_eq!(bytes[0], 0x41);
    assert_eq!(&bytes[1..6], &h("a3 01 02 03 01")[..]);
    assert_eq!(
        Request::decode(&bytes).unwrap(),
        Request::CredentialManagement(cm)
    );
}

#[test]
fn bio_auth_message_and_prototype() {
    let mut b = BioEnrollment::fingerprint(BioSubCommand::EnrollBegin {
        timeout_milliseconds: Some(10_000),
    });
    assert_eq!(b.pin_uv_auth_message(), h("01 01 a1 03 19 2710"));
    assert_eq!(encode_request(&b)[0], 0x09);
    b.prototype = true;
    let bytes = encode_request(&b);
    assert_eq!(bytes, h("40 a3 01 01 02 01 03 a1 03 19 2710"));
    assert_eq!(Request::decode(&bytes).unwrap(), Request::BioEnrollment(b));
    assert_eq!(
        encode_request(&BioEnrollment::get_modality()),
        h("09 a1 06 f5")
    );
}

#[test]
fn config_auth_message() {
    let c = AuthenticatorConfig::new(ConfigSubCommand::SetMinPinLength {
        new_min_pin_length: Some(6),
        min_pin_length_rpids: None,
        force_change_pin: Some(true),
    });
    let mut expected = vec![0xff; 32];
    expected.extend(h("0d 03 a2 01 06 03 f5"));
    assert_eq!(c.pin_uv_auth_message(), expected);
    let t = AuthenticatorConfig::new(ConfigSubCommand::ToggleAlwaysUv);
    assert_eq!(encode_request(&t), h("0d a1 01 02"));
    let mut expected = vec![0xff; 32];
    expected.extend([0x0d, 0x02]);
    assert_eq!(t.pin_uv_auth_message(), expected);
}

#[test]
fn large_blobs_auth_message() {
    use sha2::{Digest, Sha256};
    let w = LargeBlobs::write(0x0102_0304, b"abc".to_vec(), None);
    let mut expected = vec![0xff; 32];
    expected.extend(h("0c 00 04030201"));
    expected.extend(Sha256::digest(b"abc"));
    assert_eq!(w.pin_uv_auth_message(), Some(expected));
    assert_eq!(LargeBlobs::read(0, 100).pin_uv_auth_message(), None);
    assert_eq!(
        encode_request(&LargeBlobs::read(0, 100)),
        h("0c a2 01 18 64 03 00")
    );
}

#[test]
fn non_zero_status_is_kept_losslessly() {
    assert_eq!(
        decode_response::<ClientPin>(&[0x31]),
        Err(Error::Ctap(CtapStatus::PinInvalid))
    );
    assert_eq!(
        decode_response::<GetInfo>(&[0xF3, 0xa0]),
        Err(Error::Ctap(CtapStatus::Other(0xF3)))
    );
}

#[test]
fn empty_input_is_a_typed_error() {
    assert_eq!(
        missing(decode_response::<GetInfo>(&[]).unwrap_err()),
        "status"
    );
    assert_eq!(missing(Request::decode(&[]).unwrap_err()), "command");
}

#[test]
fn empty_payload_allowed_where_spec_allows() {
    assert_eq!(decode_response::<Reset>(&[0]), Ok(()));
    assert_eq!(
        decode_response::<ClientPin>(&[0]),
        Ok(ClientPinResponse::default())
    );
    assert_eq!(
        decode_response::<LargeBlobs>(&[0]),
        Ok(LargeBlobsResponse::default())
    );
    // getInfo and makeCredential need fields.
    assert_eq!(
        missing(decode_response::<GetInfo>(&[0]).unwrap_err()),
        "getInfo.versions"
    );
    assert_eq!(
        missing(decode_response::<MakeCredential>(&[0]).unwrap_err()),
        "makeCredential.attStmt"
    );
}

#[test]
fn wrong_types_name_the_field() {
    // getInfo versions as a text string instead of an array
    let bad = h("00 a2 01 63 666f6f 03 50 00000000000000000000000000000000");
    assert_eq!(
        wrong_type(decode_response::<GetInfo>(&bad).unwrap_err()),
        "getInfo.versions"
    );
    // makeCredential authData as text
    let bad = h("00 a3 01 64 6e6f6e65 02 61 78 03 a0");
    assert_eq!(
        wrong_type(decode_response::<MakeCredential>(&bad).unwrap_err()),
        "makeCredential.authData"
    );
    // clientPIN pinRetries as a boolean
    let bad = h("00 a1 03 f5");
    assert_eq!(
        wrong_type(decode_response::<ClientPin>(&bad).unwrap_err()),
        "clientPIN.pinRetries"
    );
    // getInfo options value not boolean
    let bad = h("00 a3 01 80 03 50 00000000000000000000000000000000 04 a1 62 726b 01");
    assert_eq!(
        wrong_type(decode_response::<GetInfo>(&bad).unwrap_err()),
        "getInfo.options"
    );
    // the whole response not a map
    assert_eq!(
        wrong_type(decode_response::<GetAssertion>(&h("00 80")).unwrap_err()),
        "getAssertion response"
    );
    // request: rp id as bytes
    let bad = h(&format!(
        "01 a4 01 5820 {CDH} 02 a1 62 6964 41 00 03 a1 62 6964 41 00 04 80"
    ));
    assert_eq!(wrong_type(Request::decode(&bad).unwrap_err()), "rp.id");
}

#[test]
fn unknown_keys_are_ignored() {
    let resp = h("00 a3 03 02 18 63 f5 63 666f6f 01");
    assert_eq!(
        decode_response::<ClientPin>(&resp).unwrap().pin_retries,
        Some(2)
    );
}

#[test]
fn aaguid_of_wrong_length_is_rejected() {
    let bad = h("00 a2 01 80 03 43 010203");
    match decode_response::<GetInfo>(&bad).unwrap_err() {
        Error::Cbor(CborError::InvalidValue { field, .. }) => assert_eq!(field, "getInfo.aaguid"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_command_and_subcommand_map_to_ctap_errors() {
    assert_eq!(
        Request::decode(&[0x05]),
        Err(Error::Ctap(CtapStatus::InvalidCommand))
    );
    assert_eq!(
        Request::decode(&h("06 a1 02 08")),
        Err(Error::Ctap(CtapStatus::InvalidSubcommand))
    );
    assert_eq!(
        Request::decode(&h("0a a1 01 09")),
        Err(Error::Ctap(CtapStatus::InvalidSubcommand))
    );
    assert_eq!(
        Request::decode(&h("0d a1 01 04")),
        Err(Error::Ctap(CtapStatus::InvalidSubcommand))
    );
}

#[test]
fn requests_must_be_canonical() {
    // keys 2 then 1: out of order
    let err = Request::decode(&h("06 a2 02 01 01 01")).unwrap_err();
    assert!(matches!(
        err,
        Error::Cbor(CborError::UnsortedMapKeys { .. })
    ));
}

#[test]
fn missing_sub_command_params_named() {
    assert_eq!(
        missing(Request::decode(&h("0a a1 01 04")).unwrap_err()),
        "credentialManagement.subCommandParams"
    );
    assert_eq!(
        missing(Request::decode(&h("09 a2 01 01 02 06")).unwrap_err()),
        "bioEnrollment.subCommandParams"
    );
    assert_eq!(
        missing(Request::decode(&h("06 a2 01 01 02 05")).unwrap_err()),
        "clientPIN.keyAgreement"
    );
}

#[test]
fn secrets_are_redacted_in_debug() {
    let r = ClientPinResponse {
        pin_uv_auth_token: Some(SecretBytes::new(vec![0xAB; 32])),
        ..Default::default()
    };
    let s = format!("{r:?}");
    assert!(s.contains("redacted"), "{s}");
    assert!(!s.contains("171"), "{s}");
    let g = GetAssertionResponse {
        credential: None,
        auth_data: vec![],
        signature: vec![],
        user: None,
        number_of_credentials: None,
        user_selected: None,
        large_blob_key: Some(vec![0xCD; 32].into()),
    };
    assert!(!format!("{g:?}").contains("205"));
}

#[test]
fn response_encoding_round_trips() {
    let r = ClientPinResponse {
        pin_retries: Some(3),
        power_cycle_state: Some(false),
        ..Default::default()
    };
    let bytes = encode_response(&r);
    assert_eq!(bytes, h("00 a2 03 03 04 f4"));
    assert_eq!(decode_response::<ClientPin>(&bytes), Ok(r));
    assert_eq!(encode_response(&()), vec![0]);
    assert_eq!(encode_status(CtapStatus::PinBlocked), vec![0x32]);
}

#[test]
fn info_helpers() {
    let info = AuthenticatorInfo {
        versions: vec!["FIDO_2_0".into(), "FIDO_2_1_PRE".into()],
        extensions: Some(vec!["credProtect".into()]),
        options: Some(vec![("clientPin".into(), false), ("rk".into(), true)]),
        pin_uv_auth_protocols: Some(vec![1]),
        ..Default::default()
    };
    assert!(!info.is_ctap21());
    assert_eq!(info.supports_option("clientPin"), Some(false));
    assert_eq!(info.supports_option("rk"), Some(true));
    assert_eq!(info.supports_option("bioEnroll"), None);
    assert!(info.has_extension("credProtect"));
    assert!(!info.has_extension("hmac-secret"));
    assert!(info.supports_pin_protocol(1));
    assert!(!info.supports_pin_protocol(2));
    let empty = AuthenticatorInfo::default();
    assert_eq!(empty.supports_option("rk"), None);
    assert!(!empty.supports_pin_protocol(1));
}

#[test]
fn prototype_detection_from_options() {
    let mut info = AuthenticatorInfo {
        options: Some(vec![
            ("credentialMgmtPreview".into(), true),
            ("userVerificationMgmtPreview".into(), false),
        ]),
        ..Default::default()
    };
    assert!(info.cred_mgmt_prototype_only());
    assert!(info.bio_enroll_prototype_only());
    info.options = Some(vec![
        ("credMgmt".into(), true),
        ("credentialMgmtPreview".into(), true),
        ("bioEnroll".into(), false),
        ("userVerificationMgmtPreview".into(), false),
    ]);
    assert!(!info.cred_mgmt_prototype_only());
    assert!(!info.bio_enroll_prototype_only());
    assert!(!AuthenticatorInfo::default().cred_mgmt_prototype_only());
}

#[test]
fn request_errors_map_to_ctap_statuses() {
    let status = |bytes: &[u8]| status_for_request_error(&Request::decode(bytes).unwrap_err());
    assert_eq!(status(&[0x03]), CtapStatus::InvalidCommand);
    assert_eq!(status(&h("06 a1 02 18 63")), CtapStatus::InvalidSubcommand);
    assert_eq!(status(&h("06 a1 02 61 78")), CtapStatus::CborUnexpectedType);
    assert_eq!(status(&h("06 a1 01 01")), CtapStatus::MissingParameter);
    assert_eq!(
        status(&h("06 a2 01 19 0100 02 02")),
        CtapStatus::InvalidParameter
    );
    assert_eq!(status(&h("06 a1 01")), CtapStatus::InvalidCbor);
    assert_eq!(status(&h("06 ff")), CtapStatus::InvalidCbor);
}

#[test]
fn responses_with_unsorted_keys_are_accepted() {
    // Real keys do not always sort their maps; duplicates are still refused.
    let r = decode_response::<ClientPin>(&h("00 a2 05 03 03 08")).unwrap();
    assert_eq!((r.pin_retries, r.uv_retries), (Some(8), Some(3)));
    assert!(matches!(
        decode_response::<ClientPin>(&h("00 a2 03 03 03 08")),
        Err(Error::Cbor(CborError::DuplicateMapKey { .. }))
    ));
}

#[test]
fn nesting_bombs_and_length_bombs_are_typed_errors() {
    let mut bomb = vec![0x00];
    bomb.extend([0x81; 10_000]);
    bomb.push(0x00);
    assert!(matches!(
        decode_response::<GetInfo>(&bomb),
        Err(Error::Cbor(CborError::TooDeep { .. }))
    ));
    // A byte string claiming 4 GiB.
    assert!(matches!(
        decode_response::<LargeBlobs>(&h("00 a1 01 5a ffffffff 00")),
        Err(Error::Cbor(CborError::LengthTooLarge { .. }))
    ));
    // Trailing bytes after the response map.
    assert!(matches!(
        decode_response::<ClientPin>(&h("00 a0 00")),
        Err(Error::Cbor(CborError::TrailingBytes { .. }))
    ));
}

#[test]
fn enc_identifier_round_trips_and_rejects_bad_lengths() {
    let ppuat = [0x42u8; 32];
    let enc = encrypt_info_field(&ppuat, "encIdentifier", [9; 16], b"0123456789abcdef").unwrap();
    assert_eq!(enc.len(), 32);
    assert_eq!(&enc[..16], &[9; 16]);
    let info = AuthenticatorInfo {
        enc_identifier: Some(enc.clone()),
        enc_cred_store_state: Some(enc),
        ..Default::default()
    };
    assert_eq!(
        info.decrypt_identifier(&ppuat).unwrap().as_deref(),
        Some(&b"0123456789abcdef"[..])
    );
    // The info string is part of the key: the same bytes read as encCredStoreState differ.
    assert_ne!(
        info.decrypt_cred_store_state(&ppuat).unwrap().as_deref(),
        Some(&b"0123456789abcdef"[..])
    );
    assert_eq!(
        AuthenticatorInfo::default().decrypt_identifier(&ppuat),
        Ok(None)
    );
    let short = AuthenticatorInfo {
        enc_identifier: Some(vec![0; 20]),
        ..Default::default()
    };
    assert!(short.decrypt_identifier(&ppuat).is_err());
    assert!(encrypt_info_field(&ppuat, "encIdentifier", [0; 16], b"odd").is_err());
}

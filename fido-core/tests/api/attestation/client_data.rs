//! clientDataJSON: building, hashing and verifying collected client data.

use fido_core::clientdata::{
    client_data_hash, ClientDataError, ClientDataType, CollectedClientData,
};
use sha2::{Digest, Sha256};

const ORIGIN: &str = "https://login.microsoft.com";

fn create() -> CollectedClientData {
    CollectedClientData::new(ClientDataType::Create, b"0123456789abcdef".to_vec(), ORIGIN)
}

#[test]
fn known_serialization_and_hash() {
    let cd = create();
    let json = cd.to_json();
    assert_eq!(
        json,
        "{\"type\":\"webauthn.create\",\"challenge\":\"MDEyMzQ1Njc4OWFiY2RlZg\",\
         \"origin\":\"https://login.microsoft.com\",\"crossOrigin\":false}"
    );
    let expected: [u8; 32] = Sha256::digest(json.as_bytes()).into();
    assert_eq!(cd.hash(), expected);
    assert_eq!(client_data_hash(json.as_bytes()), expected);
}

#[test]
fn parses_browser_output_with_extra_members() {
    let json = br#"{"type":"webauthn.get","challenge":"AAEC","origin":"https://example.com","crossOrigin":false,"other_keys_can_be_added_here":"do not compare clientDataJSON against a template."}"#;
    let cd = CollectedClientData::parse(json).unwrap();
    assert_eq!(cd.type_, ClientDataType::Get);
    assert_eq!(cd.challenge, vec![0, 1, 2]);
    assert_eq!(cd.origin, "https://example.com");
    assert!(!cd.cross_origin);
    cd.verify(&ClientDataType::Get, &[0, 1, 2], &["https://example.com"])
        .unwrap();
}

#[test]
fn verify_reports_each_mismatch() {
    let cd = create();
    let ch = b"0123456789abcdef";
    cd.verify(&ClientDataType::Create, ch, &["https://x", ORIGIN])
        .unwrap();
    assert_eq!(
        cd.verify(&ClientDataType::Get, ch, &[ORIGIN]),
        Err(ClientDataError::WrongType {
            expected: "webauthn.get".into(),
            found: "webauthn.create".into()
        })
    );
    assert_eq!(
        cd.verify(&ClientDataType::Create, b"0123456789abcdeF", &[ORIGIN]),
        Err(ClientDataError::ChallengeMismatch)
    );
    assert_eq!(
        cd.verify(
            &ClientDataType::Create,
            ch,
            &["https://login.microsoft.com.evil"]
        ),
        Err(ClientDataError::OriginMismatch {
            origin: ORIGIN.into()
        })
    );
    assert_eq!(
        cd.verify(&ClientDataType::Create, ch, &[]),
        Err(ClientDataError::OriginMismatch {
            origin: ORIGIN.into()
        })
    );
}

#[test]
fn strict_parsing_errors() {
    let p = CollectedClientData::parse;
    assert_eq!(p(b"\xff\xfe"), Err(ClientDataError::InvalidUtf8));
    assert!(matches!(
        p(b"{\"type\":"),
        Err(ClientDataError::InvalidJson(_))
    ));
    assert_eq!(p(b"[1,2]"), Err(ClientDataError::NotAnObject));
    assert_eq!(
        p(br#"{"type":"webauthn.get","origin":"x"}"#),
        Err(ClientDataError::MissingField("challenge"))
    );
    assert_eq!(
        p(br#"{"challenge":"AA","origin":"x"}"#),
        Err(ClientDataError::MissingField("type"))
    );
    assert_eq!(
        p(br#"{"type":"webauthn.get","challenge":"AA"}"#),
        Err(ClientDataError::MissingField("origin"))
    );
    assert_eq!(
        p(br#"{"type":1,"challenge":"AA","origin":"x"}"#),
        Err(ClientDataError::WrongFieldType {
            field: "type",
            expected: "string"
        })
    );
    assert_eq!(
        p(br#"{"type":"webauthn.get","challenge":"AA","origin":"x","crossOrigin":"no"}"#),
        Err(ClientDataError::WrongFieldType {
            field: "crossOrigin",
            expected: "boolean"
        })
    );
    assert_eq!(
        p(br#"{"type":"webauthn.get","challenge":"A+/=","origin":"x"}"#),
        Err(ClientDataError::InvalidChallengeEncoding)
    );
    let big = vec![b' '; fido_core::clientdata::MAX_CLIENT_DATA_LEN + 1];
    assert!(matches!(p(&big), Err(ClientDataError::TooLarge { .. })));
}

#[test]
fn unknown_type_is_kept_for_reporting() {
    let cd = CollectedClientData::parse(br#"{"type":"payment.get","challenge":"AA","origin":"x"}"#)
        .unwrap();
    assert_eq!(cd.type_, ClientDataType::Other("payment.get".into()));
    assert!(matches!(
        cd.verify(&ClientDataType::Get, &[0], &["x"]),
        Err(ClientDataError::WrongType { .. })
    ));
}

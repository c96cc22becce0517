//! Attestation statements made here with self-made keys and certificates: packed
//! (self and x5c), fido-u2f, none, and the typed errors.

use super::*;

#[test]
fn packed_self_attestation_round_trip() {
    let sk = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let auth_data = new_credential_auth_data(cose_es256(&sk), [0x11; 16]);
    let cdh = [0x5a; 32];
    let sig = sign_der(&sk, &signed_data(&auth_data, &cdh));
    let obj = AttestationObject::from_parts(
        "packed",
        &auth_data,
        &packed_att_stmt(ALG_ES256, &sig, None),
    )
    .unwrap();
    let v = obj.verify(&cdh).unwrap();
    assert_eq!(v.attestation_type, AttestationType::Self_);
    assert_eq!(v.public_key, cose_es256(&sk));
    assert_eq!(v.aaguid, [0x11; 16]);

    // alg must match the credential key.
    let obj = AttestationObject::from_parts(
        "packed",
        &auth_data,
        &packed_att_stmt(ALG_EDDSA, &sig, None),
    )
    .unwrap();
    assert_eq!(
        obj.verify(&cdh),
        Err(AttestationError::AlgorithmMismatch {
            statement: ALG_EDDSA,
            credential: ALG_ES256
        })
    );
    // Wrong client data hash.
    let obj = AttestationObject::from_parts(
        "packed",
        &auth_data,
        &packed_att_stmt(ALG_ES256, &sig, None),
    )
    .unwrap();
    assert_eq!(
        obj.verify(&[0; 32]).unwrap_err(),
        AttestationError::Signature(CoseError::BadSignature)
    );
}

#[test]
fn packed_self_attestation_eddsa() {
    use ed25519_dalek::Signer as _;
    let sk = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let key = CoseKey::Okp {
        alg: ALG_EDDSA,
        x: sk.verifying_key().to_bytes(),
    };
    let auth_data = new_credential_auth_data(key, [0; 16]);
    let cdh = [1; 32];
    let sig = sk.sign(&signed_data(&auth_data, &cdh)).to_bytes();
    let obj = AttestationObject::from_parts(
        "packed",
        &auth_data,
        &packed_att_stmt(ALG_EDDSA, &sig, None),
    )
    .unwrap();
    assert_eq!(
        obj.verify(&cdh).unwrap().attestation_type,
        AttestationType::Self_
    );
}

#[test]
fn packed_x5c_with_conformant_certificate_passes_strict() {
    let cred = SigningKey::from_slice(&[0x21; 32]).unwrap();
    let auth_data = new_credential_auth_data(cose_es256(&cred), FIXTURE_AAGUID);
    let cdh = [7; 32];
    let sig = sign_der(&att_key(), &signed_data(&auth_data, &cdh));
    let chain = vec![hex(TEST_LEAF_CERT), hex(TEST_CA_CERT)];
    let stmt = packed_att_stmt(ALG_ES256, &sig, Some(&chain));
    let obj = AttestationObject::from_parts("packed", &auth_data, &stmt).unwrap();
    let v = obj.verify(&cdh).unwrap();
    assert_eq!(v.attestation_type, AttestationType::BasicOrAttCa { chain });
    // Through the WebAuthn CBOR form too.
    let back = AttestationObject::from_cbor(&obj.to_cbor()).unwrap();
    assert!(back.verify(&cdh).is_ok());
}

#[test]
fn packed_x5c_alg_must_fit_certificate_key_and_chain_must_parse() {
    let cred = SigningKey::from_slice(&[0x21; 32]).unwrap();
    let auth_data = new_credential_auth_data(cose_es256(&cred), FIXTURE_AAGUID);
    let cdh = [7; 32];
    let sig = sign_der(&att_key(), &signed_data(&auth_data, &cdh));
    let stmt = packed_att_stmt(ALG_RS256, &sig, Some(&[hex(TEST_LEAF_CERT)]));
    let obj = AttestationObject::from_parts("packed", &auth_data, &stmt).unwrap();
    assert_eq!(
        obj.verify(&cdh),
        Err(AttestationError::CertificateAlgorithmMismatch {
            statement: ALG_RS256,
            certificate: ALG_ES256
        })
    );
    let stmt = packed_att_stmt(ALG_ES256, &sig, Some(&[hex(TEST_LEAF_CERT), vec![1, 2, 3]]));
    let obj = AttestationObject::from_parts("packed", &auth_data, &stmt).unwrap();
    assert!(matches!(
        obj.verify(&cdh),
        Err(AttestationError::Certificate { index: 1, .. })
    ));
}

#[test]
fn packed_x5c_aaguid_mismatch_is_rejected() {
    let cred = SigningKey::from_slice(&[0x21; 32]).unwrap();
    let auth_data = new_credential_auth_data(cose_es256(&cred), [0xee; 16]);
    let cdh = [7; 32];
    let sig = sign_der(&att_key(), &signed_data(&auth_data, &cdh));
    let stmt = packed_att_stmt(ALG_ES256, &sig, Some(&[hex(TEST_LEAF_CERT)]));
    let obj = AttestationObject::from_parts("packed", &auth_data, &stmt).unwrap();
    for policy in [CertificatePolicy::Strict, CertificatePolicy::SignatureOnly] {
        assert_eq!(
            obj.verify_with(&cdh, policy),
            Err(AttestationError::AaguidMismatch {
                certificate: FIXTURE_AAGUID,
                auth_data: [0xee; 16]
            })
        );
    }
}

#[test]
fn packed_x5c_ca_leaf_is_rejected() {
    let cred = SigningKey::from_slice(&[0x21; 32]).unwrap();
    let auth_data = new_credential_auth_data(cose_es256(&cred), FIXTURE_AAGUID);
    let cdh = [7; 32];
    let sig = sign_der(&att_key(), &signed_data(&auth_data, &cdh));
    let stmt = packed_att_stmt(ALG_ES256, &sig, Some(&[hex(TEST_CA_CERT)]));
    let obj = AttestationObject::from_parts("packed", &auth_data, &stmt).unwrap();
    let err = obj.verify(&cdh).unwrap_err();
    assert!(
        matches!(&err, AttestationError::CertificateRequirement(r) if r.contains("CA")),
        "{err:?}"
    );
}

#[test]
fn packed_x5c_garbage_certificate_and_empty_chain() {
    let auth_data = cbor_bytes_fixture("cred-authdata.hex");
    let stmt = packed_att_stmt(ALG_ES256, &[0x30, 0x00], Some(&[vec![0x30, 0x03, 0x01]]));
    let obj = AttestationObject::from_parts("packed", &auth_data, &stmt).unwrap();
    assert!(matches!(
        obj.verify(&[0; 32]),
        Err(AttestationError::Certificate { index: 0, .. })
    ));
    let stmt = packed_att_stmt(ALG_ES256, &[0x30, 0x00], Some(&[]));
    let obj = AttestationObject::from_parts("packed", &auth_data, &stmt).unwrap();
    assert_eq!(
        obj.verify(&[0; 32]),
        Err(AttestationError::BadCertificateCount { count: 0 })
    );
}

#[test]
fn fido_u2f_round_trip() {
    let cred = SigningKey::from_slice(&[0x33; 32]).unwrap();
    let key = cose_es256(&cred);
    let auth_data = new_credential_auth_data(key.clone(), [0; 16]);
    let cdh = [9; 32];
    let data = u2f_verification_data(&rp_id_hash("example.com"), &cdh, &[0xc1; 32], &key).unwrap();
    assert_eq!(data.len(), 1 + 32 + 32 + 32 + 65);
    assert_eq!(data[0], 0);
    assert_eq!(data[97], 0x04);
    let sig = sign_der(&att_key(), &data);
    let stmt = fido_u2f_att_stmt(&sig, &hex(TEST_LEAF_CERT));
    let obj = AttestationObject::from_parts("fido-u2f", &auth_data, &stmt).unwrap();
    let v = obj.verify(&cdh).unwrap();
    assert!(matches!(
        v.attestation_type,
        AttestationType::BasicOrAttCa { .. }
    ));
    assert_eq!(
        obj.verify(&[8; 32]),
        Err(AttestationError::Signature(CoseError::BadSignature))
    );
    // Two certificates are not allowed in fido-u2f.
    let stmt = Value::map([
        ("sig", Value::from(sig)),
        (
            "x5c",
            Value::Array(vec![
                Value::from(hex(TEST_LEAF_CERT)),
                Value::from(hex(TEST_CA_CERT)),
            ]),
        ),
    ]);
    let obj = AttestationObject::from_parts("fido-u2f", &auth_data, &stmt).unwrap();
    assert!(matches!(
        obj.verify(&cdh),
        Err(AttestationError::U2fRequirement(_))
    ));
}

#[test]
fn none_attestation() {
    let auth_data = cbor_bytes_fixture("cred-authdata.hex");
    let obj = AttestationObject::from_parts("none", &auth_data, &none_att_stmt()).unwrap();
    let v = obj.verify(&[0; 32]).unwrap();
    assert_eq!(v.attestation_type, AttestationType::None);
    assert_eq!(v.credential_id, fixture_bytes("cred-id.hex"));
    let stmt = Value::map([("sig", Value::from(vec![1u8]))]);
    let obj = AttestationObject::from_parts("none", &auth_data, &stmt).unwrap();
    assert_eq!(
        obj.verify(&[0; 32]),
        Err(AttestationError::NoneStatementNotEmpty)
    );
}

#[test]
fn unknown_format_and_missing_credential() {
    let auth_data = cbor_bytes_fixture("cred-authdata.hex");
    let obj = AttestationObject::from_parts("apple", &auth_data, &none_att_stmt()).unwrap();
    assert_eq!(
        obj.verify(&[0; 32]),
        Err(AttestationError::UnsupportedFormat("apple".into()))
    );
    let no_at = AuthenticatorData::new([0; 32], AuthDataFlags::UP, 1).to_bytes();
    let obj = AttestationObject::from_parts("none", &no_at, &none_att_stmt()).unwrap();
    assert_eq!(
        obj.verify(&[0; 32]),
        Err(AttestationError::NoAttestedCredential)
    );
}

#[test]
fn attestation_object_cbor_errors_are_typed() {
    let missing = cbor::encode(&Value::map([("fmt", Value::from("none"))]));
    assert!(matches!(
        AttestationObject::from_cbor(&missing),
        Err(AttestationError::Cbor(CborError::MissingField { .. }))
    ));
    assert!(matches!(
        AttestationObject::from_cbor(&[0xa1]),
        Err(AttestationError::Cbor(_))
    ));
}

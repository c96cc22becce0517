//! libfido2's recorded authenticator data and attestation objects (packed, TPM) and
//! assertions, including tampered copies.

use super::*;

#[test]
fn fixture_cred_authdata_parses() {
    let bytes = cbor_bytes_fixture("cred-authdata.hex");
    let ad = AuthenticatorData::parse(&bytes).unwrap();
    assert_eq!(ad.rp_id_hash(), &rp_id_hash("localhost"));
    assert!(ad.flags().user_present());
    assert!(ad.flags().contains(AuthDataFlags::AT));
    let acd = ad.attested_credential().unwrap();
    assert_eq!(acd.aaguid().to_vec(), fixture_bytes("cred-aaguid.hex"));
    assert_eq!(acd.credential_id(), fixture_bytes("cred-id.hex").as_slice());
    let CoseKey::Ec2 { alg, x, y } = acd.public_key() else {
        panic!("expected an EC2 key, got {:?}", acd.public_key());
    };
    assert_eq!(*alg, ALG_ES256);
    assert_eq!([&x[..], &y[..]].concat(), fixture_bytes("cred-pubkey.hex"));
    assert_eq!(ad.to_bytes(), bytes);
}

#[test]
fn fixture_duplicate_cose_keys_are_rejected() {
    let bytes = cbor_bytes_fixture("cred-authdata_dupkeys.hex");
    let err = AuthenticatorData::parse(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            AuthDataError::PublicKey(CoseError::Cbor(
                CborError::DuplicateMapKey { .. } | CborError::UnsortedMapKeys { .. }
            ))
        ),
        "{err:?}"
    );
}

#[test]
fn fixture_unsorted_cose_keys_are_rejected() {
    let bytes = cbor_bytes_fixture("cred-authdata_unsorted_keys.hex");
    let err = AuthenticatorData::parse(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            AuthDataError::PublicKey(CoseError::Cbor(CborError::UnsortedMapKeys { .. }))
        ),
        "{err:?}"
    );
}

fn fixture_packed() -> AttestationObject {
    let auth_data = cbor_bytes_fixture("cred-authdata.hex");
    let stmt = packed_att_stmt(
        ALG_ES256,
        &fixture_bytes("cred-sig.hex"),
        Some(&[fixture_bytes("cred-x509.hex")]),
    );
    AttestationObject::from_parts("packed", &auth_data, &stmt).unwrap()
}

#[test]
fn fixture_packed_x5c_signature_verifies() {
    let obj = fixture_packed();
    let v = obj
        .verify_with(&cdh("cred-cdh.hex"), CertificatePolicy::SignatureOnly)
        .unwrap();
    assert_eq!(
        v.attestation_type,
        AttestationType::BasicOrAttCa {
            chain: vec![fixture_bytes("cred-x509.hex")]
        }
    );
    assert_eq!(v.aaguid, FIXTURE_AAGUID);
    assert_eq!(v.credential_id, fixture_bytes("cred-id.hex"));
    assert_eq!(v.fmt, "packed");
}

#[test]
fn fixture_u2f_era_certificate_fails_strict_leaf_checks() {
    // The Yubico test certificate is X.509 v1 without the attestation OU.
    let err = fixture_packed().verify(&cdh("cred-cdh.hex")).unwrap_err();
    assert!(
        matches!(&err, AttestationError::CertificateRequirement(r) if r.contains("V3")),
        "{err:?}"
    );
}

#[test]
fn fixture_packed_tampering_is_detected() {
    let auth_data = cbor_bytes_fixture("cred-authdata.hex");
    let sig = fixture_bytes("cred-sig.hex");
    let cert = fixture_bytes("cred-x509.hex");
    let good_cdh = cdh("cred-cdh.hex");

    let mut bad_cdh = good_cdh;
    bad_cdh[0] ^= 1;
    let obj = fixture_packed();
    assert!(matches!(
        obj.verify_with(&bad_cdh, CertificatePolicy::SignatureOnly),
        Err(AttestationError::Signature(CoseError::BadSignature))
    ));

    // Flip a bit in the signCount (still parseable authData).
    let mut flipped = auth_data.clone();
    flipped[36] ^= 0x01;
    let stmt = packed_att_stmt(ALG_ES256, &sig, Some(std::slice::from_ref(&cert)));
    let obj = AttestationObject::from_parts("packed", &flipped, &stmt).unwrap();
    assert!(matches!(
        obj.verify_with(&good_cdh, CertificatePolicy::SignatureOnly),
        Err(AttestationError::Signature(CoseError::BadSignature))
    ));

    // Change a byte inside the DER INTEGER r of the signature.
    let mut bad_sig = sig.clone();
    bad_sig[10] ^= 0x01;
    let stmt = packed_att_stmt(ALG_ES256, &bad_sig, Some(std::slice::from_ref(&cert)));
    let obj = AttestationObject::from_parts("packed", &auth_data, &stmt).unwrap();
    assert!(matches!(
        obj.verify_with(&good_cdh, CertificatePolicy::SignatureOnly),
        Err(AttestationError::Signature(CoseError::BadSignature))
    ));

    // The credential key did not make this signature: self attestation fails.
    let stmt = packed_att_stmt(ALG_ES256, &sig, None);
    let obj = AttestationObject::from_parts("packed", &auth_data, &stmt).unwrap();
    assert!(matches!(
        obj.verify(&good_cdh),
        Err(AttestationError::Signature(CoseError::BadSignature))
    ));
}

#[test]
fn fixture_attestation_object_cbor_round_trip() {
    let obj = fixture_packed();
    let bytes = obj.to_cbor();
    let back = AttestationObject::from_cbor(&bytes).unwrap();
    assert_eq!(back, obj);
    assert_eq!(
        back.auth_data_bytes(),
        cbor_bytes_fixture("cred-authdata.hex")
    );
}

#[test]
fn fixture_assertion_es256_verifies() {
    let auth_data = cbor_bytes_fixture("assert-authdata.hex");
    let pk = fixture_bytes("assert-es256_pk.hex");
    let key = CoseKey::Ec2 {
        alg: ALG_ES256,
        x: pk[..32].try_into().unwrap(),
        y: pk[32..].try_into().unwrap(),
    };
    let sig = fixture_bytes("assert-sig.hex");
    let cdh = cdh("assert-cdh.hex");
    let ad = verify_assertion(&key, &auth_data, &cdh, &sig).unwrap();
    assert_eq!(ad.rp_id_hash(), &rp_id_hash("localhost"));
    assert_eq!(ad.sign_count(), 3);
    assert!(ad.attested_credential().is_none());

    let mut wrong = cdh;
    wrong[31] ^= 0x80;
    assert_eq!(
        verify_assertion(&key, &auth_data, &wrong, &sig),
        Err(AttestationError::Signature(CoseError::BadSignature))
    );
    let mut flipped = auth_data.clone();
    flipped[0] ^= 1;
    assert_eq!(
        verify_assertion(&key, &flipped, &cdh, &sig),
        Err(AttestationError::Signature(CoseError::BadSignature))
    );
}

#[test]
fn fixture_rs256_key_does_not_verify_the_es256_signature() {
    // assert-rs256_pk is n (256 bytes) || e (3 bytes); the recorded signature is ES256,
    // so the RSA key must refuse it.
    let pk = fixture_bytes("assert-rs256_pk.hex");
    assert_eq!(pk.len(), 259);
    let key = CoseKey::Rsa {
        alg: ALG_RS256,
        n: pk[..256].to_vec(),
        e: pk[256..].to_vec(),
    };
    let err = verify_assertion(
        &key,
        &cbor_bytes_fixture("assert-authdata.hex"),
        &cdh("assert-cdh.hex"),
        &fixture_bytes("assert-sig.hex"),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            AttestationError::Signature(CoseError::BadSignature | CoseError::MalformedSignature(_))
        ),
        "{err:?}"
    );
}

/// libfido2's TPM tests pass `cred-cdh` as clientData, so the hash is SHA-256 of it.
fn tpm_cdh() -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(fixture_bytes("cred-cdh.hex")).into()
}

fn tpm_fixture(kind: &str) -> AttestationObject {
    let auth_data = cbor_bytes_fixture(&format!("cred-authdata_tpm_{kind}.hex"));
    let stmt = cbor::decode(&fixture_bytes(&format!("cred-attstmt_tpm_{kind}.hex"))).unwrap();
    AttestationObject::from_parts("tpm", &auth_data, &stmt).unwrap()
}

/// The statement with one member replaced.
fn tpm_with(kind: &str, key: &str, value: Value) -> AttestationObject {
    let obj = tpm_fixture(kind);
    let Value::Map(mut entries) = obj.att_stmt().clone() else {
        panic!("attStmt is a map")
    };
    for (k, v) in entries.iter_mut() {
        if *k == Value::from(key) {
            *v = value.clone();
        }
    }
    AttestationObject::from_parts("tpm", obj.auth_data_bytes(), &Value::Map(entries)).unwrap()
}

fn stmt_bytes(obj: &AttestationObject, key: &'static str) -> Vec<u8> {
    obj.att_stmt()
        .as_map("attStmt")
        .unwrap()
        .get_text(key)
        .unwrap()
        .as_bytes(key)
        .unwrap()
        .to_vec()
}

#[test]
fn fixture_tpm_es256_verifies() {
    let obj = tpm_fixture("es256");
    let v = obj.verify(&tpm_cdh()).unwrap();
    let AttestationType::BasicOrAttCa { chain } = &v.attestation_type else {
        panic!("{:?}", v.attestation_type)
    };
    assert_eq!(chain[0], fixture_bytes("cred-x509_0_tpm_es256.hex"));
    assert_eq!(chain[1], fixture_bytes("cred-x509_1_tpm_es256.hex"));
    assert_eq!(v.aaguid.to_vec(), fixture_bytes("cred-aaguid_tpm.hex"));
    assert_eq!(v.credential_id, fixture_bytes("cred-id_tpm_es256.hex"));
    let CoseKey::Ec2 { x, y, .. } = &v.public_key else {
        panic!("{:?}", v.public_key)
    };
    assert_eq!(
        [&x[..], &y[..]].concat(),
        fixture_bytes("cred-pubkey_tpm_es256.hex")
    );
}

#[test]
fn fixture_tpm_rs256_verifies() {
    let obj = tpm_fixture("rs256");
    let v = obj.verify(&tpm_cdh()).unwrap();
    assert_eq!(v.credential_id, fixture_bytes("cred-id_tpm_rs256.hex"));
    let CoseKey::Rsa { alg, n, e } = &v.public_key else {
        panic!("{:?}", v.public_key)
    };
    assert_eq!(*alg, ALG_RS256);
    assert_eq!(
        [&n[..], &e[..]].concat(),
        fixture_bytes("cred-pubkey_tpm_rs256.hex")
    );
}

#[test]
fn fixture_tpm_wrong_cdh_fails_extra_data() {
    for kind in ["es256", "rs256"] {
        let err = tpm_fixture(kind).verify(&cdh("cred-cdh.hex")).unwrap_err();
        assert!(
            matches!(err, AttestationError::TpmCheckFailed(m) if m.contains("extraData")),
            "{kind}: {err:?}"
        );
    }
}

#[test]
fn fixture_tpm_tampering_is_detected() {
    let obj = tpm_fixture("es256");
    let mut sig = stmt_bytes(&obj, "sig");
    sig[100] ^= 1;
    assert_eq!(
        tpm_with("es256", "sig", Value::from(sig)).verify(&tpm_cdh()),
        Err(AttestationError::Signature(CoseError::BadSignature))
    );

    // A different pubArea key than the credential's.
    let mut pub_area = stmt_bytes(&obj, "pubArea");
    let last = pub_area.len() - 1;
    pub_area[last] ^= 1;
    assert!(matches!(
        tpm_with("es256", "pubArea", Value::from(pub_area)).verify(&tpm_cdh()),
        Err(AttestationError::TpmCheckFailed(m)) if m.contains("pubArea key")
    ));

    // certInfo changed after signing: either the name or the signature check catches it.
    let mut cert_info = stmt_bytes(&obj, "certInfo");
    let last = cert_info.len() - 1;
    cert_info[last] ^= 1;
    assert_eq!(
        tpm_with("es256", "certInfo", Value::from(cert_info.clone())).verify(&tpm_cdh()),
        Err(AttestationError::Signature(CoseError::BadSignature))
    );
    cert_info.truncate(40);
    assert!(matches!(
        tpm_with("es256", "certInfo", Value::from(cert_info)).verify(&tpm_cdh()),
        Err(AttestationError::TpmMalformed {
            structure: "certInfo",
            ..
        })
    ));

    assert!(matches!(
        tpm_with("es256", "ver", Value::from("1.2")).verify(&tpm_cdh()),
        Err(AttestationError::TpmCheckFailed(_))
    ));

    // The ES256 statement does not belong to the RS256 credential.
    let rs = tpm_fixture("rs256");
    let mixed = AttestationObject::from_parts("tpm", rs.auth_data_bytes(), obj.att_stmt()).unwrap();
    assert!(matches!(
        mixed.verify(&tpm_cdh()),
        Err(AttestationError::TpmCheckFailed(m)) if m.contains("pubArea key")
    ));
}

#[test]
fn fixture_tpm_statement_is_not_packed() {
    let obj = tpm_fixture("es256");
    let as_packed =
        AttestationObject::from_parts("packed", obj.auth_data_bytes(), obj.att_stmt()).unwrap();
    assert!(as_packed.verify(&tpm_cdh()).is_err());
}

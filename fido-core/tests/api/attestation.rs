//! Integration tests: authenticator data, attestation, assertions, COSE signatures and
//! clientDataJSON, against recorded libfido2 data and self-made keys/certificates.

use super::support::{fixture_bytes, hex};
use fido_core::attestation::{
    fido_u2f_att_stmt, none_att_stmt, packed_att_stmt, signed_data, u2f_verification_data,
    verify_assertion, AttestationError, AttestationObject, AttestationType, CertificatePolicy,
};
use fido_core::authdata::{
    rp_id_hash, AttestedCredentialData, AuthDataError, AuthDataFlags, AuthenticatorData,
};
use fido_core::cbor::{self, CborError, Value};
use fido_core::cose::{CoseError, CoseKey, ALG_EDDSA, ALG_ES256, ALG_RS256};
use p256::ecdsa::{signature::Signer, Signature, SigningKey};
use proptest::prelude::*;

/// A P-256 key made for these tests with openssl, and two self-signed certificates for
/// it: a WebAuthn-conformant attestation leaf (v3, OU "Authenticator Attestation",
/// basicConstraints CA:FALSE, AAGUID extension f8a011f3-8c0a-4d15-8006-17111f9edc7d)
/// and the same subject with CA:TRUE.
const TEST_ATT_KEY: &str = "1650eca1cea80be36f503a76660b7034376eb8bb4fba87835074f5bf67d225eb";
const TEST_LEAF_CERT: &str = "30820230308201d6a00302010202142a2667ecbc1295bb5a78e9090bad2bd10f8f8a61300a06082a8648ce3d040302306d310b300906035504061302534531163014060355040a0c0d4b6579736d697468205465737431223020060355040b0c1941757468656e74696361746f72204174746573746174696f6e3122302006035504030c194b6579736d6974682054657374204174746573746174696f6e3020170d3236313132343233313434395a180f32313236313033313233313434395a306d310b300906035504061302534531163014060355040a0c0d4b6579736d697468205465737431223020060355040b0c1941757468656e74696361746f72204174746573746174696f6e3122302006035504030c194b6579736d6974682054657374204174746573746174696f6e3059301306072a8648ce3d020106082a8648ce3d0301070342000484af0e6d604b82602872cd7f88c5ee6da280f067124dba34b6c5e0445b838dc09825df5ee7a89bc48cee664893a0512aab86cad81d1b9914f8d09d31e8070dc7a3523050300c0603551d130101ff040230003021060b2b0601040182e51c01010404120410f8a011f38c0a4d15800617111f9edc7d301d0603551d0e04160414b8b7e668744d50f94a855930a3e4ef7c63cd07fa300a06082a8648ce3d04030203480030450220055ad21c2c9b8479313806fa38712f97b12bf1ef41a9cac63e793afb61f305540221009f650e0c7681d133599c25fb152b3063d9f770e616b2333cb2715c70a7a6d97c";
const TEST_CA_CERT: &str = "3082020f308201b6a003020102021431ab765e80caee007f3a4e6ce8246836558ece75300a06082a8648ce3d040302306d310b300906035504061302534531163014060355040a0c0d4b6579736d697468205465737431223020060355040b0c1941757468656e74696361746f72204174746573746174696f6e3122302006035504030c194b6579736d6974682054657374204174746573746174696f6e3020170d3236313132343233313434395a180f32313236313033313233313434395a306d310b300906035504061302534531163014060355040a0c0d4b6579736d697468205465737431223020060355040b0c1941757468656e74696361746f72204174746573746174696f6e3122302006035504030c194b6579736d6974682054657374204174746573746174696f6e3059301306072a8648ce3d020106082a8648ce3d0301070342000484af0e6d604b82602872cd7f88c5ee6da280f067124dba34b6c5e0445b838dc09825df5ee7a89bc48cee664893a0512aab86cad81d1b9914f8d09d31e8070dc7a3323030300f0603551d130101ff040530030101ff301d0603551d0e04160414b8b7e668744d50f94a855930a3e4ef7c63cd07fa300a06082a8648ce3d04030203470030440220621252b3a3ef42d06384eae6aea06b0d5f2236562cd05a88ac0a8c88c22f825702203c7e42b6a7defddf23276c3f11e0dfbe621707618c49202e4165ffd29108694c";
const FIXTURE_AAGUID: [u8; 16] = [
    0xf8, 0xa0, 0x11, 0xf3, 0x8c, 0x0a, 0x4d, 0x15, 0x80, 0x06, 0x17, 0x11, 0x1f, 0x9e, 0xdc, 0x7d,
];

/// A fixture that holds one CBOR byte string (authData as libfido2 stores it).
fn cbor_bytes_fixture(name: &str) -> Vec<u8> {
    match cbor::decode(&fixture_bytes(name)).unwrap() {
        Value::Bytes(b) => b,
        other => panic!("{name}: expected a byte string, found {other:?}"),
    }
}

fn cdh(name: &str) -> [u8; 32] {
    fixture_bytes(name).try_into().unwrap()
}

fn cose_es256(sk: &SigningKey) -> CoseKey {
    let p = sk.verifying_key().to_encoded_point(false);
    CoseKey::Ec2 {
        alg: ALG_ES256,
        x: p.x().unwrap().as_slice().try_into().unwrap(),
        y: p.y().unwrap().as_slice().try_into().unwrap(),
    }
}

fn sign_der(sk: &SigningKey, msg: &[u8]) -> Vec<u8> {
    let sig: Signature = sk.sign(msg);
    sig.to_der().as_bytes().to_vec()
}

fn att_key() -> SigningKey {
    SigningKey::from_slice(&hex(TEST_ATT_KEY)).unwrap()
}

/// authData for a new credential with the given key, for the RP `example.com`.
fn new_credential_auth_data(key: CoseKey, aaguid: [u8; 16]) -> Vec<u8> {
    let acd = AttestedCredentialData::new(aaguid, vec![0xc1; 32], key).unwrap();
    AuthenticatorData::new(
        rp_id_hash("example.com"),
        AuthDataFlags::UP | AuthDataFlags::UV,
        0,
    )
    .with_attested_credential(acd)
    .to_bytes()
}

// ---- libfido2 fixtures -------------------------------------------------------------

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

// ---- self-made keys and certificates ----------------------------------------------

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

// ---- robustness ---------------------------------------------------------------------

#[test]
fn truncated_fixture_authdata_never_panics() {
    let bytes = cbor_bytes_fixture("cred-authdata.hex");
    for n in 0..bytes.len() {
        assert!(AuthenticatorData::parse(&bytes[..n]).is_err(), "prefix {n}");
    }
}

fn arb_key() -> impl Strategy<Value = CoseKey> {
    prop_oneof![
        (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(x, y)| CoseKey::Ec2 {
            alg: ALG_ES256,
            x,
            y
        }),
        any::<[u8; 32]>().prop_map(|x| CoseKey::Okp { alg: ALG_EDDSA, x }),
        (
            proptest::collection::vec(any::<u8>(), 1..300),
            proptest::collection::vec(any::<u8>(), 1..4)
        )
            .prop_map(|(n, e)| CoseKey::Rsa {
                alg: ALG_RS256,
                n,
                e
            }),
    ]
}

proptest! {
    #[test]
    fn authdata_build_parse_round_trip(
        rp in any::<[u8; 32]>(),
        flags in any::<u8>(),
        count in any::<u32>(),
        cred in proptest::option::of((any::<[u8; 16]>(), proptest::collection::vec(any::<u8>(), 0..1024), arb_key())),
        cred_protect in proptest::option::of(1u8..=3),
        min_pin in proptest::option::of(any::<u32>()),
    ) {
        let mut ad = AuthenticatorData::new(rp, AuthDataFlags::from_bits(flags), count);
        if let Some((aaguid, id, key)) = cred {
            ad = ad.with_attested_credential(AttestedCredentialData::new(aaguid, id, key).unwrap());
        }
        let mut ext = Vec::new();
        if let Some(c) = cred_protect {
            ext.push((Value::from("credProtect"), Value::from(c)));
        }
        if let Some(m) = min_pin {
            ext.push((Value::from("minPinLength"), Value::from(m)));
        }
        if !ext.is_empty() {
            ad = ad.with_extensions(Value::Map(ext)).unwrap();
        }
        let bytes = ad.to_bytes();
        let parsed = AuthenticatorData::parse(&bytes).unwrap();
        prop_assert_eq!(parsed.to_bytes(), bytes);
        prop_assert_eq!(parsed.cred_protect(), cred_protect);
        prop_assert_eq!(parsed.min_pin_length(), min_pin);
        prop_assert_eq!(parsed.sign_count(), count);
        prop_assert_eq!(parsed.flags().unknown_bits(), flags & 0x22);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = AuthenticatorData::parse(&bytes);
        let _ = AttestationObject::from_cbor(&bytes);
        let _ = CoseKey::from_cbor_canonical(&bytes);
        let _ = fido_core::clientdata::CollectedClientData::parse(&bytes);
    }

    #[test]
    fn mutated_fixture_authdata_never_panics(pos in 0usize..198, byte in any::<u8>()) {
        let mut bytes = cbor_bytes_fixture("cred-authdata.hex");
        if let Some(b) = bytes.get_mut(pos) {
            *b = byte;
        }
        if let Ok(ad) = AuthenticatorData::parse(&bytes) {
            prop_assert_eq!(ad.to_bytes(), bytes);
        }
    }
}

// ---- clientDataJSON -----------------------------------------------------------------

mod client_data {
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
        let cd =
            CollectedClientData::parse(br#"{"type":"payment.get","challenge":"AA","origin":"x"}"#)
                .unwrap();
        assert_eq!(cd.type_, ClientDataType::Other("payment.get".into()));
        assert!(matches!(
            cd.verify(&ClientDataType::Get, &[0], &["x"]),
            Err(ClientDataError::WrongType { .. })
        ));
    }
}

// ---- COSE signatures ----------------------------------------------------------------

/// An RSA-2048 key made with openssl for this test, and its RS256 signature over
/// "keysmith rs256 test".
const TEST_RSA_N: &str = "8fee6f9d9fb2400bc9e78534599cdb84a80418f6e47486a9c10d0711ff5ee3fb1e6aa3746966517afba47393c0861521a318c3d2de771ab5e2477e742a8583c8c7edcba63d64460bc7114febe007cd247e29fac9f4f9d955c82f85f09ec282c2ae2fc869d57927d23fd4a5b43331a0ad960b81bddd6cdea3d6e6c0d86fb2535b9883cd4b1ce9def73ecf97a2987b4077aa7abfa148ec99d99509bb7fd90c026dc7e2493b643240438b77c88423ac9559ad891b98ed6261282487b3012ce4e54d870490d78cd8582d30ca4a09c43f1403264ae607e3ba6a949e6decee20e7fff613225fe46fa49522938417183d032d9c44f2c2f855c8a02d38478c01f43dc117";
const TEST_RSA_SIG: &str = "1105421a0bcbf15d326c18d9c8ae17d85846fd7aab53a5be75c89b8dd99f68348ef4c1b218c2847aefcca77deaec59601c1ce8d6941a44837718a7cfbefe94802a96708fc86740ce4382a93d7b06f144a068bbbcc783582ce9e4219889bcc1e2ba4107283a29b2cd40d67fe2f94b1fd6da9a8c7292bab9f6dc9ed67698b8ae03122e423afe3f32713ddb954d94d044929220d760921b240729c17a5aa988e9eac99cd9f0e120fc0ebd3557eaf1adca25ffb98fd84ac01b8f5c8dc09e7afb6abba063837694e06f12b31b5c694af8110e700083b0725803dfbcc9a4f9a04502f831a4626a60a6c7d121ed88e3009504494f9137cc9b6e1c151a62aa6873b890e1";

#[test]
fn rs256_signature_verifies_and_tampering_fails() {
    let key = CoseKey::Rsa {
        alg: ALG_RS256,
        n: hex(TEST_RSA_N),
        e: vec![1, 0, 1],
    };
    let sig = hex(TEST_RSA_SIG);
    key.verify(b"keysmith rs256 test", &sig).unwrap();
    assert_eq!(
        key.verify(b"keysmith rs256 tesT", &sig),
        Err(CoseError::BadSignature)
    );
    let mut bad = sig.clone();
    bad[0] ^= 1;
    assert_eq!(
        key.verify(b"keysmith rs256 test", &bad),
        Err(CoseError::BadSignature)
    );
    // The same key labelled with another algorithm is refused, not reinterpreted.
    let wrong = CoseKey::Rsa {
        alg: ALG_ES256,
        n: hex(TEST_RSA_N),
        e: vec![1, 0, 1],
    };
    assert_eq!(
        wrong.verify(b"keysmith rs256 test", &sig),
        Err(CoseError::UnsupportedAlgorithm(ALG_ES256))
    );
}

#[test]
fn cose_key_from_canonical_cbor_fixture_bytes() {
    // The credential key inside cred-authdata starts after 37 + 16 + 2 + 64 bytes.
    let ad = cbor_bytes_fixture("cred-authdata.hex");
    let key_bytes = &ad[37 + 16 + 2 + 64..];
    let key = CoseKey::from_cbor_canonical(key_bytes).unwrap();
    assert_eq!(key.to_cbor(), key_bytes);
    let dup = cbor_bytes_fixture("cred-authdata_dupkeys.hex");
    assert!(CoseKey::from_cbor_canonical(&dup[37 + 16 + 2 + 64..]).is_err());
}

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

mod client_data;
mod recorded;
mod self_made;

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

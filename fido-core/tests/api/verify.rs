//! Every signature backend compiled into this build (`verify-ring`, `verify-rustcrypto`;
//! `cargo test -p fido-core --all-features` has both) against the same vectors: Wycheproof
//! (ECDSA P-256 SHA-256, RSA PKCS#1 v1.5 and PSS SHA-256 2048-bit, Ed25519; the files and
//! their origin are in `tests/wycheproof/`) and the libfido2 recordings (packed and tpm
//! attestation, an ES256 assertion). Each backend must give the expected answer, and all
//! backends must give the same `Result`, error kind included.

use std::path::PathBuf;

use fido_core::attestation::{
    packed_att_stmt, verify_assertion_using, AttestationError, AttestationObject, CertificatePolicy,
};
use fido_core::cbor::{self, Value};
use fido_core::cose::{CoseError, CoseKey, ALG_ES256, ALG_PS256, ALG_RS256};
use fido_core::verify::{
    compiled_verifiers, default_verifier, verify_signature, PublicKeyRef, SignatureAlgorithm,
    SignatureVerifier, VerifyError,
};
use serde_json::Value as Json;

use super::support::{fixture_bytes, hex};

fn wycheproof(name: &str) -> Json {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/wycheproof")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("vector file")).expect("JSON")
}

fn field<'a>(v: &'a Json, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string"))
}

/// How many vectors of each expected result a file held, and the `acceptable` ones'
/// answers (the same from every backend, asserted).
#[derive(Debug, Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable_accepted: usize,
    acceptable_rejected: usize,
}

/// Runs every test of every group through each backend.
fn run_file(
    name: &str,
    alg: SignatureAlgorithm,
    key_of: impl Fn(&Json) -> (Vec<u8>, Vec<u8>),
    as_key: impl for<'a> Fn(&'a [u8], &'a [u8]) -> PublicKeyRef<'a>,
) -> Tally {
    let verifiers = compiled_verifiers();
    assert!(!verifiers.is_empty());
    let file = wycheproof(name);
    let mut tally = Tally::default();
    for group in file["testGroups"].as_array().expect("groups") {
        let (a, b) = key_of(group);
        let key = as_key(&a, &b);
        for test in group["tests"].as_array().expect("tests") {
            let id = &test["tcId"];
            let msg = hex(field(test, "msg"));
            let sig = hex(field(test, "sig"));
            let results: Vec<Result<(), VerifyError>> = verifiers
                .iter()
                .map(|v| verify_signature(*v, alg, key, &msg, &sig))
                .collect();
            for (v, r) in verifiers.iter().zip(&results) {
                assert_eq!(
                    r,
                    &results[0],
                    "{name} tcId {id}: {} and {} disagree",
                    v.name(),
                    verifiers[0].name()
                );
            }
            match field(test, "result") {
                "valid" => {
                    assert_eq!(results[0], Ok(()), "{name} tcId {id} ({})", test["comment"]);
                    tally.valid += 1;
                }
                "invalid" => {
                    assert!(
                        results[0].is_err(),
                        "{name} tcId {id} ({})",
                        test["comment"]
                    );
                    tally.invalid += 1;
                }
                "acceptable" if results[0].is_ok() => tally.acceptable_accepted += 1,
                "acceptable" => tally.acceptable_rejected += 1,
                other => panic!("{name} tcId {id}: result {other}"),
            }
        }
    }
    tally
}

fn p256_key(group: &Json) -> (Vec<u8>, Vec<u8>) {
    let sec1 = hex(field(&group["publicKey"], "uncompressed"));
    assert_eq!((sec1.len(), sec1[0]), (65, 4));
    (sec1[1..33].to_vec(), sec1[33..].to_vec())
}

fn as_p256<'a>(x: &'a [u8], y: &'a [u8]) -> PublicKeyRef<'a> {
    PublicKeyRef::P256 {
        x: x.try_into().expect("32 bytes"),
        y: y.try_into().expect("32 bytes"),
    }
}

fn p384_key(group: &Json) -> (Vec<u8>, Vec<u8>) {
    let sec1 = hex(field(&group["publicKey"], "uncompressed"));
    assert_eq!((sec1.len(), sec1[0]), (97, 4));
    (sec1[1..49].to_vec(), sec1[49..].to_vec())
}

fn as_p384<'a>(x: &'a [u8], y: &'a [u8]) -> PublicKeyRef<'a> {
    PublicKeyRef::P384 {
        x: x.try_into().expect("48 bytes"),
        y: y.try_into().expect("48 bytes"),
    }
}

fn rsa_key(group: &Json) -> (Vec<u8>, Vec<u8>) {
    let pk = &group["publicKey"];
    (hex(field(pk, "modulus")), hex(field(pk, "publicExponent")))
}

fn as_rsa<'a>(n: &'a [u8], e: &'a [u8]) -> PublicKeyRef<'a> {
    PublicKeyRef::Rsa { n, e }
}

#[test]
fn wycheproof_ecdsa_p256_sha256() {
    let t = run_file(
        "ecdsa_secp256r1_sha256_test.json",
        SignatureAlgorithm::Es256,
        p256_key,
        as_p256,
    );
    assert_eq!((t.valid, t.invalid), (174, 310), "{t:?}");
}

#[test]
fn wycheproof_ecdsa_p384_sha384() {
    let t = run_file(
        "ecdsa_secp384r1_sha384_test.json",
        SignatureAlgorithm::Es384,
        p384_key,
        as_p384,
    );
    assert_eq!((t.valid, t.invalid), (194, 310), "{t:?}");
}

/// ES384 through a COSE key (kty 2, crv 2, alg -35): verifies, survives canonical CBOR,
/// refuses a tampered message and an ES256 `alg` on a P-384 key.
#[test]
fn cose_es384_key_verifies_and_round_trips() {
    use p384::ecdsa::{signature::Signer, Signature, SigningKey};
    let sk = SigningKey::from_slice(&[9u8; 48]).unwrap();
    let point = sk.verifying_key().to_encoded_point(false);
    let key = CoseKey::Ec2P384 {
        alg: fido_core::cose::ALG_ES384,
        x: point.x().unwrap().as_slice().try_into().unwrap(),
        y: point.y().unwrap().as_slice().try_into().unwrap(),
    };
    let back = CoseKey::from_cbor_canonical(&key.to_cbor()).unwrap();
    assert_eq!(back, key);
    let sig: Signature = sk.sign(b"authData || clientDataHash");
    let der = sig.to_der();
    for v in compiled_verifiers() {
        key.verify_using(v, b"authData || clientDataHash", der.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", v.name()));
        assert_eq!(
            key.verify_using(v, b"authData || clientDataHasH", der.as_bytes()),
            Err(CoseError::BadSignature),
            "{}",
            v.name()
        );
    }
    let wrong = CoseKey::Ec2P384 {
        alg: ALG_ES256,
        x: point.x().unwrap().as_slice().try_into().unwrap(),
        y: point.y().unwrap().as_slice().try_into().unwrap(),
    };
    assert_eq!(
        wrong.verify(b"authData || clientDataHash", der.as_bytes()),
        Err(CoseError::UnsupportedAlgorithm(ALG_ES256))
    );
}

#[test]
fn wycheproof_rsa_pkcs1_2048_sha256() {
    let t = run_file(
        "rsa_signature_2048_sha256_test.json",
        SignatureAlgorithm::Rs256,
        rsa_key,
        as_rsa,
    );
    assert_eq!((t.valid, t.invalid), (9, 249), "{t:?}");
    // tcId 8 ("Missing NULL in the ASN encoding") is acceptable to Wycheproof; every
    // backend here rejects it (asserted equal above).
    assert_eq!(
        (t.acceptable_accepted, t.acceptable_rejected),
        (0, 1),
        "{t:?}"
    );
}

#[test]
fn wycheproof_rsa_pss_2048_sha256_salt32() {
    let t = run_file(
        "rsa_pss_2048_sha256_mgf1_32_test.json",
        SignatureAlgorithm::Ps256,
        rsa_key,
        as_rsa,
    );
    assert_eq!((t.valid, t.invalid), (63, 45), "{t:?}");
}

#[test]
fn wycheproof_ed25519() {
    let t = run_file(
        "ed25519_test.json",
        SignatureAlgorithm::EdDsa,
        |group| (hex(field(&group["publicKey"], "pk")), Vec::new()),
        |pk, _| PublicKeyRef::Ed25519(pk.try_into().expect("32 bytes")),
    );
    assert_eq!((t.valid, t.invalid), (88, 63), "{t:?}");
}

/// A high-S ECDSA signature (s replaced by n − s) verifies with every backend: neither
/// enforces low S (documented in `fido_core::verify`).
#[test]
fn high_s_is_accepted_by_every_backend() {
    use p256::ecdsa::{signature::Signer, Signature, SigningKey};
    use p256::elliptic_curve::ops::Neg;
    let sk = SigningKey::from_slice(&[3; 32]).unwrap();
    let sig: Signature = sk.sign(b"high s");
    let (r, s) = sig.split_scalars();
    let high = Signature::from_scalars(r, s.as_ref().neg()).unwrap();
    assert!(high.normalize_s().is_some(), "the twin is high-S");
    let point = sk.verifying_key().to_encoded_point(false);
    let (x, y) = (point.x().unwrap().to_vec(), point.y().unwrap().to_vec());
    for v in compiled_verifiers() {
        for s in [sig, high] {
            let der = s.to_der();
            verify_signature(
                v,
                SignatureAlgorithm::Es256,
                as_p256(&x, &y),
                b"high s",
                der.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", v.name()));
        }
    }
}

#[test]
fn default_backend_is_ring_when_compiled_in() {
    let expected = if cfg!(feature = "verify-ring") {
        "ring"
    } else {
        "rustcrypto"
    };
    assert_eq!(default_verifier().name(), expected);
}

fn cbor_bytes_fixture(name: &str) -> Vec<u8> {
    match cbor::decode(&fixture_bytes(name)).unwrap() {
        Value::Bytes(b) => b,
        other => panic!("{name}: expected a byte string, found {other:?}"),
    }
}

fn cdh(name: &str) -> [u8; 32] {
    fixture_bytes(name).try_into().unwrap()
}

/// The libfido2 recordings (a YubiKey's packed attestation and ES256 assertion, and the
/// tpm ES256/RS256 statements) verify with every backend, and tampering is refused alike.
#[test]
fn libfido2_recordings_with_every_backend() {
    let packed = AttestationObject::from_parts(
        "packed",
        &cbor_bytes_fixture("cred-authdata.hex"),
        &packed_att_stmt(
            ALG_ES256,
            &fixture_bytes("cred-sig.hex"),
            Some(&[fixture_bytes("cred-x509.hex")]),
        ),
    )
    .unwrap();
    let tpm_cdh: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(fixture_bytes("cred-cdh.hex")).into()
    };
    let tpm = |kind: &str| {
        let stmt = cbor::decode(&fixture_bytes(&format!("cred-attstmt_tpm_{kind}.hex"))).unwrap();
        AttestationObject::from_parts(
            "tpm",
            &cbor_bytes_fixture(&format!("cred-authdata_tpm_{kind}.hex")),
            &stmt,
        )
        .unwrap()
    };
    let pk = fixture_bytes("assert-es256_pk.hex");
    let key = CoseKey::Ec2 {
        alg: ALG_ES256,
        x: pk[..32].try_into().unwrap(),
        y: pk[32..].try_into().unwrap(),
    };
    let auth_data = cbor_bytes_fixture("assert-authdata.hex");
    let sig = fixture_bytes("assert-sig.hex");
    let acdh = cdh("assert-cdh.hex");
    let mut wrong = acdh;
    wrong[0] ^= 1;

    let verifiers = compiled_verifiers();
    for v in &verifiers {
        let v: &dyn SignatureVerifier = *v;
        let name = v.name();
        let good = cdh("cred-cdh.hex");
        packed
            .verify_using(&good, CertificatePolicy::SignatureOnly, v)
            .unwrap_or_else(|e| panic!("{name}: packed: {e}"));
        assert_eq!(
            packed.verify_using(&wrong, CertificatePolicy::SignatureOnly, v),
            Err(AttestationError::Signature(CoseError::BadSignature)),
            "{name}"
        );
        for kind in ["es256", "rs256"] {
            tpm(kind)
                .verify_using(&tpm_cdh, CertificatePolicy::Strict, v)
                .unwrap_or_else(|e| panic!("{name}: tpm {kind}: {e}"));
        }
        verify_assertion_using(v, &key, &auth_data, &acdh, &sig)
            .unwrap_or_else(|e| panic!("{name}: assertion: {e}"));
        assert_eq!(
            verify_assertion_using(v, &key, &auth_data, &wrong, &sig),
            Err(AttestationError::Signature(CoseError::BadSignature)),
            "{name}"
        );
        assert!(matches!(
            verify_assertion_using(v, &key, &auth_data, &acdh, &sig[..sig.len() - 1]),
            Err(AttestationError::Signature(CoseError::MalformedSignature(
                _
            )))
        ));
    }
}

/// A COSE PS256 key (new in this crate) verifies a PSS signature; the same key labelled
/// RS256 refuses it.
#[test]
fn cose_ps256_key_verifies_pss() {
    let file = wycheproof("rsa_pss_2048_sha256_mgf1_32_test.json");
    let group = &file["testGroups"][0];
    let test = &group["tests"][0];
    assert_eq!(field(test, "result"), "valid");
    let (n, e) = rsa_key(group);
    let (msg, sig) = (hex(field(test, "msg")), hex(field(test, "sig")));
    let ps256 = CoseKey::Rsa {
        alg: ALG_PS256,
        n: n.clone(),
        e: e.clone(),
    };
    let rs256 = CoseKey::Rsa {
        alg: ALG_RS256,
        n,
        e,
    };
    for v in compiled_verifiers() {
        ps256
            .verify_using(v, &msg, &sig)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name()));
        assert_eq!(
            rs256.verify_using(v, &msg, &sig),
            Err(CoseError::BadSignature),
            "{}",
            v.name()
        );
    }
    ps256.verify(&msg, &sig).unwrap();
}

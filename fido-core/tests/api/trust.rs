//! The attestation trust store (feature `trust`): MDS3 BLOBs made by the test (root,
//! signer, entries) and packed attestations under test CAs, plus the real Windows Hello
//! TPM chain under Microsoft's real TPM root.

use super::support::fixture_bytes;
use fido_core::attestation::{packed_att_stmt, signed_data, AttestationError, AttestationObject};
use fido_core::authdata::{AttestedCredentialData, AuthDataFlags, AuthenticatorData};
use fido_core::cbor;
use fido_core::cose::{CoseKey, ALG_ES256};
use fido_core::trust::{MdsBlob, MdsError, TrustError, TrustSource, TrustStore};
use p256::ecdsa::{signature::Signer, Signature, SigningKey};

#[path = "../../../tests/testkit/src/mds.rs"]
#[allow(dead_code)]
mod pki;
use pki::{Cert, Entry, Mds, Spec};

/// 2026-06-01T00:00:00Z: inside every test certificate and the TPM fixture leaf.
const NOW: u64 = 1_780_272_000;
const AAGUID: [u8; 16] = *b"attest-test-aagu";
const CDH: [u8; 32] = [7; 32];

/// A packed attestation signed by `leaf`, with `chain` as x5c and `aaguid` in authData.
fn packed(leaf: &Cert, chain: &[Vec<u8>], aaguid: [u8; 16]) -> AttestationObject {
    let cred = SigningKey::from_slice(&[3; 32]).unwrap();
    let p = cred.verifying_key().to_encoded_point(false);
    let key = CoseKey::Ec2 {
        alg: ALG_ES256,
        x: p.x().unwrap().as_slice().try_into().unwrap(),
        y: p.y().unwrap().as_slice().try_into().unwrap(),
    };
    let acd = AttestedCredentialData::new(aaguid, vec![1; 16], key).unwrap();
    let ad = AuthenticatorData::new([4; 32], AuthDataFlags::UP.with(AuthDataFlags::UV, true), 1)
        .with_attested_credential(acd)
        .to_bytes();
    let signer = SigningKey::from_slice(&leaf.p256_scalar()).unwrap();
    let sig: Signature = signer.sign(&signed_data(&ad, &CDH));
    let stmt = packed_att_stmt(ALG_ES256, sig.to_der().as_bytes(), Some(chain));
    AttestationObject::from_parts("packed", &ad, &stmt).unwrap()
}

struct Model {
    ca: Cert,
    leaf: Cert,
}

/// An attestation CA and a leaf under it for `aaguid`.
fn model(aaguid: [u8; 16]) -> Model {
    let ca = Cert::self_signed(&Spec::ca("Test Vendor Attestation Root"));
    let leaf = ca.issue(&Spec::attestation(aaguid));
    Model { ca, leaf }
}

fn store_for(mds: &Mds, entries: &[Entry]) -> TrustStore {
    let blob = MdsBlob::verify(&mds.blob(entries), &[mds.root.der()], NOW).unwrap();
    TrustStore::new(Some(blob), vec![]).unwrap()
}

#[test]
fn mds_good_key_passes() {
    let mds = Mds::new();
    let m = model(AAGUID);
    let store = store_for(&mds, &[Entry::new(AAGUID, vec![m.ca.der()])]);
    assert!(store.knows(&AAGUID));
    let att = packed(&m.leaf, &[m.leaf.der()], AAGUID);
    let t = store.verify(&att, &CDH, NOW).unwrap();
    assert_eq!(t.source, TrustSource::Mds);
    assert_eq!(t.aaguid, AAGUID);
    assert_eq!(t.description.as_deref(), Some("test authenticator"));
}

#[test]
fn mds_rs256_blob_with_intermediate_passes() {
    let mds = Mds::new_rsa();
    let m = model(AAGUID);
    let inter = m.ca.issue(&Spec::ca("Test Vendor Intermediate"));
    let leaf = inter.issue(&Spec::attestation(AAGUID));
    let store = store_for(&mds, &[Entry::new(AAGUID, vec![m.ca.der()])]);
    let att = packed(&leaf, &[leaf.der(), inter.der()], AAGUID);
    assert_eq!(
        store.verify(&att, &CDH, NOW).unwrap().source,
        TrustSource::Mds
    );
}

#[test]
fn mds_aaguid_not_in_blob_refused() {
    let mds = Mds::new();
    let m = model(AAGUID);
    let store = store_for(&mds, &[Entry::new(*b"some-other-model", vec![m.ca.der()])]);
    assert!(!store.knows(&AAGUID));
    let att = packed(&m.leaf, &[m.leaf.der()], AAGUID);
    let err = store.verify(&att, &CDH, NOW).unwrap_err();
    assert!(matches!(err, TrustError::UnknownModel { .. }), "{err:?}");
}

#[test]
fn mds_blob_signed_by_wrong_root_refused() {
    let mds = Mds::new();
    let other = Mds::new();
    let m = model(AAGUID);
    let blob = mds.blob(&[Entry::new(AAGUID, vec![m.ca.der()])]);
    let err = MdsBlob::verify(&blob, &[other.root.der()], NOW).unwrap_err();
    assert!(matches!(err, MdsError::Untrusted(_)), "{err:?}");
}

#[test]
fn mds_blob_tampered_payload_refused() {
    let mds = Mds::new();
    let m = model(AAGUID);
    let blob = String::from_utf8(mds.blob(&[Entry::new(AAGUID, vec![m.ca.der()])])).unwrap();
    let parts: Vec<&str> = blob.split('.').collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["no"] = serde_json::json!(8);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    let err = MdsBlob::verify(forged.as_bytes(), &[mds.root.der()], NOW).unwrap_err();
    assert!(matches!(err, MdsError::Signature(_)), "{err:?}");
}

#[test]
fn mds_stale_blob_refused() {
    let mds = Mds::new();
    let blob = mds.blob_with(&[], "2026-05-31");
    let err = MdsBlob::verify(&blob, &[mds.root.der()], NOW).unwrap_err();
    assert!(matches!(err, MdsError::Stale { no: 7, .. }), "{err:?}");
}

#[test]
fn mds_expired_attestation_cert_refused() {
    let mds = Mds::new();
    let m = model(AAGUID);
    let leaf = m.ca.issue(&Spec {
        not_after: 1_735_689_600, // 2025-01-01
        ..Spec::attestation(AAGUID)
    });
    let store = store_for(&mds, &[Entry::new(AAGUID, vec![m.ca.der()])]);
    let att = packed(&leaf, &[leaf.der()], AAGUID);
    let err = store.verify(&att, &CDH, NOW).unwrap_err();
    assert!(
        matches!(&err, TrustError::ChainInvalid { reason } if reason.contains("expired")),
        "{err:?}"
    );
}

#[test]
fn mds_chain_to_another_vendor_root_refused() {
    let mds = Mds::new();
    let m = model(AAGUID);
    let impostor = model(AAGUID);
    let store = store_for(&mds, &[Entry::new(AAGUID, vec![m.ca.der()])]);
    let att = packed(&impostor.leaf, &[impostor.leaf.der()], AAGUID);
    let err = store.verify(&att, &CDH, NOW).unwrap_err();
    assert!(matches!(err, TrustError::ChainInvalid { .. }), "{err:?}");
}

#[test]
fn mds_aaguid_extension_mismatch_refused() {
    let mds = Mds::new();
    let m = model(AAGUID);
    let leaf = m.ca.issue(&Spec::attestation(*b"a-different-one!"));
    let store = store_for(&mds, &[Entry::new(AAGUID, vec![m.ca.der()])]);
    let att = packed(&leaf, &[leaf.der()], AAGUID);
    let err = store.verify(&att, &CDH, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            TrustError::Statement(AttestationError::AaguidMismatch { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn mds_compromised_model_refused() {
    let mds = Mds::new();
    let m = model(AAGUID);
    let mut e = Entry::new(AAGUID, vec![m.ca.der()]);
    e.status = Some("ATTESTATION_KEY_COMPROMISE");
    let store = store_for(&mds, &[e]);
    assert!(!store.knows(&AAGUID));
    let att = packed(&m.leaf, &[m.leaf.der()], AAGUID);
    let err = store.verify(&att, &CDH, NOW).unwrap_err();
    assert!(matches!(err, TrustError::Compromised { .. }), "{err:?}");
}

#[test]
fn self_attestation_is_not_attested() {
    let m = model(AAGUID);
    let att = packed(&m.leaf, &[m.leaf.der()], AAGUID);
    // Strip x5c: a packed statement signed by... anything without a chain is refused
    // before any signature question arises for `none`.
    let none = AttestationObject::from_parts(
        "none",
        att.auth_data_bytes(),
        &fido_core::attestation::none_att_stmt(),
    )
    .unwrap();
    let store = TrustStore::new(None, vec![m.ca.der()]).unwrap();
    let err = store.verify(&none, &CDH, NOW).unwrap_err();
    assert!(matches!(err, TrustError::NotAttested { .. }), "{err:?}");
}

#[test]
fn extra_pem_root_without_mds() {
    let m = model(AAGUID);
    let roots = fido_core::trust::pem_certificates(&m.ca.pem()).unwrap();
    let store = TrustStore::new(None, roots).unwrap();
    assert!(store.knows(&AAGUID));
    let att = packed(&m.leaf, &[m.leaf.der()], AAGUID);
    let t = store.verify(&att, &CDH, NOW).unwrap();
    assert_eq!(t.source, TrustSource::ExtraRoot);
    assert!(fido_core::trust::pem_certificates(b"not pem").is_err());
}

/// libfido2's recorded Windows Hello TPM attestation (ES256 credential), whose AIK chain
/// ends at Microsoft's real TPM root (fixtures/roots).
fn windows_hello() -> (AttestationObject, [u8; 32]) {
    use sha2::Digest;
    let ad = match cbor::decode(&fixture_bytes("cred-authdata_tpm_es256.hex")).unwrap() {
        cbor::Value::Bytes(b) => b,
        other => panic!("authData: {other:?}"),
    };
    let stmt = cbor::decode(&fixture_bytes("cred-attstmt_tpm_es256.hex")).unwrap();
    let cdh = sha2::Sha256::digest(fixture_bytes("cred-cdh.hex")).into();
    (
        AttestationObject::from_parts("tpm", &ad, &stmt).unwrap(),
        cdh,
    )
}

fn microsoft_tpm_root() -> Vec<u8> {
    std::fs::read(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/roots/microsoft-tpm-root-ca-2014.der"),
    )
    .unwrap()
}

#[test]
fn windows_hello_tpm_chain_verifies_against_its_real_root() {
    let (att, cdh) = windows_hello();
    let aaguid: [u8; 16] = fixture_bytes("cred-aaguid_tpm.hex").try_into().unwrap();
    // Through an MDS entry listing Microsoft's root for the Windows Hello AAGUID...
    let mds = Mds::new();
    let store = store_for(&mds, &[Entry::new(aaguid, vec![microsoft_tpm_root()])]);
    let t = store.verify(&att, &cdh, NOW).unwrap();
    assert_eq!(t.source, TrustSource::Mds);
    assert_eq!(t.fmt, "tpm");
    assert_eq!(t.chain.len(), 2);
    // ...and as an extra root.
    let store = TrustStore::new(None, vec![microsoft_tpm_root()]).unwrap();
    assert_eq!(
        store.verify(&att, &cdh, NOW).unwrap().source,
        TrustSource::ExtraRoot
    );
    // Not under another root, and not after the AIK certificate expired (2027-06-03).
    let other = model(aaguid);
    let store = TrustStore::new(None, vec![other.ca.der()]).unwrap();
    assert!(matches!(
        store.verify(&att, &cdh, NOW),
        Err(TrustError::ChainInvalid { .. })
    ));
    let store = TrustStore::new(None, vec![microsoft_tpm_root()]).unwrap();
    assert!(matches!(
        store.verify(&att, &cdh, 1_830_000_000),
        Err(TrustError::ChainInvalid { .. })
    ));
}

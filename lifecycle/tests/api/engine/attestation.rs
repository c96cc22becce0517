//! Attestation at issuance (issue 10 item 11): right after makeCredential the engine
//! checks the attestation against a trust store built from an MDS BLOB the test makes
//! (root, signer, entries; the software key's attestation certificate as the model's
//! root), and the emulator enforces attestation against the same BLOB as Entra does.
//! Software keys are recorded as transport `software` (item 12).

use fido_core::trust::{MdsBlob, TrustStore};
use keysmith_testkit::mds::{Entry, Mds};
use keysmith_testkit::{EmulatorWorld, KIM, KIM_ID, STANDARD_TEMPLATE};
use lifecycle::template::AttestationRequirement;

use super::*;

/// A software key and its attestation certificate (self-signed: its own root).
fn soft() -> (Authenticator<SoftTransport>, Vec<u8>, [u8; 16]) {
    let config = SoftConfig::default();
    let aaguid = config.aaguid;
    let s = SoftAuthenticator::new(config).expect("softkey");
    let cert = s.attestation_certificate().to_vec();
    (Authenticator::new(SoftTransport::new(s)), cert, aaguid)
}

/// A trust store from a BLOB made by `mds` listing `entries`.
fn trust(mds: &Mds, entries: &[Entry]) -> TrustStore {
    let blob = MdsBlob::verify(&mds.blob(entries), &[mds.root.der()], now_ms() / 1000)
        .expect("the test BLOB verifies");
    TrustStore::new(Some(blob), vec![]).expect("trust store")
}

struct Setup {
    w: EmulatorWorld,
    engine: Engine,
    name: String,
}

fn setup(name: &str, enforce: bool, store: TrustStore, req: AttestationRequirement) -> Setup {
    let w = EmulatorWorld::start(name);
    if enforce {
        let mut p = w.emulator.policy();
        p.set_attestation_enforced(true);
        w.emulator.set_policy(p);
    }
    let engine = sqlite_engine_builder(&w.emulator, &w.dir.join("keysmith.db"), "station-a", 7)
        .trust_store(store)
        .build()
        .expect("engine");
    let mut t = TemplateSet::from_toml_str(STANDARD_TEMPLATE).expect("template");
    for p in t.passkey.values_mut() {
        p.attestation = req;
    }
    let name = t.credential.name.clone();
    engine.add_template(t).expect("template loads");
    Setup { w, engine, name }
}

fn software_request(serial: &str) -> IssueRequest {
    IssueRequest {
        actor: "operator:alice".into(),
        user: KIM.into(),
        serial: serial.into(),
        transport: KeyTransport::Software,
        can_reset_in_place: true,
    }
}

fn audit_detail(engine: &Engine, key_id: &str, action: &str) -> Vec<(String, String)> {
    engine
        .audit_for(key_id)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == action)
        .map(|r| (r.event.outcome, r.event.detail.unwrap_or_default()))
        .collect()
}

#[test]
fn attestation_good_key_in_mds_passes_with_tenant_enforcement() {
    let mds = Mds::new();
    let (mut key, cert, aaguid) = soft();
    let entries = [Entry::new(aaguid, vec![cert])];
    let s = setup(
        "att-good",
        true,
        trust(&mds, &entries),
        AttestationRequirement::Tenant,
    );
    s.w.emulator
        .set_attestation_metadata(Some(trust(&mds, &entries)));
    let k = s
        .engine
        .issue(&software_request("A1"), &s.name, &mut key, now_ms())
        .expect("a key listed in MDS is issued");
    let k = s
        .engine
        .activate("operator:alice", &k.key_id, HOLDER_PIN, &mut key, now_ms())
        .expect("and registered at the tenant that enforces attestation");
    assert_eq!(k.state, CredentialState::Active);
    assert_eq!(s.w.emulator.methods(KIM_ID).len(), 1);
    // Issue 13 item 1: in MDS and passing the checks, so Entra says attested.
    assert_eq!(
        s.w.emulator.methods(KIM_ID)[0].attestation_level,
        Some(entra_graph::wire::AttestationLevel::Attested)
    );
    let att = audit_detail(&s.engine, &k.key_id, "attestation");
    assert_eq!(att.len(), 1, "{att:?}");
    assert_eq!(att[0].0, "verified");
    assert!(att[0].1.contains("mds=true"), "{att:?}");
    // Item 12: the software key is recorded as transport software, never usb.
    let dev = audit_detail(&s.engine, &k.key_id, "device");
    assert_eq!(dev, vec![("success".into(), "transport=software".into())]);
}

#[test]
fn attestation_aaguid_not_in_mds_refused_when_tenant_enforces() {
    let mds = Mds::new();
    let (mut key, cert, _) = soft();
    let entries = [Entry::new(*b"some-other-model", vec![cert])];
    let s = setup(
        "att-unlisted",
        true,
        trust(&mds, &entries),
        AttestationRequirement::Tenant,
    );
    let err = s
        .engine
        .issue(&software_request("A2"), &s.name, &mut key, now_ms())
        .unwrap_err();
    assert!(err.to_string().contains("ttestation"), "{err}");
    assert!(s.w.emulator.methods(KIM_ID).is_empty());
    let issued = s
        .engine
        .find_keys(&lifecycle::store::KeyQuery::ByState(
            CredentialState::Issued,
        ))
        .unwrap();
    assert!(issued.is_empty());
}

/// Before the fix pre-flight passed `attested = true` whatever the key: with an enforcing
/// tenant and no metadata, any key went through pre-flight.
#[test]
fn attestation_preflight_is_not_hard_coded_true() {
    let (mut key, _, _) = soft();
    let s = setup(
        "att-preflight",
        true,
        TrustStore::default(),
        AttestationRequirement::Tenant,
    );
    let err = s
        .engine
        .issue(&software_request("A3"), &s.name, &mut key, now_ms())
        .unwrap_err();
    assert_eq!(err.kind(), lifecycle::ErrorKind::Idp, "{err}");
    assert!(err.to_string().to_lowercase().contains("attest"), "{err}");
}

#[test]
fn attestation_template_mds_requirement_refuses_unlisted_key() {
    let mds = Mds::new();
    let (mut key, cert, _) = soft();
    let entries = [Entry::new(*b"some-other-model", vec![cert])];
    let s = setup(
        "att-mds",
        false,
        trust(&mds, &entries),
        AttestationRequirement::Mds,
    );
    let err = s
        .engine
        .issue(&software_request("A4"), &s.name, &mut key, now_ms())
        .unwrap_err();
    let Error::Engine(EngineError::Attestation { reason, .. }) = &err else {
        panic!("expected an attestation refusal, got {err:?}");
    };
    assert!(reason.contains("MDS"), "{reason}");
    assert_eq!(err.reason(), "attestation_refused");
    assert!(s.w.emulator.methods(KIM_ID).is_empty());
}

#[test]
fn attestation_template_any_issues_an_unlisted_key_when_the_tenant_allows() {
    let (mut key, _, _) = soft();
    let s = setup(
        "att-any",
        false,
        TrustStore::default(),
        AttestationRequirement::Any,
    );
    let k = s
        .engine
        .issue(&software_request("A5"), &s.name, &mut key, now_ms())
        .expect("issued");
    assert_eq!(k.state, CredentialState::Issued);
    let att = audit_detail(&s.engine, &k.key_id, "attestation");
    assert_eq!(att[0].0, "unattested", "{att:?}");
}

/// The emulator enforces attestation against the BLOB it is given, as Entra does: the
/// engine's own store lists the key (so keysmith lets it through), the tenant's does not.
#[test]
fn attestation_emulator_enforcement_refuses_a_key_not_in_its_mds() {
    let mds = Mds::new();
    let (mut key, cert, aaguid) = soft();
    let s = setup(
        "att-emu",
        true,
        trust(&mds, &[Entry::new(aaguid, vec![cert.clone()])]),
        AttestationRequirement::Any,
    );
    s.w.emulator.set_attestation_metadata(Some(trust(
        &mds,
        &[Entry::new(*b"some-other-model", vec![cert])],
    )));
    let k = s
        .engine
        .issue(&software_request("A6"), &s.name, &mut key, now_ms())
        .expect("keysmith's own trust store lists the key");
    let err = s
        .engine
        .activate("operator:alice", &k.key_id, HOLDER_PIN, &mut key, now_ms())
        .unwrap_err();
    assert_eq!(err.kind(), lifecycle::ErrorKind::Idp, "{err}");
    assert!(err.to_string().contains("Attestation is enforced"), "{err}");
    assert!(s.w.emulator.methods(KIM_ID).is_empty());
}

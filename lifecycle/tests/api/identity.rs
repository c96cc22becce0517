//! Issue 12 item 5: the right key for the right row. What a key proves about which key
//! it is (its CTAP 2.2 device identifier read with a persistent token right after the
//! transport PIN is set; the serial of an enterprise attestation certificate) is recorded
//! with the key and its source, compared at the next issuance of the same key id, and a
//! key without either keeps the station's source.

use crate::support::*;
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use fido_transport::Transport;
use lifecycle::engine::{
    BulkDevice, BulkDeviceRequest, BulkKind, BulkOptions, EngineError, KeyEvidence, KeySerial,
    SerialSource,
};
use lifecycle::store::BulkItemStatus;
use lifecycle::template::KeyTransport;
use lifecycle::{CredentialState, Error};

/// A software key that reports `id` as its CTAP 2.2 device identifier (`encIdentifier`,
/// option `perCredMgmtRO`), or none.
fn key_with(id: Option<&[u8; 16]>) -> (Authenticator<SoftTransport>, SoftTransport) {
    let config = SoftConfig {
        device_identifier: id.copied(),
        ..SoftConfig::default()
    };
    let t = SoftTransport::new(SoftAuthenticator::new(config).expect("softkey"));
    (Authenticator::new(t.clone()), t)
}

fn hex(b: &[u8]) -> String {
    base16ct::lower::encode_string(b)
}

fn audit_details(w: &World, key_id: &str, action: &str) -> Vec<String> {
    w.engine
        .audit_for(key_id)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == action)
        .filter_map(|r| r.event.detail)
        .collect()
}

#[test]
fn issuance_records_the_device_identifier_read_after_the_transport_pin() {
    let w = world("identity-enc");
    let (mut key, _t) = key_with(Some(b"key-A-identity!!"));
    let k = w
        .engine
        .issue(&request(KIM, "SN-A"), "test-standard", &mut key, now_ms())
        .expect("issue");
    assert_eq!(k.state, CredentialState::Issued);
    assert_eq!(
        k.identity.as_deref(),
        Some(hex(b"key-A-identity!!").as_str())
    );
    assert_eq!(k.serial_source.as_deref(), Some("enc_identifier"));
    // Stored: read back, not only returned.
    let back = w.engine.key(&k.key_id).unwrap();
    assert_eq!(back.identity, k.identity);
    assert_eq!(back.serial_source.as_deref(), Some("enc_identifier"));
    // Audited with its source.
    assert_eq!(
        audit_details(&w, &k.key_id, "identify"),
        vec!["serial_source=enc_identifier".to_owned()]
    );
}

#[test]
fn a_key_without_enc_identifier_keeps_the_stations_source() {
    let w = world("identity-none");
    let (mut key, _t) = key_with(None);
    let k = w
        .engine
        .issue(&request(KIM, "SN-B"), "test-standard", &mut key, now_ms())
        .expect("issue");
    // Nothing proven; the in-process call says nothing of the serial's source.
    assert_eq!(k.identity, None);
    assert_eq!(k.serial_source, None);
    assert!(audit_details(&w, &k.key_id, "identify").is_empty());
    // The software key's `packed` attestation carries a batch certificate: its serial is
    // evidence in the audit, never the key's identity.
    let att = audit_details(&w, &k.key_id, "attestation");
    assert!(
        att.iter().any(|d| d.contains("certificate_serial=")
            && d.contains("batch attestation: shared by the model's batch")),
        "{att:?}"
    );
}

#[test]
fn reissue_with_another_key_presenting_another_identifier_is_refused() {
    let w = world("identity-reissue");
    let (mut a, _ta) = key_with(Some(b"key-A-identity!!"));
    let k = w
        .engine
        .issue(&request(KIM, "SN-C"), "test-standard", &mut a, now_ms())
        .expect("issue");
    assert_eq!(k.serial_source.as_deref(), Some("enc_identifier"));
    // Another key of the model, with its own PIN-protected identifier, offered for the
    // same key id: it cannot even be read with the recorded key's transport PIN, and a
    // blank one proves another identifier right after its PIN is set.
    let (mut b, _tb) = key_with(Some(b"key-B-identity!!"));
    let err = w
        .engine
        .reissue(&request(KIM, "SN-C"), &k.key_id, &mut b, now_ms() + 1_000)
        .unwrap_err();
    assert!(
        matches!(err, Error::Engine(EngineError::NotTheRecordedKey { .. })),
        "{err:?}"
    );
    assert_eq!(err.reason(), "not_the_recorded_key");
    assert!(
        err.to_string()
            .contains("the key's CTAP 2.2 device identifier"),
        "{err}"
    );
    // The recorded identity stands; the refusal is audited. (A blank key proves itself
    // only once its PIN is set: by then the reissue had revoked the old passkeys and
    // unregistered the record, as a reissue does; the new issuance is what is refused.)
    let after = w.engine.key(&k.key_id).unwrap();
    assert_eq!(after.identity, k.identity);
    assert_eq!(after.state, CredentialState::Unregistered);
    let refused = w
        .engine
        .audit_for(&k.key_id)
        .unwrap()
        .into_iter()
        .filter(|r| r.event.action == "reissue" && r.event.outcome == "failure")
        .count();
    assert_eq!(refused, 1);
    // The recorded key itself is issued again under the key id.
    let again = w
        .engine
        .issue(
            &request(KIM, "SN-C"),
            "test-standard",
            &mut a,
            now_ms() + 2_000,
        )
        .expect("the recorded key is issued again");
    assert_eq!(again.state, CredentialState::Issued);
    assert_eq!(again.identity, k.identity);
}

fn soft_bulk(id: Option<&[u8; 16]>) -> BulkDevice {
    let config = SoftConfig {
        device_identifier: id.copied(),
        ..SoftConfig::default()
    };
    let t: Box<dyn Transport> = Box::new(SoftTransport::new(
        SoftAuthenticator::new(config).expect("softkey"),
    ));
    BulkDevice {
        authenticator: Authenticator::new(t),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
        evidence: KeyEvidence::default(),
    }
}

#[test]
fn bulk_rows_record_the_proven_source_and_refuse_a_key_proving_another_identity() {
    let w = world("identity-bulk");
    let e = &w.engine;
    // Row 2: a key with an identifier; row 3: one without, whose USB serial string
    // names the row's serial; row 4: neither.
    let csv = format!(
        "user,serial,template\n{KIM},S1,test-standard\n{ALEX},S2,test-standard\n\"{ADELE}\",S3,test-standard\n"
    );
    let job = e
        .bulk_create(BulkKind::Issue, &csv, "operator:bulk", now_ms())
        .unwrap();
    let mut devices = |r: &BulkDeviceRequest| {
        Ok(match r.serial.as_str() {
            "S1" => soft_bulk(Some(b"bulk-key-1-id!!!")),
            "S2" => BulkDevice {
                evidence: KeyEvidence {
                    keys_attached: Some(1),
                    serial: Some(KeySerial {
                        value: "S2".into(),
                        source: SerialSource::UsbSerialString,
                    }),
                },
                ..soft_bulk(None)
            },
            _ => soft_bulk(None),
        })
    };
    let s = e
        .bulk_run(
            job.job_id,
            &BulkOptions::default(),
            &now_ms,
            &mut devices,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((s.done, s.failed), (3, 0), "{:#?}", s.items);
    let outcome = |line: u64| {
        s.items
            .iter()
            .find(|i| i.line == line)
            .map(|i| i.outcome.clone())
            .unwrap()
    };
    assert!(
        outcome(2).contains("serial from the key's CTAP 2.2 device identifier"),
        "{}",
        outcome(2)
    );
    assert!(outcome(3).contains("serial from the key's USB serial string"));
    assert!(outcome(4).contains("serial from the CSV row"));
    let source = |serial: &str| {
        let k = e
            .find_keys(&lifecycle::store::KeyQuery::BySerial(serial.into()))
            .unwrap()
            .remove(0);
        (k.serial_source, k.identity)
    };
    assert_eq!(
        source("S1"),
        (
            Some("enc_identifier".into()),
            Some(hex(b"bulk-key-1-id!!!"))
        )
    );
    assert_eq!(source("S2"), (Some("usb_serial_string".into()), None));
    assert_eq!(source("S3"), (Some("claimed".into()), None));

    // The key recorded for S1 is revoked and unregistered; a new job's row for S1 then
    // offers a different key (blank, so its identifier is read after its PIN is set):
    // the row is refused as the wrong key, before the key made a credential.
    let k1 = e
        .find_keys(&lifecycle::store::KeyQuery::BySerial("S1".into()))
        .unwrap()
        .remove(0);
    e.revoke("operator:bulk", &k1.key_id, Some(true), now_ms())
        .expect("revoke");
    e.retire("operator:bulk", &k1.key_id, now_ms())
        .expect("retire");
    e.unregister("operator:bulk", &k1.key_id, now_ms())
        .expect("unregister");
    let csv = format!("user,serial,template\n{KIM},S1,test-standard\n");
    let job = e
        .bulk_create(BulkKind::Issue, &csv, "operator:bulk", now_ms())
        .unwrap();
    let mut other = |_: &BulkDeviceRequest| Ok(soft_bulk(Some(b"another-key-id!!")));
    let s = e
        .bulk_run(
            job.job_id,
            &BulkOptions::default(),
            &now_ms,
            &mut other,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((s.done, s.failed), (0, 1), "{:#?}", s.items);
    assert_eq!(s.items[0].status, BulkItemStatus::Failed);
    assert!(
        s.items[0].outcome.contains("is not the key recorded as"),
        "{}",
        s.items[0].outcome
    );
    assert!(e
        .passkeys(&k1.key_id)
        .unwrap()
        .iter()
        .all(|p| p.state != CredentialState::Issued));
}

/// A key with a PIN the engine knows (an issued key still holding its transport PIN) is
/// read before anything is done: another key is refused before any IdP call or key step.
#[test]
fn an_issued_key_is_identified_up_front_before_anything_is_done() {
    let w = world("identity-up-front");
    let (mut a, _ta) = key_with(Some(b"key-A-identity!!"));
    let k = w
        .engine
        .issue(&request(KIM, "SN-D"), "test-standard", &mut a, now_ms())
        .expect("issue");
    let pin = w
        .engine
        .store()
        .get_transport_pin(&k.key_id, &lifecycle::store::PinKey::from_bytes([7; 32]))
        .unwrap()
        .expect("transport PIN stored");
    // Another key that happens to accept the same PIN.
    let (mut b, _tb) = key_with(Some(b"key-B-identity!!"));
    b.set_pin(pin.expose()).unwrap();
    let err = w
        .engine
        .reissue(&request(KIM, "SN-D"), &k.key_id, &mut b, now_ms() + 1_000)
        .unwrap_err();
    assert_eq!(err.reason(), "not_the_recorded_key", "{err}");
    // Nothing happened to the record: still issued, same version, pending kept.
    let after = w.engine.key(&k.key_id).unwrap();
    assert_eq!(after.state, CredentialState::Issued);
    assert_eq!(after.version, k.version);
    assert_eq!(
        w.engine.store().pending_for_key(&k.key_id).unwrap().len(),
        1
    );
    // The recorded key passes the same check.
    let again = w
        .engine
        .reissue(&request(KIM, "SN-D"), &k.key_id, &mut a, now_ms() + 2_000)
        .expect("the recorded key reissues");
    assert_eq!(again.state, CredentialState::Issued);
    assert_eq!(again.identity, k.identity);
}

/// A template asking for enterprise attestation, without a reset (a reset turns the
/// key's enterprise attestation off).
const EP_TEMPLATE: &str = r#"
[passkey.entra]
idp = { connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }
display_name = "{displayName} {serial}"
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "test-ep"
passkey_templates = ["entra"]
user_assignment = { directory = "contoso-entra" }

[credential.fido2]
enterprise_attestation = 2
"#;

/// A key offering enterprise attestation (`ep`), turned on as an enterprise would
/// (authenticatorConfig enableEnterpriseAttestation) when `enable`.
fn ep_key(enable: bool) -> Authenticator<SoftTransport> {
    let config = SoftConfig {
        enterprise_attestation: true,
        ..SoftConfig::default()
    };
    let t = SoftTransport::new(SoftAuthenticator::new(config).expect("softkey"));
    let mut key = Authenticator::new(t);
    if enable {
        key.enable_enterprise_attestation(None).expect("enable ep");
    }
    key
}

fn pending_attestation(w: &World, key_id: &str) -> fido_core::attestation::AttestationObject {
    let p = w.engine.store().pending_for_key(key_id).unwrap().remove(0);
    fido_core::attestation::AttestationObject::from_cbor(&p.attestation_object).unwrap()
}

#[test]
fn an_enterprise_attestation_certificate_serial_is_the_keys_identity() {
    let w = world("identity-ep");
    w.engine
        .add_template(lifecycle::template::TemplateSet::from_toml_str(EP_TEMPLATE).unwrap())
        .unwrap();
    let mut key = ep_key(true);
    let k = w
        .engine
        .issue(&request(KIM, "SN-E"), "test-ep", &mut key, now_ms())
        .expect("issue");
    let att = pending_attestation(&w, &k.key_id);
    let serial = hex(&att.leaf_certificate_serial().expect("x5c"));
    assert_eq!(k.serial_source.as_deref(), Some("attestation_certificate"));
    assert_eq!(k.identity.as_deref(), Some(serial.as_str()));
    let details = audit_details(&w, &k.key_id, "attestation");
    assert!(
        details.iter().any(|d| d.contains(&format!(
            "certificate_serial={serial} (enterprise attestation)"
        ))),
        "{details:?}"
    );
    // The IdP gets the WebAuthn attestation object without CTAP's `epAtt` mark.
    assert!(!att.enterprise_attestation());

    // The same template on a key whose enterprise attestation is off: not asked, batch
    // attestation, its certificate serial evidence only.
    let mut batch = ep_key(false);
    let b = w
        .engine
        .issue(&request(ALEX, "SN-F"), "test-ep", &mut batch, now_ms())
        .expect("issue without ep");
    assert_eq!(b.identity, None);
    assert_eq!(b.serial_source, None);
    let details = audit_details(&w, &b.key_id, "attestation");
    assert!(
        details.iter().any(|d| d.contains("(batch attestation")),
        "{details:?}"
    );
}

/// A sign-in check (`verify`) reads the identifier with the holder's PIN first: another
/// key with the same PIN is refused as not the recorded key, not as a failed sign-in.
#[test]
fn a_sign_in_check_with_another_key_is_refused_as_not_the_recorded_key() {
    let w = world("identity-verify");
    let (mut a, _ta) = key_with(Some(b"key-A-identity!!"));
    let k = w
        .engine
        .issue(&request(KIM, "SN-G"), "test-standard", &mut a, now_ms())
        .expect("issue");
    w.engine
        .activate("self:kim", &k.key_id, HOLDER_PIN, &mut a, now_ms() + 1_000)
        .expect("activate");
    assert_eq!(
        w.engine
            .sign_in(&k.key_id, HOLDER_PIN, &mut a)
            .unwrap()
            .len(),
        1
    );
    let (mut b, _tb) = key_with(Some(b"key-B-identity!!"));
    b.set_pin(HOLDER_PIN).unwrap();
    let err = w.engine.sign_in(&k.key_id, HOLDER_PIN, &mut b).unwrap_err();
    assert_eq!(err.reason(), "not_the_recorded_key", "{err}");
}

/// A key already recorded (and live) under one serial, offered for another serial, is
/// refused once it proves its identifier: it is that other key, not the row's.
#[test]
fn a_key_recorded_under_another_serial_is_refused() {
    let w = world("identity-elsewhere");
    let (mut a, _ta) = key_with(Some(b"key-A-identity!!"));
    let k = w
        .engine
        .issue(&request(KIM, "SN-H"), "test-standard", &mut a, now_ms())
        .expect("issue");
    let err = w
        .engine
        .issue(
            &request(ALEX, "SN-I"),
            "test-standard",
            &mut a,
            now_ms() + 1_000,
        )
        .unwrap_err();
    assert_eq!(err.reason(), "not_the_recorded_key", "{err}");
    assert!(
        err.to_string()
            .contains(&format!("already recorded as {}", k.key_id)),
        "{err}"
    );
    // Nothing was made for SN-I.
    let i = w
        .engine
        .find_keys(&lifecycle::store::KeyQuery::BySerial("SN-I".into()))
        .unwrap()
        .remove(0);
    assert!(w.engine.passkeys(&i.key_id).unwrap().is_empty());
    assert_eq!(i.state, CredentialState::Blank);
}

#[test]
fn enterprise_attestation_in_a_template_is_1_or_2() {
    let bad = EP_TEMPLATE.replace("enterprise_attestation = 2", "enterprise_attestation = 3");
    let err = lifecycle::template::TemplateSet::from_toml_str(&bad).unwrap_err();
    assert!(
        err.to_string()
            .contains("credential.fido2.enterprise_attestation"),
        "{err}"
    );
}

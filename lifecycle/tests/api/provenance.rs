//! Issue 19 item 7: provenance after a registration, behind the passkey template's
//! `record_provenance` switch, against the Entra emulator as a real HTTP server (the
//! emulator behaviour each test relies on: `docs/ENTRA.md`, section "Provenance").

use std::sync::Arc;

use entra_graph::auth::{Credential, Secret};
use entra_graph::emulator::{Emulator, Fault, FaultRule};
use entra_graph::{ApiVersion, GraphClient};
use lifecycle::engine::Engine;
use lifecycle::idp::EntraIdp;
use lifecycle::store::{AuditRecord, PinKey, SqliteStore};
use lifecycle::template::{GraphApiVersion, TemplateError, TemplateSet};
use lifecycle::{CredentialState, Error};

use crate::support::*;

/// The standard template with provenance on (or off).
fn with_provenance(on: bool) -> TemplateSet {
    let mut t = template();
    t.passkey
        .get_mut("entra")
        .expect("entra passkey template")
        .record_provenance = on;
    t
}

fn provenance_audit(e: &Engine, key_id: &str) -> Vec<AuditRecord> {
    e.audit_for(key_id)
        .expect("audit")
        .into_iter()
        .filter(|r| r.event.action == "provenance")
        .collect()
}

fn provenance_calls(emulator: &Emulator) -> usize {
    emulator
        .request_log()
        .iter()
        .filter(|r| r.path.contains("verificationEvents") || r.path.contains("attestProvenance"))
        .count()
}

/// Issues and activates a key for Kim with `actor` activating; returns the key id.
fn issue_and_activate(w: &World, t: &TemplateSet, actor: &str, serial: &str) -> String {
    let mut key = softkey();
    let now = now_ms();
    let k = w
        .engine
        .issue(&request(KIM, serial), &t.credential.name, &mut key, now)
        .expect("issue");
    let k = w
        .engine
        .activate(actor, &k.key_id, HOLDER_PIN, &mut key, now + 1)
        .expect("activate");
    assert_eq!(k.state, CredentialState::Active);
    k.key_id
}

/// Central issuance with the switch on: one event (the operator's in-person check,
/// the operator named in `source`) and one assertion on the FIDO2 method, audited. The
/// first answer of the event POST is lost (the client retries) and the job is re-run
/// afterwards: Entra still holds one event and one assertion.
#[test]
fn central_issuance_records_the_operator_check_once() {
    let w = world("provenance-central");
    let t = with_provenance(true);
    w.engine.add_template(t.clone()).expect("beta connection");
    w.emulator.inject(FaultRule::new(
        "POST",
        "/verificationEvents",
        Fault::CommitThenDrop,
        1,
    ));
    let key_id = issue_and_activate(&w, &t, "operator:alice", "SN-PROV-1");
    let events = w.emulator.verification_events(KIM_ID);
    assert_eq!(events.len(), 1, "{events:?}");
    let source = events[0]["verificationDetails"]["source"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        source.contains("in-person check by operator operator:alice"),
        "{source}"
    );
    let methods = w.emulator.methods(KIM_ID);
    assert_eq!(methods.len(), 1);
    let assertions = w.emulator.provenance_assertions(&methods[0].id);
    assert_eq!(assertions.len(), 1);
    assert_eq!(assertions[0]["verificationEventId"], events[0]["id"]);
    let audit = provenance_audit(&w.engine, &key_id);
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event.outcome, "success");
    let detail = audit[0].event.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("manualAttestation"), "{detail}");

    // The job re-run: the same event id, nothing new at Entra.
    let again = w
        .engine
        .record_provenance("operator:bob", &key_id, now_ms())
        .expect("re-run");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].result, Ok(1));
    assert_eq!(again[0].event_id, events[0]["id"].as_str().unwrap());
    assert_eq!(w.emulator.verification_events(KIM_ID).len(), 1);
    assert_eq!(w.emulator.provenance_assertions(&methods[0].id).len(), 1);
    assert_eq!(provenance_audit(&w.engine, &key_id).len(), 2);
}

/// Self-service: the holder's OIDC sign-in (`identityVerification`, the holder named).
#[test]
fn self_service_records_the_oidc_sign_in() {
    let w = world("provenance-self");
    let t = with_provenance(true);
    w.engine.add_template(t.clone()).expect("beta connection");
    let key_id = issue_and_activate(&w, &t, "self:kim", "SN-PROV-2");
    let events = w.emulator.verification_events(KIM_ID);
    assert_eq!(events.len(), 1);
    let source = events[0]["verificationDetails"]["source"].as_str().unwrap();
    assert!(source.contains("OpenID Connect sign-in as kim"), "{source}");
    let audit = provenance_audit(&w.engine, &key_id);
    let detail = audit[0].event.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("identityVerification"), "{detail}");
}

/// The switch is off by default: no provenance call at all.
#[test]
fn off_by_default_makes_no_call() {
    let w = world("provenance-off");
    assert!(!template().passkey["entra"].record_provenance);
    let key_id = issue_and_activate(&w, &template(), "operator:alice", "SN-PROV-3");
    assert_eq!(provenance_calls(&w.emulator), 0);
    assert!(w.emulator.verification_events(KIM_ID).is_empty());
    assert!(provenance_audit(&w.engine, &key_id).is_empty());
    assert!(w
        .engine
        .record_provenance("operator:alice", &key_id, now_ms())
        .expect("re-run")
        .is_empty());
    assert_eq!(provenance_calls(&w.emulator), 0);
}

/// A v1.0 connection with the switch on is refused when the template is loaded, with
/// the reason and the fix.
#[test]
fn a_v1_connection_is_refused_at_template_check() {
    let w = world("provenance-v1");
    let store = SqliteStore::open(w.dir.join("v1.db")).expect("sqlite store");
    let client = GraphClient::new(
        w.emulator.graph_config(ApiVersion::V1),
        Credential::ClientSecret {
            client_id: w.emulator.client_id().to_owned(),
            secret: Secret::new(w.emulator.client_secret().unwrap_or_default()),
        },
    )
    .expect("graph client");
    let v1 = Engine::builder(Arc::new(store), PinKey::from_bytes([7; 32]), "station-v")
        .idp(Arc::new(EntraIdp::new(CONNECTION, client)))
        .build()
        .expect("engine");
    // The template says beta (it passes its own check); its connection uses v1.0.
    let mut t = with_provenance(true);
    let p = t.passkey.get_mut("entra").unwrap();
    p.challenge_timeout_minutes = Some(5);
    t.validate().expect("the template alone is valid");
    let e = v1.add_template(t.clone()).unwrap_err();
    let Error::Template(TemplateError::Invalid(problems)) = &e else {
        panic!("not a template problem: {e:?}");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "passkey.entra.record_provenance");
    let m = &problems[0].message;
    assert!(m.contains("needs a Graph beta connection"), "{m}");
    assert!(m.contains("uses Graph v1.0"), "{m}");
    // A template that says v1.0 with the switch on is refused by its own check
    // (`keysmith template check`).
    t.passkey.get_mut("entra").unwrap().idp.graph_api_version = GraphApiVersion::V1_0;
    let Err(TemplateError::Invalid(problems)) = t.validate() else {
        panic!("a v1.0 template with record_provenance passes its own check");
    };
    assert!(
        problems
            .iter()
            .any(|p| p.field == "passkey.entra.record_provenance"
                && p.message.contains("Graph beta endpoint")),
        "{problems:?}"
    );
    // The same template without the switch loads.
    t.passkey.get_mut("entra").unwrap().record_provenance = false;
    v1.add_template(t).expect("v1.0 without provenance");
}

/// A failed provenance call after the registration keeps the registration (the key is
/// active, the passkey registered and stored), is audited as failed, and is recorded by
/// the re-run: one event, one assertion.
#[test]
fn a_failed_provenance_call_keeps_the_registration() {
    let w = world("provenance-failed");
    let t = with_provenance(true);
    w.engine.add_template(t.clone()).expect("beta connection");
    w.emulator.inject(FaultRule::new(
        "POST",
        "/attestProvenance",
        Fault::Status {
            status: 400,
            retry_after: None,
        },
        1,
    ));
    let key_id = issue_and_activate(&w, &t, "operator:alice", "SN-PROV-4");
    let methods = w.emulator.methods(KIM_ID);
    assert_eq!(methods.len(), 1, "the registration stands");
    assert!(w.emulator.provenance_assertions(&methods[0].id).is_empty());
    let audit = provenance_audit(&w.engine, &key_id);
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event.outcome, "failed");
    let detail = audit[0].event.detail.as_deref().unwrap_or_default();
    assert!(detail.contains("the registration stands"), "{detail}");
    assert!(detail.contains("HTTP 400"), "{detail}");

    let again = w
        .engine
        .record_provenance("operator:alice", &key_id, now_ms())
        .expect("re-run");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].result, Ok(1));
    assert_eq!(w.emulator.verification_events(KIM_ID).len(), 1, "one event");
    assert_eq!(w.emulator.provenance_assertions(&methods[0].id).len(), 1);
    let audit = provenance_audit(&w.engine, &key_id);
    assert_eq!(audit.last().unwrap().event.outcome, "success");
}

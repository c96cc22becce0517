//! Issue 12's USB replug reset across the split (as `engine::station_reset` shows it in
//! one process): a station whose agent knows the USB key's port (the agent attaches the
//! port as the client's slot and reports `can_reset_in_place`) gets a
//! `reset_before_issuance` issuance; the device half has the operator replug the key,
//! checks it is the same key and resets it at once. Replugged too late, the work fails
//! on the server as a device error ("too late, replug and try again"; the typed reason
//! across the wire is `device_faults.rs`) and nothing is
//! erased or registered. A station that cannot reset in place is refused up front.

use fido_transport::client::ResetPrompt;
use keysmith_testkit::replug::{used_usb_key, Operator};
use lifecycle::template::TemplateSet;

use super::*;

/// A template that resets the key before issuance.
fn reset_template(emu: &Emulator) -> TemplateSet {
    let text = format!(
        r#"
[passkey.entra]
idp = {{ connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }}
display_name = "{{displayName}} {{serial}}"
truncate_display_name = true
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "split-reset"
passkey_templates = ["entra"]
user_assignment = {{ directory = "contoso-entra" }}

[credential.fido2]
reset_before_issuance = true

[credential.self_service]
oidc = {{ issuer = "{issuer}", audience = "{aud}", jwks_url = "{jwks}" }}
"#,
        issuer = emu.oidc_issuer(),
        aud = crate::selfservice::AUDIENCE,
        jwks = emu.jwks_url(),
    );
    TemplateSet::from_toml_str(&text).expect("test template parses")
}

/// A used YubiKey-like key whose client knows its simulated USB port, as `keysmith-agent`
/// opens a listed `usb:` key, and the operator at the station who replugs it when the
/// device half asks, taking `slow_s` seconds between "insert it again" and the reset.
fn usb_key(slow_s: u64) -> (Authenticator<SoftTransport>, SoftTransport, Operator) {
    used_usb_key(77, "old-pin-2468", slow_s)
}

/// The station's agent: reports the USB key (`can_reset_in_place` as the agent derives
/// it from the slot), polls, runs the jobs with the operator's UI; how it ended.
fn station_issues(
    r: &Rig,
    key: &mut Authenticator<SoftTransport>,
    op: &mut Operator,
    work_id: &str,
) -> (Event, StationWorkState) {
    r.engine
        .add_template(reset_template(&r.w.emulator))
        .unwrap();
    let c = &r.c;
    let caps = Capabilities {
        ctap_raw: true,
        can_reset_in_place: key.can_replug(),
        interactive_holder_ui: false,
        max_job_steps: 64,
        ..Default::default()
    };
    let mut station = r.agent_with(AgentClass::Station, caps);
    let station_id = r.last_agent_id();
    queue_work(
        &r.engine,
        &station_id,
        work_id,
        &StationRequest::Issue {
            user: ADELE.into(),
            template: "split-reset".into(),
        },
    );
    let mut msg = station
        .session
        .report(key, "usb", Some("SN-USB-1".into()), None)
        .unwrap();
    let mut polled = false;
    let ended = loop {
        let reply = c.handle(&station.session_id, &msg, now_ms()).unwrap();
        station.clock += 1;
        match station.session.receive(&reply, station.clock).unwrap() {
            Event::Job(_) => msg = station.session.run_job(station.clock, key, op).unwrap(),
            Event::Wait { .. } if !polled => {
                polled = true;
                msg = station.session.ready().unwrap();
            }
            other => break other,
        }
    };
    let state = r
        .engine
        .store()
        .station_work_get(work_id)
        .unwrap()
        .unwrap()
        .state;
    (ended, state)
}

#[test]
fn a_usb_station_resets_the_key_by_replug_before_issuance_across_the_split() {
    let (r, _) = rig("split-usb-replug", CoordinatorConfig::default());
    let (mut key, t, mut op) = usb_key(1);
    assert!(key.can_replug(), "the station knows the key's port");
    let (ended, state) = station_issues(&r, &mut key, &mut op, "w-usb-replug");
    let Event::JobAck(ack) = ended else {
        panic!("the issuance did not finish: {ended:?}")
    };
    assert_eq!(ack.state, "issued");
    assert_eq!(state, StationWorkState::Done);
    let p = op.prompts.borrow().clone();
    let at = |want: &Prompt| p.iter().position(|q| q == want);
    let remove = at(&Prompt::Replug(ResetPrompt::RemoveKey)).expect("remove");
    let insert = at(&Prompt::Replug(ResetPrompt::InsertKey)).expect("insert");
    let hold = at(&Prompt::HoldKey { op: "reset" }).expect("press and hold");
    assert!(remove < insert && insert < hold, "{p:?}");
    // The old PIN is gone: the key holds the transport PIN and the new passkey.
    assert!(t.with(|a| a.state().credentials.len() == 1));
    assert_eq!(
        r.engine.key(&ack.key_id).unwrap().state,
        CredentialState::Issued
    );
}

#[test]
fn a_usb_key_replugged_too_late_fails_the_station_work_typed() {
    let (r, _) = rig("split-usb-replug-late", CoordinatorConfig::default());
    let (mut key, t, mut op) = usb_key(6);
    let (ended, state) = station_issues(&r, &mut key, &mut op, "w-usb-late");
    assert!(!matches!(ended, Event::JobAck(_)), "{ended:?}");
    assert_eq!(state, StationWorkState::Failed);
    let work = r
        .engine
        .store()
        .station_work_get("w-usb-late")
        .unwrap()
        .unwrap();
    let outcome = work.outcome.unwrap_or_default();
    assert!(
        outcome.contains("too late, replug and try again") && outcome.contains("\"device\""),
        "the operator is told to replug: {outcome}"
    );
    assert!(t.with(|a| a.state().pin.is_some()), "nothing erased");
    assert!(t.with(|a| a.state().credentials.is_empty()), "nothing made");
}

#[test]
fn a_usb_station_that_cannot_replug_is_refused_a_reset_before_issuance() {
    let (r, _) = rig("split-usb-no-slot", CoordinatorConfig::default());
    let t = SoftTransport::new(SoftAuthenticator::new(SoftConfig::yubikey_like()).unwrap());
    let mut key = Authenticator::new(t.as_usb());
    let (_, _, mut op) = usb_key(0);
    assert!(!key.can_replug());
    let (ended, state) = station_issues(&r, &mut key, &mut op, "w-usb-no-slot");
    assert!(!matches!(ended, Event::JobAck(_)), "{ended:?}");
    assert_eq!(state, StationWorkState::Failed);
    assert!(op.prompts.borrow().is_empty(), "no replug asked");
}

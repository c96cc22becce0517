//! Delegated registration (issue 19 item 3): the holder's own token registers the
//! passkey. The server half's Graph application has read permissions only; the holder
//! signs in with the agent's own code (authorization code + PKCE at the emulator, a Graph
//! scope beside `openid`), and the agent's own `/me` calls fetch the creation options and
//! post the registration. The server checks the options are the holder's, verifies the
//! attestation, builds the request, and confirms the registration with a read before
//! recording it. Graph wants MFA within the last 10 minutes: an older one registers
//! nothing.

use std::time::Duration;

use entra_graph::emulator::{AppRegistration, EmulatorConfig};
use fido_transport::client::Authenticator;
use fido_transport::softkey::SoftTransport;
use keysmith_agent::me::{call, GraphAccess};
use keysmith_agent::oidc::{sign_in, SignInRequest};
use keysmith_device::Event;
use keysmith_wire::{RefusalCode, Request, RequestOp};
use lifecycle::coordinator::CoordinatorConfig;
use lifecycle::template::RegistrationMode;
use lifecycle::CredentialState;
use zeroize::Zeroizing;

use super::{rig_on, station_runs_work, world_with, Agent, Rig, Ui};
use crate::common::KIM;
use crate::selfservice::{template, ADELE, ALL, AUDIENCE, NEW_PIN};
use lifecycle::coordinator::{AgentClass, StationRequest};

/// What the server half's application may do: read users, groups, the policy and
/// passkeys. No passkey write permission.
const READ_ONLY: &[&str] = &[
    "User.Read.All",
    "GroupMember.Read.All",
    "Policy.Read.AuthenticationMethod",
    "UserAuthMethod-Passkey.Read.All",
    "UserAuthenticationMethod.Read.All",
];

/// A split rig whose server half has read permissions only, with the template
/// `delegated` (self-issuance, `registration = "delegated"`, sign-ins up to an hour old
/// accepted by the server: Graph's 10 minutes is Graph's own rule).
fn delegated_rig(name: &str) -> (Rig, Authenticator<SoftTransport>) {
    delegated_rig_with(name, Some(READ_ONLY))
}

/// [`delegated_rig`] whose server application holds `roles` (`None`: every permission a
/// provisioning app needs).
fn delegated_rig_with(name: &str, roles: Option<&[&str]>) -> (Rig, Authenticator<SoftTransport>) {
    let server_app = AppRegistration {
        client_id: "5e2d1f1c-0000-4000-8000-00000000d001".into(),
        client_secret: Some("read-only-app-secret".into()),
        certificates_pem: Vec::new(),
        roles: roles.map(|r| r.iter().map(|r| r.to_string()).collect()),
    };
    // The holder's public client (the OIDC audience of the self-service template).
    let holder_app = AppRegistration {
        client_id: AUDIENCE.into(),
        client_secret: None,
        certificates_pem: Vec::new(),
        roles: Some(Vec::new()),
    };
    let w = world_with(
        name,
        EmulatorConfig {
            apps: vec![server_app, holder_app],
            ..EmulatorConfig::default()
        },
    );
    let mut t = template(&w.emulator, "delegated", ALL);
    t.credential.self_service.registration = RegistrationMode::Delegated;
    if let Some(o) = t.credential.self_service.oidc.as_mut() {
        o.max_age_secs = 3600;
    }
    w.engine.add_template(t).unwrap();
    rig_on(w, CoordinatorConfig::default())
}

fn self_issue() -> Request {
    Request {
        operation: RequestOp::SelfIssue,
        template: Some("delegated".into()),
        key_id: None,
    }
}

/// The holder signs in with the agent's sign-in code, the test playing the browser
/// (signing in as `user`): the ID token and the delegated Graph token.
fn holder_signs_in(
    r: &Rig,
    need: &keysmith_wire::NeedHolderAuth,
    user: &str,
) -> (Zeroizing<String>, Option<GraphAccess>) {
    let http = keysmith_agent::http::client(None, Duration::from_secs(10)).unwrap();
    let req = SignInRequest {
        issuer: need.issuer.clone(),
        client_id: need.client_id.clone(),
        scopes: need.scopes.clone(),
        nonce: need.nonce.clone(),
        login_hint: Some(user.to_owned()),
        max_age: Some(u64::from(need.max_age_s)),
        session_code: Some(need.session_code.clone()),
        timeout: Duration::from_secs(20),
    };
    let mut browser = None;
    let mut token = sign_in(&http, &req, &mut |url| {
        let url = url.to_owned();
        browser = Some(std::thread::spawn(move || {
            let c = keysmith_agent::http::client(None, Duration::from_secs(10)).unwrap();
            let r = c.get(&url).send().unwrap();
            assert_eq!(r.status().as_u16(), 302, "{url}");
            let back = r.headers()["location"].to_str().unwrap().to_owned();
            assert!(c.get(&back).send().unwrap().status().is_success());
        }));
        Ok(())
    })
    .expect("the holder signs in");
    browser.unwrap().join().unwrap();
    let graph = token.take_access_token().map(|t| GraphAccess {
        base_url: r.w.emulator.base_url().to_owned(),
        token: t,
    });
    (Zeroizing::new(token.expose().to_owned()), graph)
}

/// The holder's agent sends its `HolderAuth` and answers every job and holder Graph call
/// until the session ends; the holder Graph calls are made by the agent's own code.
fn run_holder(
    r: &Rig,
    holder: &mut Agent,
    id_token: Zeroizing<String>,
    graph: Option<&GraphAccess>,
    key: &mut Authenticator<SoftTransport>,
    ui: &mut Ui,
) -> Event {
    let mut msg = holder.session.holder_auth(id_token).unwrap();
    loop {
        match holder.exchange(&r.c, msg, key, ui) {
            Event::HolderGraph(c) => {
                msg = holder.session.holder_graph_result(call(graph, &c)).unwrap();
            }
            other => return other,
        }
    }
}

#[test]
fn a_holder_registers_their_own_passkey_with_a_read_only_server() {
    let (r, mut key) = delegated_rig("split-delegated");
    let mut ui = Ui(Some(NEW_PIN));
    let (mut holder, need) = r.holder_asks(&mut key, &mut ui, self_issue(), Some("SN-D1"));
    let scope = format!(
        "{}/UserAuthMethod-Passkey.ReadWrite",
        r.w.emulator.base_url()
    );
    assert!(need.scopes.contains(&scope), "{:?}", need.scopes);

    let (id_token, graph) = holder_signs_in(&r, &need, ADELE);
    let graph = graph.expect("the sign-in gave a delegated Graph token");
    let access = graph.token.to_string();
    let ended = run_holder(&r, &mut holder, id_token, Some(&graph), &mut key, &mut ui);
    let Event::JobAck(ack) = ended else {
        panic!("the delegated self-issuance did not finish: {ended:?}")
    };
    assert_eq!((ack.state.as_str(), ack.registered), ("active", 1));

    // Registered at Graph through /me by the holder's token; the server's application
    // wrote nothing (it may not) and read to confirm.
    let methods = r.w.emulator.methods(ADELE);
    assert_eq!(methods.len(), 1, "{methods:?}");
    let log = r.w.emulator.request_log();
    assert!(log.iter().any(|q| q.method == "POST"
        && q.path == "/v1.0/me/authentication/fido2Methods"
        && q.status == 201));
    assert!(
        !log.iter()
            .any(|q| q.method == "POST" && q.path.contains("/users/")),
        "the server half posted to Graph: {log:?}"
    );
    let key_id = ack.key_id.clone();
    let rec = r.engine.key(&key_id).unwrap();
    assert_eq!(rec.state, CredentialState::Active);
    let passkeys = r.engine.store().list_passkeys(&key_id).unwrap();
    assert_eq!(
        passkeys[0].idp_method_id.as_deref(),
        Some(methods[0].id.as_str())
    );

    // The delegated token stayed with the agent: in no message of the session.
    for m in r.engine.store().split_messages(&holder.session_id).unwrap() {
        assert!(
            !m.bytes
                .windows(32)
                .any(|w| access.as_bytes().starts_with(w)),
            "the holder's Graph token is in a {:?} message",
            m.direction
        );
    }
}

#[test]
fn an_mfa_older_than_ten_minutes_registers_nothing() {
    let (r, mut key) = delegated_rig("split-delegated-stale");
    // The holder's browser session remembers an MFA from 11 minutes ago: the server's
    // own sign-in check (an hour) passes, Graph's 10 minutes do not.
    r.w.emulator.set_sign_in_age(Duration::from_secs(11 * 60));
    let mut ui = Ui(Some(NEW_PIN));
    let (mut holder, need) = r.holder_asks(&mut key, &mut ui, self_issue(), Some("SN-D2"));
    let (id_token, graph) = holder_signs_in(&r, &need, ADELE);
    let ended = run_holder(&r, &mut holder, id_token, graph.as_ref(), &mut key, &mut ui);
    let Event::Refused(refusal) = ended else {
        panic!("a stale MFA was not refused: {ended:?}")
    };
    assert_eq!(refusal.code, RefusalCode::HolderAuthFailed, "{refusal:?}");
    assert!(
        refusal
            .reason
            .contains("multifactor authentication within the last 10 minutes"),
        "{refusal:?}"
    );
    assert!(r.w.emulator.methods(ADELE).is_empty());
    // Refused at the creation options: the key made nothing.
    assert_eq!(
        r.w.emulator
            .request_log()
            .iter()
            .filter(|q| q.path.contains("/me/"))
            .count(),
        1
    );
}

#[test]
fn a_holder_without_a_graph_token_registers_nothing() {
    let (r, mut key) = delegated_rig("split-delegated-none");
    let mut ui = Ui(Some(NEW_PIN));
    let (mut holder, need) = r.holder_asks(&mut key, &mut ui, self_issue(), Some("SN-D3"));
    let (id_token, _graph) = holder_signs_in(&r, &need, ADELE);
    // An agent that kept no Graph token answers the call with status 0.
    let ended = run_holder(&r, &mut holder, id_token, None, &mut key, &mut ui);
    let Event::Refused(refusal) = ended else {
        panic!("no Graph token, yet not refused: {ended:?}")
    };
    assert!(refusal.reason.contains("no Graph token"), "{refusal:?}");
    assert!(r.w.emulator.methods(ADELE).is_empty());
}

/// A device half that relays another user's creation options (its holder signed in as
/// Adele, the options come from Kim's token) is caught before the key makes anything.
#[test]
fn creation_options_for_another_user_are_refused() {
    let (r, mut key) = delegated_rig("split-delegated-other");
    let mut ui = Ui(Some(NEW_PIN));
    // Kim's delegated token, from a sign-in of her own.
    let (mut kims, kim_need) = r.holder_asks(&mut key, &mut ui, self_issue(), Some("SN-D4"));
    let (_, kim_graph) = holder_signs_in(&r, &kim_need, KIM);
    drop(kims.session.abort(None, "cancelled", None));
    let (mut holder, need) = r.holder_asks(&mut key, &mut ui, self_issue(), Some("SN-D4"));
    let (id_token, _adeles) = holder_signs_in(&r, &need, ADELE);
    let ended = run_holder(
        &r,
        &mut holder,
        id_token,
        kim_graph.as_ref(),
        &mut key,
        &mut ui,
    );
    let Event::Refused(refusal) = ended else {
        panic!("another user's creation options were not refused: {ended:?}")
    };
    assert!(
        refusal.reason.contains("not the signed-in holder"),
        "{refusal:?}"
    );
    assert!(r.w.emulator.methods(ADELE).is_empty());
    assert!(r.w.emulator.methods(KIM).is_empty());
}

/// A device half that reports a registration Graph never made (the answer forged, no
/// call sent) is caught by the server's confirming read: nothing is recorded active.
#[test]
fn a_forged_registration_answer_is_not_recorded() {
    let (r, mut key) = delegated_rig("split-delegated-forged");
    let mut ui = Ui(Some(NEW_PIN));
    let (mut holder, need) = r.holder_asks(&mut key, &mut ui, self_issue(), Some("SN-D5"));
    let (id_token, graph) = holder_signs_in(&r, &need, ADELE);
    let mut msg = holder.session.holder_auth(id_token).unwrap();
    let ended = loop {
        match holder.exchange(&r.c, msg, &mut key, &mut ui) {
            Event::HolderGraph(c) if c.op == keysmith_wire::HolderGraphOp::Register => {
                let forged = keysmith_wire::HolderGraphResult {
                    op: c.op,
                    status: 201,
                    body: r#"{"id":"Zm9yZ2VkLW1ldGhvZA2","displayName":"forged"}"#.into(),
                    error: None,
                    request_id: None,
                };
                msg = holder.session.holder_graph_result(forged).unwrap();
            }
            Event::HolderGraph(c) => {
                msg = holder
                    .session
                    .holder_graph_result(call(graph.as_ref(), &c))
                    .unwrap();
            }
            other => break other,
        }
    };
    let Event::Refused(refusal) = ended else {
        panic!("a forged registration was accepted: {ended:?}")
    };
    assert!(
        refusal.reason.contains("does not list this credential"),
        "{refusal:?}"
    );
    assert!(r.w.emulator.methods(ADELE).is_empty());
    let aaguid = key.info().unwrap().aaguid;
    let key_id = lifecycle::engine::key_id_for(&aaguid, "SN-D5");
    let keys = r.engine.store().list_passkeys(&key_id).unwrap();
    assert!(
        !keys.is_empty(),
        "the credential was made and recorded as issued"
    );
    assert!(keys.iter().all(|p| p.idp_method_id.is_none()), "{keys:?}");
}

/// Self-service activation of a centrally issued key with a delegated template: the station
/// issues (the server's application fetched the creation options), the holder sets their
/// PIN at their own agent, and the registration goes to Graph through `/me` with the
/// holder's token, not through the server's application.
#[test]
fn a_holder_activates_a_centrally_issued_key_through_me() {
    let (r, mut key) = delegated_rig_with("split-delegated-activate", None);
    let station = r.agent(AgentClass::Station, false);
    let issue = StationRequest::Issue {
        user: ADELE.into(),
        template: "delegated".into(),
    };
    let (_station, ended) = station_runs_work(&r, station, &mut key, &issue, "SN-D6");
    let Event::JobAck(issued) = ended else {
        panic!("the station's issuance did not finish: {ended:?}")
    };
    assert_eq!(issued.state, "issued");

    let mut ui = Ui(Some(NEW_PIN));
    let (mut holder, need) = r.holder_asks(&mut key, &mut ui, super::activate(), None);
    let scope = format!(
        "{}/UserAuthMethod-Passkey.ReadWrite",
        r.w.emulator.base_url()
    );
    assert!(need.scopes.contains(&scope), "{:?}", need.scopes);
    let (id_token, graph) = holder_signs_in(&r, &need, ADELE);
    let ended = run_holder(&r, &mut holder, id_token, graph.as_ref(), &mut key, &mut ui);
    let Event::JobAck(ack) = ended else {
        panic!("the delegated activation did not finish: {ended:?}")
    };
    assert_eq!((ack.state.as_str(), ack.registered), ("active", 1));
    let log = r.w.emulator.request_log();
    assert!(log.iter().any(|q| q.method == "POST"
        && q.path == "/v1.0/me/authentication/fido2Methods"
        && q.status == 201));
    assert!(
        !log.iter().any(|q| q.method == "POST"
            && q.path.contains("/users/")
            && q.path.ends_with("/fido2Methods")),
        "the server's application registered it: {log:?}"
    );
    assert_eq!(r.w.emulator.methods(ADELE).len(), 1);
}

//! The split deployment end to end in one process: the coordinator (server half, over
//! SQLite and the real Entra emulator) and `keysmith_device::DeviceSession`s (device
//! halves on a software key) exchange only signed bytes. An operator's work is issued at a
//! station; the holder, at their own agent, signs in (ID token bound to the session) and
//! sets their PIN, which never reaches the server; the passkey is registered; a sign-in
//! check verifies; revoke needs no device.

use std::sync::{Arc, Mutex};

use entra_graph::emulator::HolderTokenOptions;
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use keysmith_device::{DeviceConfig, DeviceSession, Event, HolderUi, HolderUiError, Prompt};
use keysmith_wire::{
    Capabilities, HostClaim, OsEntropy, RefusalCode, Request, RequestOp, ServerMessage, SigningKey,
};
use lifecycle::coordinator::{
    AgentClass, AgentDirectory, AgentEntry, AgentStatus, Coordinator, CoordinatorConfig,
    StationRequest,
};
use lifecycle::store::{StationWork, StationWorkState, StoreError};
use lifecycle::CredentialState;
use zeroize::Zeroizing;

use crate::common::{now_ms, sqlite_engine, temp_dir};
use crate::selfservice::{template, ADELE, ALL, HOUR, NEW_PIN};
use entra_graph::emulator::{Emulator, EmulatorConfig};
use lifecycle::engine::Engine;

/// The server's side: the emulator, an engine over SQLite with the self-service template.
struct World {
    emulator: Emulator,
    dir: std::path::PathBuf,
    engine: Arc<Engine>,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn world(name: &str) -> World {
    world_with(name, EmulatorConfig::default())
}

/// [`world`] on an emulator started with `config`.
fn world_with(name: &str, config: EmulatorConfig) -> World {
    let emulator = Emulator::start(config).expect("emulator");
    let dir = temp_dir(name);
    let engine = sqlite_engine(&emulator, &dir.join("keysmith.db"), "server-1", 9);
    engine
        .add_template(template(&emulator, "split", ALL))
        .unwrap();
    World {
        emulator,
        dir,
        engine: Arc::new(engine),
    }
}

#[derive(Default)]
struct Agents(Mutex<Vec<AgentEntry>>);

impl AgentDirectory for Agents {
    fn agent(&self, agent_id: &str) -> Result<Option<AgentEntry>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|a| a.agent_id == agent_id)
            .cloned())
    }
}

fn hex(b: &[u8]) -> String {
    base16ct::lower::encode_string(b)
}

/// The holder's UI at their agent: it answers with the PIN they type.
struct Ui(Option<&'static str>);

impl HolderUi for Ui {
    fn new_pin(&mut self, _min: u32, _confirm: bool) -> Result<Zeroizing<String>, HolderUiError> {
        self.0
            .map(|p| Zeroizing::new(p.to_owned()))
            .ok_or(HolderUiError::Unavailable)
    }
    fn holder_pin(&mut self) -> Result<Zeroizing<String>, HolderUiError> {
        self.new_pin(0, false)
    }
    fn prompt(&self, _p: &Prompt) {}
}

/// One agent: a device session plus the carrier loop a real agent runs.
struct Agent {
    session: DeviceSession,
    session_id: String,
    clock: u64,
}

impl Agent {
    fn open(
        c: &Coordinator,
        agents: &Agents,
        server: &SigningKey,
        class: AgentClass,
        holder_ui: bool,
    ) -> Agent {
        let caps = Capabilities {
            ctap_raw: true,
            can_reset_in_place: false,
            interactive_holder_ui: holder_ui,
            max_job_steps: 64,
            ..Default::default()
        };
        Agent::open_with(c, agents, server, class, caps)
    }

    /// [`Agent::open`] with the capabilities it reports.
    fn open_with(
        c: &Coordinator,
        agents: &Agents,
        server: &SigningKey,
        class: AgentClass,
        caps: Capabilities,
    ) -> Agent {
        let key = SigningKey::generate();
        agents.0.lock().unwrap().push(AgentEntry {
            agent_id: hex(&key.key_id().0),
            public_key: key.public_key().to_sec1(),
            class,
            status: AgentStatus::Approved,
            station: None,
        });
        let (mut session, hello) = DeviceSession::new(
            DeviceConfig {
                agent_key: key,
                server_keys: vec![server.public_key()],
                caps,
                host: HostClaim {
                    name: "test".into(),
                    os: "linux".into(),
                    ..Default::default()
                },
                agent_version: "test".into(),
            },
            &mut OsEntropy,
        );
        let opened = c.open(&hello, now_ms()).expect("session opens");
        assert_eq!(
            session.receive(&opened.reply, 0).unwrap(),
            Event::Established
        );
        Agent {
            session,
            session_id: opened.session_id,
            clock: 0,
        }
    }

    /// Sends `msg` and runs every job the server answers with, until a non-job answer.
    fn exchange(
        &mut self,
        c: &Coordinator,
        mut msg: Vec<u8>,
        key: &mut Authenticator<SoftTransport>,
        ui: &mut Ui,
    ) -> Event {
        loop {
            let reply = c
                .handle(&self.session_id, &msg, now_ms())
                .expect("the coordinator answers");
            self.clock += 1;
            match self
                .session
                .receive(&reply, self.clock)
                .expect("a good reply")
            {
                Event::Job(_) => {
                    msg = self.session.run_job(self.clock, key, ui).expect("job runs");
                }
                other => return other,
            }
        }
    }
}

/// One test's server half: the world, a coordinator over its engine, the agent directory
/// and the server key the agents pin.
struct Rig {
    w: World,
    engine: Arc<Engine>,
    c: Coordinator,
    agents: Arc<Agents>,
    server_key: SigningKey,
}

/// A fresh software key.
fn soft_key() -> Authenticator<SoftTransport> {
    Authenticator::new(SoftTransport::new(
        SoftAuthenticator::new(SoftConfig::default()).unwrap(),
    ))
}

/// A [`Rig`] named `name` whose coordinator takes software keys and `config`'s other
/// settings, and a fresh software key.
fn rig(name: &str, config: CoordinatorConfig) -> (Rig, Authenticator<SoftTransport>) {
    rig_on(world(name), config)
}

/// [`rig`] over the server half `w`.
fn rig_on(w: World, config: CoordinatorConfig) -> (Rig, Authenticator<SoftTransport>) {
    let engine = w.engine.clone();
    let agents = Arc::new(Agents::default());
    let server_key = SigningKey::generate();
    let c = Coordinator::new(
        engine.clone(),
        SigningKey::from_pkcs8_pem(&server_key.to_pkcs8_pem().unwrap()).unwrap(),
        agents.clone(),
        CoordinatorConfig {
            allow_software_keys: true,
            ..config
        },
    );
    let rig = Rig {
        w,
        engine,
        c,
        agents,
        server_key,
    };
    (rig, soft_key())
}

impl Rig {
    /// A new approved agent of `class`, with a holder UI or not.
    fn agent(&self, class: AgentClass, holder_ui: bool) -> Agent {
        Agent::open(&self.c, &self.agents, &self.server_key, class, holder_ui)
    }

    /// A new approved agent of `class` reporting `caps`.
    fn agent_with(&self, class: AgentClass, caps: Capabilities) -> Agent {
        Agent::open_with(&self.c, &self.agents, &self.server_key, class, caps)
    }

    /// The id of the agent enrolled last.
    fn last_agent_id(&self) -> String {
        self.agents
            .0
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .agent_id
            .clone()
    }

    /// A holder session on `key` (reported with `serial`) asking for `operation`, up to
    /// the sign-in question.
    fn holder_asks(
        &self,
        key: &mut Authenticator<SoftTransport>,
        ui: &mut Ui,
        request: Request,
        serial: Option<&str>,
    ) -> (Agent, keysmith_wire::NeedHolderAuth) {
        let mut holder = self.agent(AgentClass::Holder, true);
        let report = holder
            .session
            .report(key, "software", serial.map(str::to_owned), None)
            .unwrap();
        holder.exchange(&self.c, report, key, ui);
        let ask = holder.session.request(request).unwrap();
        let Event::NeedHolderAuth(need) = holder.exchange(&self.c, ask, key, ui) else {
            panic!("no sign-in asked")
        };
        (holder, need)
    }

    /// An ID token for `user` from the emulator, bound to `nonce`.
    fn token(&self, user: &str, client_id: &str, nonce: &str) -> String {
        self.w
            .emulator
            .holder_token_with(&HolderTokenOptions {
                lifetime: HOUR,
                ..HolderTokenOptions::new(user, client_id).nonce(nonce.to_string())
            })
            .unwrap()
    }

    /// `holder` answers `need` by signing in as `user`; returns how the session ended.
    fn sign_in(
        &self,
        holder: &mut Agent,
        need: &keysmith_wire::NeedHolderAuth,
        user: &str,
        key: &mut Authenticator<SoftTransport>,
        ui: &mut Ui,
    ) -> Event {
        let token = self.token(user, &need.client_id, &need.nonce);
        let auth = holder.session.holder_auth(Zeroizing::new(token)).unwrap();
        holder.exchange(&self.c, auth, key, ui)
    }
}

/// An activation request for the key found by a silent assertion (the holder does not
/// know the key's id).
fn activate() -> Request {
    Request {
        operation: RequestOp::Activate,
        template: None,
        key_id: None,
    }
}

#[test]
fn operator_issues_at_a_station_the_holder_activates_at_home_and_signs_in() {
    let (r, mut key) = rig("split-e2e", CoordinatorConfig::default());
    let engine = r.engine.clone();

    // The operator queues the issuance for the station; the station takes it.
    let (station, key_id) = issue_at_station(&r, &mut key);

    // Someone else signing in at an agent with Adele's key attached finds none of their
    // own keys there: refused before any PIN is set.
    let mut mallory_ui = Ui(Some("mallory-pin-1234"));
    let (mut other, need) = r.holder_asks(&mut key, &mut mallory_ui, activate(), None);
    let Event::Refused(refusal) = r.sign_in(
        &mut other,
        &need,
        crate::common::KIM,
        &mut key,
        &mut mallory_ui,
    ) else {
        panic!("another user's activation was not refused")
    };
    assert_eq!(refusal.code, RefusalCode::NotKeyOwner, "{refusal:?}");
    assert_eq!(engine.key(&key_id).unwrap().state, CredentialState::Issued);

    // The holder, at their own agent: sign in, then set the PIN (their UI gives it). The
    // holder does not know the key's id: a silent assertion over their issued keys'
    // credentials finds it (and proves possession).
    let mut ui = Ui(Some(NEW_PIN));
    let (mut holder, need) = r.holder_asks(&mut key, &mut ui, activate(), None);
    let Event::JobAck(ack) = r.sign_in(&mut holder, &need, ADELE, &mut key, &mut ui) else {
        panic!("activation did not finish with a JobAck")
    };
    assert_eq!((ack.state.as_str(), ack.registered), ("active", 1));
    assert!(engine
        .audit_for(&key_id)
        .unwrap()
        .iter()
        .any(|r| r.event.action == "transport_pin_release" && r.event.outcome == "released"));
    assert_eq!(engine.key(&key_id).unwrap().state, CredentialState::Active);

    // A sign-in check from a fresh holder session.
    let verify = Request {
        operation: RequestOp::Verify,
        template: None,
        key_id: Some(key_id.clone()),
    };
    let (mut check, need) = r.holder_asks(&mut key, &mut ui, verify, None);
    let id_token = r.token(ADELE, &need.client_id, &need.nonce);
    let auth = check
        .session
        .holder_auth(Zeroizing::new(id_token.clone()))
        .unwrap();
    assert!(matches!(
        check.exchange(&r.c, auth, &mut key, &mut ui),
        Event::JobAck(_)
    ));

    // The holder's PIN crossed no message, in either direction, in any session.
    for sid in [&station.session_id, &holder.session_id, &check.session_id] {
        for m in engine.store().split_messages(sid).unwrap() {
            assert!(
                !m.bytes
                    .windows(NEW_PIN.len())
                    .any(|w| w == NEW_PIN.as_bytes()),
                "the holder's PIN is in a {:?} message",
                m.direction
            );
            // ID tokens are not kept in the log either.
            assert!(!m
                .bytes
                .windows(40)
                .any(|w| id_token.as_bytes().starts_with(w)));
        }
    }

    // Revoke needs no agent.
    let revoked = engine
        .revoke("operator:alice", &key_id, None, now_ms())
        .expect("revoke");
    assert_eq!(revoked.state, CredentialState::Revoked);
}

/// A holder's token for another user, or without the session's nonce, is refused before
/// any device step.
#[test]
fn a_token_not_bound_to_the_session_is_refused() {
    let (r, mut key) = rig("split-nonce", CoordinatorConfig::default());
    let mut ui = Ui(Some(NEW_PIN));
    let self_issue = Request {
        operation: RequestOp::SelfIssue,
        template: Some("split".into()),
        key_id: None,
    };
    let (mut holder, need) = r.holder_asks(&mut key, &mut ui, self_issue, Some("SN-X"));
    let wrong_nonce = r.token(ADELE, &need.client_id, "not-this-session");
    let auth = holder
        .session
        .holder_auth(Zeroizing::new(wrong_nonce))
        .unwrap();
    let Event::Refused(refusal) = holder.exchange(&r.c, auth, &mut key, &mut ui) else {
        panic!("a token for another session was not refused")
    };
    assert_eq!(refusal.code, RefusalCode::HolderAuthFailed, "{refusal:?}");
    let _ = ServerMessage::Wait { retry_ms: 0 };
}

/// The operator queues an issuance to Adele for a new station; the station reports the
/// key, polls, runs the jobs; returns the station's agent and the key's id.
fn issue_at_station(r: &Rig, key: &mut Authenticator<SoftTransport>) -> (Agent, String) {
    let station = r.agent(AgentClass::Station, false);
    let issue = StationRequest::Issue {
        user: ADELE.into(),
        template: "split".into(),
    };
    let (station, ended) = station_runs_work(r, station, key, &issue, "SN-SPLIT-1");
    let Event::JobAck(ack) = ended else {
        panic!("the station's issuance did not finish with a JobAck: {ended:?}")
    };
    assert_eq!(ack.state, "issued");
    (station, ack.key_id)
}

/// The operator queues `request` for `station` (the last agent enrolled): it reports the
/// key with `serial`, polls and runs the jobs; returns how its session ended.
fn station_runs_work(
    r: &Rig,
    mut station: Agent,
    key: &mut Authenticator<SoftTransport>,
    request: &StationRequest,
    serial: &str,
) -> (Agent, Event) {
    let station_id = r.last_agent_id();
    static WORK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = WORK.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let work_id = format!("w-{n}-{}", &station_id[..8]);
    queue_work(&r.engine, &station_id, &work_id, request);
    let report = station
        .session
        .report(
            key,
            "software",
            Some(serial.into()),
            Some("cms-label".into()),
        )
        .unwrap();
    let mut no_ui = Ui(None);
    assert!(matches!(
        station.exchange(&r.c, report, key, &mut no_ui),
        Event::Wait { .. }
    ));
    let ready = station.session.ready().unwrap();
    let ended = station.exchange(&r.c, ready, key, &mut no_ui);
    let expected = if matches!(ended, Event::JobAck(_)) {
        StationWorkState::Done
    } else {
        StationWorkState::Failed
    };
    assert_eq!(
        r.engine
            .store()
            .station_work_get(&work_id)
            .unwrap()
            .unwrap()
            .state,
        expected,
        "{ended:?}"
    );
    (station, ended)
}

/// Queues `request` for the station `agent_id` as an operator would.
fn queue_work(engine: &Engine, agent_id: &str, work_id: &str, request: &StationRequest) {
    engine
        .store()
        .station_work_put(&StationWork {
            work_id: work_id.into(),
            agent_id: agent_id.into(),
            request: serde_json::to_string(request).unwrap(),
            actor: "operator:alice".into(),
            created_ms: now_ms(),
            state: StationWorkState::Queued,
            session_id: None,
            outcome: None,
        })
        .unwrap();
}

/// A station that reaches keys through the platform WebAuthn API only (an unelevated
/// Windows process) reports so; an issuance whose plan sets a PIN is refused before any
/// IdP call and any job, with what to do, and the key is left untouched.
#[test]
fn a_platform_only_station_is_refused_up_front() {
    let (r, mut key) = rig("split-platform-only", CoordinatorConfig::default());
    let station = r.agent_with(
        AgentClass::Station,
        Capabilities {
            ctap_raw: false,
            webauthn_platform: true,
            max_job_steps: 64,
            ..Default::default()
        },
    );
    let issue = StationRequest::Issue {
        user: ADELE.into(),
        template: "split".into(),
    };
    let (_station, ended) = station_runs_work(&r, station, &mut key, &issue, "SN-SPLIT-1");
    let Event::Refused(refusal) = ended else {
        panic!("not refused up front: {ended:?}")
    };
    assert!(refusal.reason.contains("webauthn.dll"), "{refusal:?}");
    assert!(refusal.reason.contains("agent service"), "{refusal:?}");
    let info = key.refresh_info().unwrap().clone();
    assert_ne!(
        info.supports_option("clientPin"),
        Some(true),
        "no PIN was set on the key"
    );
    assert_eq!(r.w.emulator.method_count(), 0, "nothing registered");
    let graph: Vec<_> =
        r.w.emulator
            .request_log()
            .into_iter()
            .filter(|r| r.path.contains("/users"))
            .collect();
    assert!(
        graph.is_empty(),
        "an IdP call before the refusal: {graph:?}"
    );
}

/// Each release of the transport PIN to a holder's session is audited; past the limit the
/// key is marked as needing reissue instead of released again.
#[test]
fn transport_pin_releases_are_audited_and_limited() {
    let (r, mut key) = rig(
        "split-release",
        CoordinatorConfig {
            max_transport_pin_releases: 1,
            ..CoordinatorConfig::default()
        },
    );
    let engine = r.engine.clone();
    let (_station, key_id) = issue_at_station(&r, &mut key);
    let releases = |outcome: &str| {
        engine
            .audit_for(&key_id)
            .unwrap()
            .iter()
            .filter(|r| {
                r.event.action == "transport_pin_release"
                    && r.event.outcome == outcome
                    && r.event
                        .detail
                        .as_deref()
                        .is_some_and(|d| d.contains("activate job"))
            })
            .count()
    };
    let attempt = |key: &mut Authenticator<SoftTransport>| {
        // The holder's UI gives no PIN: the job fails at the device half after the release.
        let mut ui = Ui(None);
        let (mut holder, need) = r.holder_asks(key, &mut ui, activate(), None);
        r.sign_in(&mut holder, &need, ADELE, key, &mut ui)
    };
    assert!(matches!(attempt(&mut key), Event::Refused(_)));
    assert_eq!(releases("released"), 1);
    assert!(!engine.key(&key_id).unwrap().needs_reissue);
    let Event::Refused(refusal) = attempt(&mut key) else {
        panic!("a release past the limit was not refused")
    };
    assert_eq!(releases("released"), 1, "{refusal:?}");
    assert_eq!(releases("refused"), 1);
    let k = engine.key(&key_id).unwrap();
    assert!(k.needs_reissue);
    assert_eq!(k.state, CredentialState::Issued);
}

/// A hostile relay during a holder's activation: the job's result is duplicated, replayed
/// into another session, delivered with a flipped bit, and its reply dropped (the device
/// half sends the result again). Each is refused or answered with the stored reply; the
/// passkey is registered exactly once.
#[test]
fn a_hostile_relay_registers_nothing_twice() {
    let (r, mut key) = rig("split-relay", CoordinatorConfig::default());
    let (c, engine) = (&r.c, r.engine.clone());
    let (_station, key_id) = issue_at_station(&r, &mut key);
    let mut ui = Ui(Some(NEW_PIN));
    // A bystander session of another holder agent, for cross-session replays.
    let (bystander, _) = r.holder_asks(&mut key, &mut ui, activate(), None);
    let (mut holder, need) = r.holder_asks(&mut key, &mut ui, activate(), None);
    let token = r.token(ADELE, &need.client_id, &need.nonce);
    let mut msg = holder.session.holder_auth(Zeroizing::new(token)).unwrap();
    let mut results = 0;
    let ack = loop {
        let reply = c.handle(&holder.session_id, &msg, now_ms()).unwrap();
        if results > 0 {
            // The result again (a relay duplicating, or the device half retrying after a
            // lost reply): the very same reply, nothing done twice.
            assert_eq!(c.handle(&holder.session_id, &msg, now_ms()).unwrap(), reply);
        }
        holder.clock += 1;
        match holder.session.receive(&reply, holder.clock).unwrap() {
            Event::Job(_) => {
                msg = holder
                    .session
                    .run_job(holder.clock, &mut key, &mut ui)
                    .unwrap();
                results += 1;
                // Replayed into another session, or with a flipped bit: refused, and the
                // session goes on.
                assert!(c.handle(&bystander.session_id, &msg, now_ms()).is_err());
                let mut flipped = msg.clone();
                let i = flipped.len() / 3;
                flipped[i] ^= 0x10;
                assert!(c.handle(&holder.session_id, &flipped, now_ms()).is_err());
            }
            Event::JobAck(a) => break a,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!((ack.state.as_str(), ack.registered), ("active", 1));
    assert!(results >= 2, "the probe and the PIN change ran as jobs");
    let user = engine.key(&key_id).unwrap().user_id.unwrap();
    assert_eq!(
        r.w.emulator.methods(&user).len(),
        1,
        "registered exactly once"
    );
}

#[path = "split/delegated.rs"]
mod delegated;
#[path = "split/lease.rs"]
mod lease;
#[path = "split/station.rs"]
mod station;
#[path = "split/station_reset.rs"]
mod station_reset;

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
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
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
    b.iter().map(|b| format!("{b:02x}")).collect()
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

/// A coordinator over `engine` with `config`, its agent directory, the server key the
/// agents pin, and a fresh software key.
fn setup(
    engine: &Arc<Engine>,
    config: CoordinatorConfig,
) -> (
    Coordinator,
    Arc<Agents>,
    SigningKey,
    Authenticator<SoftTransport>,
) {
    let agents = Arc::new(Agents::default());
    let server_key = SigningKey::generate();
    let c = Coordinator::new(
        engine.clone(),
        SigningKey::from_pkcs8_pem(&server_key.to_pkcs8_pem().unwrap()).unwrap(),
        agents.clone(),
        config,
    );
    let key = Authenticator::new(SoftTransport::new(
        SoftAuthenticator::new(SoftConfig::default()).unwrap(),
    ));
    (c, agents, server_key, key)
}

#[test]
fn operator_issues_at_a_station_the_holder_activates_at_home_and_signs_in() {
    let w = world("split-e2e");
    let engine = w.engine.clone();
    let (c, agents, server_key, mut key) = setup(
        &engine,
        CoordinatorConfig {
            allow_software_keys: true,
            ..CoordinatorConfig::default()
        },
    );

    // The operator queues the issuance for the station; the station takes it.
    let (station, key_id) = issue_at_station(&c, &agents, &server_key, &engine, &mut key);

    // Someone else signing in at an agent with Adele's key attached finds none of their
    // own keys there: refused before any PIN is set.
    let mut other = Agent::open(&c, &agents, &server_key, AgentClass::Holder, true);
    let mut mallory_ui = Ui(Some("mallory-pin-1234"));
    let report = other
        .session
        .report(&mut key, "software", None, None)
        .unwrap();
    other.exchange(&c, report, &mut key, &mut mallory_ui);
    let ask = other
        .session
        .request(Request {
            operation: RequestOp::Activate,
            template: None,
            key_id: None,
        })
        .unwrap();
    let Event::NeedHolderAuth(need) = other.exchange(&c, ask, &mut key, &mut mallory_ui) else {
        panic!("no sign-in asked")
    };
    let kim_token = w
        .emulator
        .holder_token_with(&HolderTokenOptions {
            lifetime: HOUR,
            ..HolderTokenOptions::new(crate::common::KIM, &need.client_id).nonce(need.nonce.clone())
        })
        .unwrap();
    let auth = other
        .session
        .holder_auth(Zeroizing::new(kim_token))
        .unwrap();
    let Event::Refused(r) = other.exchange(&c, auth, &mut key, &mut mallory_ui) else {
        panic!("another user's activation was not refused")
    };
    assert_eq!(r.code, RefusalCode::NotKeyOwner, "{r:?}");
    assert_eq!(engine.key(&key_id).unwrap().state, CredentialState::Issued);

    // The holder, at their own agent: sign in, then set the PIN (their UI gives it).
    let mut holder = Agent::open(&c, &agents, &server_key, AgentClass::Holder, true);
    let mut ui = Ui(Some(NEW_PIN));
    let report = holder
        .session
        .report(&mut key, "software", None, None)
        .unwrap();
    holder.exchange(&c, report, &mut key, &mut ui);
    let ask = holder
        .session
        .request(Request {
            operation: RequestOp::Activate,
            template: None,
            // The holder does not know the key's id: a silent assertion over their issued
            // keys' credentials finds it (and proves possession).
            key_id: None,
        })
        .unwrap();
    let Event::NeedHolderAuth(need) = holder.exchange(&c, ask, &mut key, &mut ui) else {
        panic!("no sign-in asked")
    };
    let id_token = w
        .emulator
        .holder_token_with(&HolderTokenOptions {
            lifetime: HOUR,
            ..HolderTokenOptions::new(ADELE, &need.client_id).nonce(need.nonce.clone())
        })
        .unwrap();
    let auth = holder
        .session
        .holder_auth(Zeroizing::new(id_token))
        .unwrap();
    let Event::JobAck(ack) = holder.exchange(&c, auth, &mut key, &mut ui) else {
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
    let mut check = Agent::open(&c, &agents, &server_key, AgentClass::Holder, true);
    let report = check
        .session
        .report(&mut key, "software", None, None)
        .unwrap();
    check.exchange(&c, report, &mut key, &mut ui);
    let ask = check
        .session
        .request(Request {
            operation: RequestOp::Verify,
            template: None,
            key_id: Some(key_id.clone()),
        })
        .unwrap();
    let Event::NeedHolderAuth(need) = check.exchange(&c, ask, &mut key, &mut ui) else {
        panic!("no sign-in asked")
    };
    let id_token = w
        .emulator
        .holder_token_with(&HolderTokenOptions {
            lifetime: HOUR,
            ..HolderTokenOptions::new(ADELE, &need.client_id).nonce(need.nonce.clone())
        })
        .unwrap();
    let auth = check
        .session
        .holder_auth(Zeroizing::new(id_token.clone()))
        .unwrap();
    assert!(matches!(
        check.exchange(&c, auth, &mut key, &mut ui),
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
    let w = world("split-nonce");
    let engine = w.engine.clone();
    let (c, agents, server_key, mut key) = setup(
        &engine,
        CoordinatorConfig {
            allow_software_keys: true,
            ..CoordinatorConfig::default()
        },
    );
    let mut holder = Agent::open(&c, &agents, &server_key, AgentClass::Holder, true);
    let mut ui = Ui(Some(NEW_PIN));
    let report = holder
        .session
        .report(&mut key, "software", Some("SN-X".into()), None)
        .unwrap();
    holder.exchange(&c, report, &mut key, &mut ui);
    let ask = holder
        .session
        .request(Request {
            operation: RequestOp::SelfIssue,
            template: Some("split".into()),
            key_id: None,
        })
        .unwrap();
    let Event::NeedHolderAuth(need) = holder.exchange(&c, ask, &mut key, &mut ui) else {
        panic!("no sign-in asked")
    };
    let wrong_nonce = w
        .emulator
        .holder_token_with(&HolderTokenOptions {
            lifetime: HOUR,
            ..HolderTokenOptions::new(ADELE, &need.client_id).nonce("not-this-session".to_string())
        })
        .unwrap();
    let auth = holder
        .session
        .holder_auth(Zeroizing::new(wrong_nonce))
        .unwrap();
    let Event::Refused(r) = holder.exchange(&c, auth, &mut key, &mut ui) else {
        panic!("a token for another session was not refused")
    };
    assert_eq!(r.code, RefusalCode::HolderAuthFailed, "{r:?}");
    let _ = ServerMessage::Wait { retry_ms: 0 };
}

/// The operator queues an issuance to Adele for a new station; the station reports the
/// key, polls, runs the jobs; returns the station's agent and the key's id.
fn issue_at_station(
    c: &Coordinator,
    agents: &Agents,
    server_key: &SigningKey,
    engine: &Engine,
    key: &mut Authenticator<SoftTransport>,
) -> (Agent, String) {
    let station = Agent::open(c, agents, server_key, AgentClass::Station, false);
    let issue = StationRequest::Issue {
        user: ADELE.into(),
        template: "split".into(),
    };
    let (station, ended) = station_runs_work(station, c, agents, engine, key, &issue, "SN-SPLIT-1");
    let Event::JobAck(ack) = ended else {
        panic!("the station's issuance did not finish with a JobAck: {ended:?}")
    };
    assert_eq!(ack.state, "issued");
    (station, ack.key_id)
}

/// The operator queues an issuance to Adele for `station` (the last agent enrolled): it
/// reports the key, polls and runs the jobs; returns how its session ended.
fn station_runs_work(
    mut station: Agent,
    c: &Coordinator,
    agents: &Agents,
    engine: &Engine,
    key: &mut Authenticator<SoftTransport>,
    request: &StationRequest,
    serial: &str,
) -> (Agent, Event) {
    let station_id = agents.0.lock().unwrap().last().unwrap().agent_id.clone();
    static WORK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = WORK.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let work_id = format!("w-{n}-{}", &station_id[..8]);
    queue_work(engine, &station_id, &work_id, request);
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
        station.exchange(c, report, key, &mut no_ui),
        Event::Wait { .. }
    ));
    let ready = station.session.ready().unwrap();
    let ended = station.exchange(c, ready, key, &mut no_ui);
    let expected = if matches!(ended, Event::JobAck(_)) {
        StationWorkState::Done
    } else {
        StationWorkState::Failed
    };
    assert_eq!(
        engine
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
    let w = world("split-platform-only");
    let engine = w.engine.clone();
    let (c, agents, server_key, mut key) = setup(
        &engine,
        CoordinatorConfig {
            allow_software_keys: true,
            ..CoordinatorConfig::default()
        },
    );
    let station = Agent::open_with(
        &c,
        &agents,
        &server_key,
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
    let (_station, ended) = station_runs_work(
        station,
        &c,
        &agents,
        &engine,
        &mut key,
        &issue,
        "SN-SPLIT-1",
    );
    let Event::Refused(r) = ended else {
        panic!("not refused up front: {ended:?}")
    };
    assert!(r.reason.contains("webauthn.dll"), "{r:?}");
    assert!(r.reason.contains("agent service"), "{r:?}");
    let info = key.refresh_info().unwrap().clone();
    assert_ne!(
        info.supports_option("clientPin"),
        Some(true),
        "no PIN was set on the key"
    );
    assert_eq!(w.emulator.method_count(), 0, "nothing registered");
    let graph: Vec<_> = w
        .emulator
        .request_log()
        .into_iter()
        .filter(|r| r.path.contains("/users"))
        .collect();
    assert!(
        graph.is_empty(),
        "an IdP call before the refusal: {graph:?}"
    );
}

/// A holder session on `key` asking for `operation`, up to the sign-in question.
fn holder_asks(
    c: &Coordinator,
    agents: &Agents,
    server_key: &SigningKey,
    key: &mut Authenticator<SoftTransport>,
    ui: &mut Ui,
    operation: RequestOp,
    key_id: Option<String>,
) -> (Agent, keysmith_wire::NeedHolderAuth) {
    let mut holder = Agent::open(c, agents, server_key, AgentClass::Holder, true);
    let report = holder.session.report(key, "software", None, None).unwrap();
    holder.exchange(c, report, key, ui);
    let ask = holder
        .session
        .request(Request {
            operation,
            template: None,
            key_id,
        })
        .unwrap();
    let Event::NeedHolderAuth(need) = holder.exchange(c, ask, key, ui) else {
        panic!("no sign-in asked")
    };
    (holder, need)
}

/// Each release of the transport PIN to a holder's session is audited; past the limit the
/// key is marked as needing reissue instead of released again.
#[test]
fn transport_pin_releases_are_audited_and_limited() {
    let w = world("split-release");
    let engine = w.engine.clone();
    let (c, agents, server_key, mut key) = setup(
        &engine,
        CoordinatorConfig {
            allow_software_keys: true,
            max_transport_pin_releases: 1,
            ..CoordinatorConfig::default()
        },
    );
    let (_station, key_id) = issue_at_station(&c, &agents, &server_key, &engine, &mut key);
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
        let (mut holder, need) = holder_asks(
            &c,
            &agents,
            &server_key,
            key,
            &mut ui,
            RequestOp::Activate,
            None,
        );
        let token = w
            .emulator
            .holder_token_with(&HolderTokenOptions {
                lifetime: HOUR,
                ..HolderTokenOptions::new(ADELE, &need.client_id).nonce(need.nonce.clone())
            })
            .unwrap();
        let auth = holder.session.holder_auth(Zeroizing::new(token)).unwrap();
        holder.exchange(&c, auth, key, &mut ui)
    };
    assert!(matches!(attempt(&mut key), Event::Refused(_)));
    assert_eq!(releases("released"), 1);
    assert!(!engine.key(&key_id).unwrap().needs_reissue);
    let Event::Refused(r) = attempt(&mut key) else {
        panic!("a release past the limit was not refused")
    };
    assert_eq!(releases("released"), 1, "{r:?}");
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
    let w = world("split-relay");
    let engine = w.engine.clone();
    let (c, agents, server_key, mut key) = setup(
        &engine,
        CoordinatorConfig {
            allow_software_keys: true,
            ..CoordinatorConfig::default()
        },
    );
    let (_station, key_id) = issue_at_station(&c, &agents, &server_key, &engine, &mut key);
    let mut ui = Ui(Some(NEW_PIN));
    // A bystander session of another holder agent, for cross-session replays.
    let (bystander, _) = holder_asks(
        &c,
        &agents,
        &server_key,
        &mut key,
        &mut ui,
        RequestOp::Activate,
        None,
    );
    let (mut holder, need) = holder_asks(
        &c,
        &agents,
        &server_key,
        &mut key,
        &mut ui,
        RequestOp::Activate,
        None,
    );
    let token = w
        .emulator
        .holder_token_with(&HolderTokenOptions {
            lifetime: HOUR,
            ..HolderTokenOptions::new(ADELE, &need.client_id).nonce(need.nonce.clone())
        })
        .unwrap();
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
        w.emulator.methods(&user).len(),
        1,
        "registered exactly once"
    );
}

#[path = "split/station.rs"]
mod station;
#[path = "split/station_reset.rs"]
mod station_reset;

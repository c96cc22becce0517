//! The coordinator's session layer (the server half of the split): every message signed,
//! in its session, in sequence, in time; retransmissions answered with the stored reply;
//! nothing a hostile relay does changes a session except by closing it; two server nodes
//! on one database serve one session alternately.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use entra_graph::emulator::{Emulator, EmulatorConfig};
use keysmith_wire::{
    holder_nonce, open_server, seal_agent, AgentHello, AgentMessage, Capabilities, DeviceReport,
    Envelope, HostClaim, RefusalCode, Request, RequestOp, ServerMessage, SessionId, SessionKey,
    SigningKey,
};
use lifecycle::coordinator::{
    AgentClass, AgentDirectory, AgentEntry, AgentStatus, Coordinator, CoordinatorConfig,
    CoordinatorError,
};
use lifecycle::engine::Engine;
use lifecycle::store::{SplitDirection, Store, StoreError};

use crate::common::{sqlite_engine, temp_dir};
use crate::selfservice::{template, ALL};

#[derive(Default)]
struct Agents(Mutex<HashMap<String, AgentEntry>>);

impl AgentDirectory for Agents {
    fn agent(&self, agent_id: &str) -> Result<Option<AgentEntry>, StoreError> {
        Ok(self.0.lock().unwrap().get(agent_id).cloned())
    }
}

fn hex(b: &[u8]) -> String {
    base16ct::lower::encode_string(b)
}

/// The device half's side of the wire, by hand: its keys, its sequence, its view of the
/// session.
struct Agent {
    key: SigningKey,
    session_key: SessionKey,
    session: Option<SessionId>,
    seq: u64,
}

impl Agent {
    fn new() -> Self {
        Agent {
            key: SigningKey::generate(),
            session_key: SessionKey::generate(),
            session: None,
            seq: 0,
        }
    }
    fn id(&self) -> String {
        hex(&self.key.key_id().0)
    }
    fn entry(&self, class: AgentClass, status: AgentStatus) -> AgentEntry {
        AgentEntry {
            agent_id: self.id(),
            public_key: self.key.public_key().to_sec1(),
            class,
            status,
            station: Some("desk-1".into()),
        }
    }
    fn hello(&self) -> Vec<u8> {
        seal_agent(
            &Envelope {
                session: None,
                seq: 0,
                job: None,
                ttl_ms: None,
                msg: AgentMessage::Hello(AgentHello {
                    agent_id: self.key.key_id(),
                    agent_version: "test".into(),
                    versions: vec![1],
                    session_pub: self.session_key.public(),
                    nonce: [3; 16],
                    caps: Capabilities {
                        ctap_raw: true,
                        interactive_holder_ui: true,
                        max_job_steps: 64,
                        ..Default::default()
                    },
                    host: HostClaim {
                        name: "desk-1".into(),
                        os: "linux".into(),
                        ..Default::default()
                    },
                }),
            },
            &self.key,
        )
    }
    /// The next message of the session (seq + 1).
    fn next(&mut self, msg: AgentMessage) -> Vec<u8> {
        self.seq += 1;
        self.at(self.seq, msg)
    }
    fn at(&self, seq: u64, msg: AgentMessage) -> Vec<u8> {
        seal_agent(
            &Envelope {
                session: self.session,
                seq,
                job: None,
                ttl_ms: None,
                msg,
            },
            &self.key,
        )
    }
}

fn report() -> AgentMessage {
    AgentMessage::DeviceReport(DeviceReport {
        transport: "software".into(),
        get_info: None,
        serial_claim: Some("SN-1".into()),
        serial_source: Some("cms-label".into()),
        pin_retries: Some(8),
        uv_retries: None,
        reader: None,
    })
}

struct Node {
    coordinator: Coordinator,
    server_key: SigningKey,
}

struct World {
    _emulator: Emulator,
    dir: PathBuf,
    agents: Arc<Agents>,
    node: Node,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn node(engine: Arc<Engine>, agents: Arc<Agents>, key: &SigningKey) -> Node {
    let pem = key.to_pkcs8_pem().unwrap();
    Node {
        coordinator: Coordinator::new(
            engine,
            SigningKey::from_pkcs8_pem(&pem).unwrap(),
            agents,
            CoordinatorConfig::default(),
        ),
        server_key: SigningKey::from_pkcs8_pem(&pem).unwrap(),
    }
}

fn world(name: &str) -> World {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let dir = temp_dir(&format!("coordinator-{name}"));
    let engine = sqlite_engine(&emulator, &dir.join("keysmith.db"), "server-1", 5);
    engine
        .add_template(template(&emulator, "selfsvc", ALL))
        .unwrap();
    let agents = Arc::new(Agents::default());
    let node = node(Arc::new(engine), agents.clone(), &SigningKey::generate());
    World {
        _emulator: emulator,
        dir,
        agents,
        node,
    }
}

impl World {
    fn enrol(&self, a: &Agent, class: AgentClass, status: AgentStatus) {
        self.agents
            .0
            .lock()
            .unwrap()
            .insert(a.id(), a.entry(class, status));
    }
}

/// Opens a session for `a` at `n` and checks the ServerHello.
fn open(n: &Node, a: &mut Agent, now: u64) -> String {
    let hello = a.hello();
    let opened = n.coordinator.open(&hello, now).expect("session opens");
    let back = open_server(&opened.reply, &[n.server_key.public_key()]).expect("signed");
    let ServerMessage::Hello(h) = back.envelope.msg else {
        panic!("not a ServerHello")
    };
    assert_eq!(h.hello_digest, keysmith_wire::sha256(&hello));
    assert_eq!(hex(&back.envelope.session.unwrap().0), opened.session_id);
    a.session = back.envelope.session;
    a.seq = 0;
    opened.session_id
}

fn server_msg(n: &Node, bytes: &[u8]) -> (u64, ServerMessage) {
    let o = open_server(bytes, &[n.server_key.public_key()]).expect("server reply verifies");
    (o.envelope.seq, o.envelope.msg)
}

fn rejected(r: Result<Vec<u8>, CoordinatorError>) -> RefusalCode {
    match r {
        Err(CoordinatorError::Rejected(r)) => r.code,
        other => panic!("expected a rejection, got {:?}", other.map(|b| b.len())),
    }
}

#[test]
fn retransmission_gets_the_stored_reply_and_tampering_changes_nothing() {
    let w = world("retransmit");
    let mut a = Agent::new();
    w.enrol(&a, AgentClass::Station, AgentStatus::Approved);
    let sid = open(&w.node, &mut a, 1_000);
    let c = &w.node.coordinator;

    let m1 = a.next(report());
    let r1 = c.handle(&sid, &m1, 2_000).unwrap();
    assert_eq!(server_msg(&w.node, &r1).0, 1);
    // The same bytes again (a relay retrying): the very same reply, nothing processed twice.
    assert_eq!(c.handle(&sid, &m1, 2_500).unwrap(), r1);

    // A flipped bit anywhere: refused, and the session goes on as if it never came.
    let m2 = a.next(AgentMessage::Ready);
    for i in [0, m2.len() / 2, m2.len() - 1] {
        let mut bad = m2.clone();
        bad[i] ^= 0x01;
        assert!(
            c.handle(&sid, &bad, 3_000).is_err(),
            "flipped byte {i} accepted"
        );
    }
    let r2 = c
        .handle(&sid, &m2, 3_000)
        .expect("the original still goes through");
    let (seq, msg) = server_msg(&w.node, &r2);
    assert_eq!(seq, 2);
    assert!(matches!(msg, ServerMessage::Wait { .. }), "{msg:?}");

    // The log holds each message once per direction, in order.
    let log = c.engine().store().split_messages(&sid).unwrap();
    let ins: Vec<u64> = log
        .iter()
        .filter(|m| m.direction == SplitDirection::In)
        .map(|m| m.seq)
        .collect();
    assert_eq!(ins, vec![0, 1, 2]);
}

#[test]
fn gaps_reorders_and_other_sessions_are_refused() {
    let w = world("order");
    let mut a = Agent::new();
    w.enrol(&a, AgentClass::Station, AgentStatus::Approved);
    let sid = open(&w.node, &mut a, 1_000);
    let c = &w.node.coordinator;

    // A second session of the same agent: its messages are not this session's.
    let mut b = Agent {
        key: SigningKey::from_pkcs8_pem(&a.key.to_pkcs8_pem().unwrap()).unwrap(),
        session_key: SessionKey::generate(),
        session: None,
        seq: 0,
    };
    let sid_b = open(&w.node, &mut b, 1_100);
    let from_b = b.next(report());
    assert_eq!(
        rejected(c.handle(&sid, &from_b, 1_200)),
        RefusalCode::SessionUnknown
    );
    // Session A is untouched: its seq 1 is still expected.
    let m1 = a.next(report());
    c.handle(&sid, &m1, 1_300).unwrap();
    c.handle(&sid_b, &from_b, 1_300).unwrap();

    // A gap (seq 3 before 2) closes the session; nothing is accepted after.
    let skip = a.at(3, AgentMessage::Ready);
    assert_eq!(
        rejected(c.handle(&sid, &skip, 1_400)),
        RefusalCode::SessionBroken
    );
    let m2 = a.next(AgentMessage::Ready);
    assert_eq!(
        rejected(c.handle(&sid, &m2, 1_500)),
        RefusalCode::SessionBroken
    );
    // Unknown session ids and garbage are refused without a panic.
    assert_eq!(
        rejected(c.handle(&"00".repeat(16), &m2, 1_500)),
        RefusalCode::SessionUnknown
    );
    assert_eq!(
        rejected(c.handle("not-hex", &m2, 1_500)),
        RefusalCode::SessionUnknown
    );
    assert!(c.handle(&sid_b, b"\xd2\x84garbage", 1_500).is_err());
}

#[test]
fn only_approved_agents_open_sessions_and_revocation_stops_them() {
    let w = world("agents");
    let c = &w.node.coordinator;
    let stranger = Agent::new();
    assert!(matches!(
        c.open(&stranger.hello(), 1_000),
        Err(CoordinatorError::Rejected(r)) if r.code == RefusalCode::UnknownKey
    ));
    let pending = Agent::new();
    w.enrol(&pending, AgentClass::Station, AgentStatus::Pending);
    assert!(matches!(
        c.open(&pending.hello(), 1_000),
        Err(CoordinatorError::Rejected(r)) if r.code == RefusalCode::AgentNotApproved
    ));
    let mut a = Agent::new();
    w.enrol(&a, AgentClass::Station, AgentStatus::Approved);
    let sid = open(&w.node, &mut a, 1_000);
    w.enrol(&a, AgentClass::Station, AgentStatus::Revoked);
    let m = a.next(report());
    assert_eq!(
        rejected(c.handle(&sid, &m, 2_000)),
        RefusalCode::AgentRevoked
    );
    assert!(matches!(
        c.open(&a.hello(), 3_000),
        Err(CoordinatorError::Rejected(r)) if r.code == RefusalCode::AgentRevoked
    ));
    // A hello signed by one agent naming another is refused.
    let mut forged = Agent::new();
    w.enrol(&forged, AgentClass::Station, AgentStatus::Approved);
    forged.session_key = SessionKey::generate();
    let other = Agent::new();
    let bytes = seal_agent(
        &Envelope {
            session: None,
            seq: 0,
            job: None,
            ttl_ms: None,
            msg: AgentMessage::Hello(AgentHello {
                agent_id: other.key.key_id(),
                agent_version: "x".into(),
                versions: vec![1],
                session_pub: forged.session_key.public(),
                nonce: [0; 16],
                caps: Capabilities::default(),
                host: HostClaim::default(),
            }),
        },
        &forged.key,
    );
    assert!(c.open(&bytes, 3_000).is_err());
}

#[test]
fn sessions_expire_on_the_server_clock() {
    let w = world("expiry");
    let mut a = Agent::new();
    w.enrol(&a, AgentClass::Station, AgentStatus::Approved);
    let sid = open(&w.node, &mut a, 1_000);
    let ttl = CoordinatorConfig::default().session_ttl_ms;
    let m = a.next(report());
    assert_eq!(
        rejected(w.node.coordinator.handle(&sid, &m, 1_000 + ttl)),
        RefusalCode::SessionExpired
    );
}

#[test]
fn holders_sign_in_with_a_nonce_bound_to_the_session() {
    let w = world("holder");
    let mut a = Agent::new();
    w.enrol(&a, AgentClass::Holder, AgentStatus::Approved);
    let sid = open(&w.node, &mut a, 1_000);
    let c = &w.node.coordinator;
    // A holder's agent takes no operator work.
    let m = a.next(AgentMessage::Ready);
    let (_, msg) = server_msg(&w.node, &c.handle(&sid, &m, 1_100).unwrap());
    assert!(
        matches!(&msg, ServerMessage::Refused(r) if r.code == RefusalCode::NotAllowed),
        "{msg:?}"
    );
    let m = a.next(AgentMessage::Request(Request {
        operation: RequestOp::SelfIssue,
        template: Some("selfsvc".into()),
        key_id: None,
    }));
    let (_, msg) = server_msg(&w.node, &c.handle(&sid, &m, 1_200).unwrap());
    let ServerMessage::NeedHolderAuth(need) = msg else {
        panic!("expected NeedHolderAuth, got {msg:?}")
    };
    let row = c.engine().store().split_session_get(&sid).unwrap().unwrap();
    let expect = holder_nonce(
        &a.session_key.public(),
        &<[u8; 16]>::try_from(row.server_nonce.as_slice()).unwrap(),
    );
    assert_eq!(need.nonce, expect);
    assert_eq!(need.client_id, crate::selfservice::AUDIENCE);
    assert_eq!(need.session_code.len(), 7);
    // A second operation while one is pending is refused.
    let m = a.next(AgentMessage::Request(Request {
        operation: RequestOp::Activate,
        template: None,
        key_id: None,
    }));
    let (_, msg) = server_msg(&w.node, &c.handle(&sid, &m, 1_300).unwrap());
    assert!(matches!(msg, ServerMessage::Refused(_)), "{msg:?}");
}

/// Two server nodes over one PostgreSQL database take one session's messages in turn; a
/// retransmission to the other node gets the stored reply.
#[test]
fn two_nodes_on_postgres_serve_one_session_alternately() {
    let Some(url) = keysmith_testkit::pg_url_from_env() else {
        return;
    };
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let schema = format!("coord_{}", std::process::id());
    let engine = |station: &str| {
        let store = lifecycle::store::PgStore::connect_in_schema(&url, &schema).expect("pg");
        Arc::new(
            Engine::builder(
                Arc::new(store),
                lifecycle::store::PinKey::from_bytes([5; 32]),
                station,
            )
            .idp(Arc::new(lifecycle::idp::EntraIdp::new(
                crate::common::CONNECTION,
                crate::common::graph_client(&emulator),
            )))
            .build()
            .expect("engine"),
        )
    };
    let agents = Arc::new(Agents::default());
    let key = SigningKey::generate();
    let nodes = [
        node(engine("node-1"), agents.clone(), &key),
        node(engine("node-2"), agents.clone(), &key),
    ];
    let mut a = Agent::new();
    agents
        .0
        .lock()
        .unwrap()
        .insert(a.id(), a.entry(AgentClass::Station, AgentStatus::Approved));
    let sid = open(&nodes[0], &mut a, 1_000);
    let mut last = Vec::new();
    for i in 1..=6u64 {
        let n = &nodes[(i % 2) as usize];
        let m = a.next(if i % 3 == 0 {
            report()
        } else {
            AgentMessage::Ready
        });
        let reply = n.coordinator.handle(&sid, &m, 1_000 + i * 10).unwrap();
        assert_eq!(server_msg(n, &reply).0, i);
        // The other node answers a retransmission with the same reply.
        let other = &nodes[((i + 1) % 2) as usize];
        assert_eq!(
            other.coordinator.handle(&sid, &m, 1_001 + i * 10).unwrap(),
            reply
        );
        last = reply;
    }
    assert!(!last.is_empty());
    let store: &Arc<dyn Store> = nodes[1].coordinator.engine().store();
    let row = store.split_session_get(&sid).unwrap().unwrap();
    assert_eq!((row.recv_seq, row.sent_seq), (6, 6));
}

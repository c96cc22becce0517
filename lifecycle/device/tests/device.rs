//! keysmith-device against the software authenticator: the job runner (PIN sources,
//! token derivation, stop at the first failure) and the session's checks on what a relay
//! hands it (duplicates, reorders, other sessions, flipped bits, expired ttl, unknown step
//! types, capabilities, expectations, secrets).

use std::cell::RefCell;

use fido_core::cbor::{self, Value};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use keysmith_device::{
    run_steps, DeviceConfig, DeviceOps, DeviceSession, Event, HolderUi, HolderUiError, PinMemory,
    Prompt, Secrets, SessionError,
};
use keysmith_wire::{
    open_agent, seal_secret, seal_server, sha256, AgentMessage, Capabilities, DeviceStep, Envelope,
    Expect, HostClaim, Job, JobId, OsEntropy, OutcomeStatus, PinSource, RpInfo, SecretContext,
    ServerHello, ServerMessage, SessionId, SigningKey, StepOutput, UserInfo, WireError,
};
use zeroize::Zeroizing;

const TRANSPORT_PIN: &str = "8361529047112233";
const HOLDER_PIN: &str = "holder-pin-2468";

fn softkey() -> (Authenticator<SoftTransport>, SoftTransport) {
    let t = SoftTransport::new(SoftAuthenticator::new(SoftConfig::default()).expect("softkey"));
    (Authenticator::new(t.clone()), t)
}

/// A holder UI answering with fixed PINs (or cancelling), recording prompts and questions.
#[derive(Default)]
struct Ui {
    new_pin: Option<&'static str>,
    pin: Option<&'static str>,
    asked: u32,
    prompts: RefCell<Vec<Prompt>>,
}

impl HolderUi for Ui {
    fn new_pin(&mut self, _min: u32, _confirm: bool) -> Result<Zeroizing<String>, HolderUiError> {
        self.asked += 1;
        self.new_pin
            .map(|p| Zeroizing::new(p.to_owned()))
            .ok_or(HolderUiError::Cancelled)
    }
    fn holder_pin(&mut self) -> Result<Zeroizing<String>, HolderUiError> {
        self.asked += 1;
        self.pin
            .map(|p| Zeroizing::new(p.to_owned()))
            .ok_or(HolderUiError::Unavailable)
    }
    fn prompt(&self, p: &Prompt) {
        self.prompts.borrow_mut().push(p.clone());
    }
}

fn secrets(pin: &str) -> Secrets {
    let mut s = Secrets::new();
    s.insert(1, Zeroizing::new(pin.to_owned()));
    s
}

fn make_step(pin: PinSource) -> DeviceStep {
    DeviceStep::MakeCredential {
        passkey_template: "entra".into(),
        rp: RpInfo {
            id: "login.microsoft.com".into(),
            name: "Microsoft".into(),
        },
        user: UserInfo {
            id: vec![7; 16],
            name: "kim@contoso.test".into(),
            display_name: "Kim".into(),
        },
        client_data_json: br#"{"type":"webauthn.create","challenge":"AAAA"}"#.to_vec(),
        algs: vec![-7],
        exclude: vec![],
        cred_protect: None,
        min_pin_length: false,
        hmac_secret: false,
        pin,
        enterprise_attestation: None,
    }
}

fn assert_step(steps: &[DeviceStep], i: usize) -> DeviceStep {
    let _ = steps;
    DeviceStep::GetAssertion {
        rp_id: "login.microsoft.com".into(),
        allow: vec![],
        client_data_json: format!(r#"{{"type":"webauthn.get","n":{i}}}"#).into_bytes(),
        pin: Some(PinSource::HolderPin),
    }
}

#[test]
fn a_job_runs_in_order_with_pins_resolved_locally() {
    let (mut key, soft) = softkey();
    let mut ui = Ui {
        pin: Some(TRANSPORT_PIN),
        ..Ui::default()
    };
    let mut memory = PinMemory::default();
    let steps = vec![
        DeviceStep::SetPin {
            pin: PinSource::Secret(1),
        },
        make_step(PinSource::Current),
        assert_step(&[], 0),
        DeviceStep::ReadInfo,
    ];
    let out = run_steps(
        &steps,
        &secrets(TRANSPORT_PIN),
        &mut memory,
        &mut key,
        &mut ui,
    );
    assert_eq!(out.len(), 4);
    assert!(out.iter().all(|o| o.status == OutcomeStatus::Ok), "{out:?}");
    let Some(StepOutput::Made { credential_id, .. }) = &out[1].out else {
        panic!("makeCredential made nothing: {:?}", out[1]);
    };
    let Some(StepOutput::Asserted {
        credential_id: signed,
        ..
    }) = &out[2].out
    else {
        panic!("no assertion: {:?}", out[2]);
    };
    assert_eq!(credential_id, signed);
    assert!(matches!(out[3].out, Some(StepOutput::Info { .. })));
    assert_eq!(ui.asked, 1, "HolderPin asked the UI once");
    assert!(memory.is_set());
    assert!(!format!("{memory:?}").contains(TRANSPORT_PIN));
    soft.with(|s| assert_eq!(s.state().credentials.len(), 1));
}

#[test]
fn the_first_failure_stops_the_job_and_keeps_its_error() {
    let (mut key, soft) = softkey();
    soft.with(|s| s.preset_pin(TRANSPORT_PIN)).expect("PIN");
    let mut ui = Ui::default();
    let steps = vec![
        DeviceStep::VerifyPin {
            pin: PinSource::Secret(1),
        },
        DeviceStep::SetMinPinLength {
            min: Some(12),
            rp_ids: vec![],
            force_change: false,
            pin: Some(PinSource::Current),
        },
        make_step(PinSource::Current),
    ];
    let out = run_steps(
        &steps,
        &secrets("00000000"),
        &mut PinMemory::default(),
        &mut key,
        &mut ui,
    );
    assert_eq!(out[0].status, OutcomeStatus::Ctap);
    assert_eq!(out[0].ctap, Some(0x31));
    assert_eq!(out[0].retries, Some(7));
    let e = keysmith_device::OpError::from_outcome(&out[0]).expect("an error");
    assert_eq!(e.op, "getPinUvAuthToken");
    assert!(matches!(
        e.fault,
        keysmith_device::DeviceFault::PinInvalid {
            retries_left: 7,
            ..
        }
    ));
    assert_eq!(out[1].status, OutcomeStatus::Skipped);
    assert_eq!(out[2].status, OutcomeStatus::Skipped);
    soft.with(|s| {
        assert_ne!(s.state().min_pin_length, 12, "a skipped step never ran");
        assert!(s.state().credentials.is_empty());
    });
}

#[test]
fn pin_sources_that_cannot_be_resolved_fail_typed() {
    let (mut key, _soft) = softkey();
    let run = |step: DeviceStep, ui: &mut Ui, key: &mut Authenticator<SoftTransport>| {
        let out = run_steps(&[step], &Secrets::new(), &mut PinMemory::default(), key, ui);
        keysmith_device::OpError::from_outcome(&out[0]).expect("a failure")
    };
    let mut ui = Ui::default();
    let e = run(
        DeviceStep::SetPin {
            pin: PinSource::Current,
        },
        &mut ui,
        &mut key,
    );
    assert_eq!(e.op, "job");
    assert!(matches!(
        e.fault,
        keysmith_device::DeviceFault::InvalidArgument { .. }
    ));
    let e = run(
        DeviceStep::SetPin {
            pin: PinSource::Secret(9),
        },
        &mut ui,
        &mut key,
    );
    assert!(matches!(
        e.fault,
        keysmith_device::DeviceFault::InvalidArgument { .. }
    ));
    let e = run(
        DeviceStep::SetPin {
            pin: PinSource::NewHolderPin {
                min_len: 4,
                confirm: true,
            },
        },
        &mut ui,
        &mut key,
    );
    assert_eq!(e.op, "holderUi");
    assert_eq!(e.fault, keysmith_device::DeviceFault::Cancelled);
    let e = run(
        DeviceStep::VerifyPin {
            pin: PinSource::HolderPin,
        },
        &mut ui,
        &mut key,
    );
    assert!(matches!(
        e.fault,
        keysmith_device::DeviceFault::Unsupported { .. }
    ));
}

#[test]
fn a_changed_pin_becomes_the_sessions_current_pin() {
    let (mut key, soft) = softkey();
    soft.with(|s| s.preset_pin(TRANSPORT_PIN)).expect("PIN");
    let mut ui = Ui {
        new_pin: Some(HOLDER_PIN),
        ..Ui::default()
    };
    let mut memory = PinMemory::default();
    let steps = vec![
        DeviceStep::ChangePin {
            current: PinSource::Secret(1),
            new: PinSource::NewHolderPin {
                min_len: 4,
                confirm: false,
            },
        },
        DeviceStep::VerifyPin {
            pin: PinSource::Current,
        },
    ];
    let out = run_steps(
        &steps,
        &secrets(TRANSPORT_PIN),
        &mut memory,
        &mut key,
        &mut ui,
    );
    assert!(out.iter().all(|o| o.status == OutcomeStatus::Ok), "{out:?}");
    assert!(key
        .pin_token(
            HOLDER_PIN,
            fido_core::pin::Permissions::MAKE_CREDENTIAL,
            Some("x.test")
        )
        .is_ok());
}

// --- the session ---------------------------------------------------------------------

/// The server side of a test session: its key and the bookkeeping to sign messages.
struct Server {
    key: SigningKey,
    session: SessionId,
    seq: u64,
}

impl Server {
    fn msg(&mut self, job: Option<JobId>, ttl: Option<u64>, msg: ServerMessage) -> Vec<u8> {
        self.seq += 1;
        seal_server(
            &Envelope {
                session: Some(self.session),
                seq: self.seq,
                job,
                ttl_ms: ttl,
                msg,
            },
            &self.key,
        )
    }
    fn job(&mut self, id: u8, steps: Vec<DeviceStep>, expect: Expect) -> (JobId, Vec<u8>) {
        let id = JobId([id; 16]);
        let bytes = self.msg(
            Some(id),
            Some(60_000),
            ServerMessage::Job(Job {
                operation: "issue".into(),
                key_id: Some("k1".into()),
                expect,
                deadline_ms: 60_000,
                steps,
                secrets: vec![],
            }),
        );
        (id, bytes)
    }
}

fn caps() -> Capabilities {
    Capabilities {
        ctap_raw: true,
        webauthn_platform: false,
        can_reset_in_place: true,
        interactive_holder_ui: true,
        bio_ui: false,
        max_job_steps: 8,
    }
}

/// A session established with a fresh server key; returns the session, the server and
/// the agent's public key.
fn session(caps: Capabilities, sid: u8) -> (DeviceSession, Server, keysmith_wire::PublicKey) {
    let server_key = SigningKey::generate();
    let agent = SigningKey::generate();
    let agent_pub = agent.public_key();
    let (mut s, hello) = DeviceSession::new(
        DeviceConfig {
            agent_key: agent,
            server_keys: vec![server_key.public_key()],
            caps,
            host: HostClaim::default(),
            agent_version: "test".into(),
        },
        &mut OsEntropy,
    );
    let reply = seal_server(
        &Envelope {
            session: Some(SessionId([sid; 16])),
            seq: 0,
            job: None,
            ttl_ms: None,
            msg: ServerMessage::Hello(ServerHello {
                server_nonce: [1; 16],
                version: 1,
                server_time_ms: 0,
                hello_digest: sha256(&hello),
                next_server_key: None,
            }),
        },
        &server_key,
    );
    assert_eq!(s.receive(&reply, 0), Ok(Event::Established));
    (
        s,
        Server {
            key: server_key,
            session: SessionId([sid; 16]),
            seq: 0,
        },
        agent_pub,
    )
}

fn agent_msg(bytes: &[u8], agent: &keysmith_wire::PublicKey) -> Envelope<AgentMessage> {
    open_agent(bytes, agent)
        .expect("a signed agent message")
        .envelope
}

#[test]
fn a_job_result_is_signed_and_bound_to_the_job_bytes() {
    let (mut key, _soft) = softkey();
    let (mut s, mut server, agent) = session(caps(), 1);
    let (id, job) = server.job(1, vec![DeviceStep::ReadInfo], Expect::default());
    assert!(matches!(s.receive(&job, 5), Ok(Event::Job(_))));
    let reply = s.run_job(6, &mut key, &mut Ui::default()).expect("ran");
    let env = agent_msg(&reply, &agent);
    assert_eq!(env.job, Some(id));
    let AgentMessage::JobResult(r) = env.msg else {
        panic!("not a result");
    };
    assert_eq!(r.job_digest, sha256(&job));
    assert_eq!(r.outcomes[0].status, OutcomeStatus::Ok);
}

#[test]
fn a_duplicated_job_is_answered_the_same_and_run_once() {
    let (mut key, soft) = softkey();
    let (mut s, mut server, _) = session(caps(), 1);
    let (_, job) = server.job(1, vec![make_step(PinSource::HolderPin)], Expect::default());
    soft.with(|x| x.preset_pin(HOLDER_PIN)).expect("PIN");
    let mut ui = Ui {
        pin: Some(HOLDER_PIN),
        ..Ui::default()
    };
    assert!(matches!(s.receive(&job, 0), Ok(Event::Job(_))));
    let first = s.run_job(0, &mut key, &mut ui).expect("ran");
    assert_eq!(
        s.receive(&job, 1),
        Ok(Event::Retransmission {
            reply: Some(first.clone())
        })
    );
    assert_eq!(
        s.run_job(1, &mut key, &mut ui),
        Err(SessionError::NoJob),
        "nothing runs twice"
    );
    soft.with(|x| assert_eq!(x.state().credentials.len(), 1));
}

#[test]
fn reordered_messages_break_the_session() {
    let (mut key, _soft) = softkey();
    let (mut s, mut server, _) = session(caps(), 1);
    let (_, first) = server.job(1, vec![DeviceStep::ReadInfo], Expect::default());
    let (_, second) = server.job(2, vec![DeviceStep::ReadInfo], Expect::default());
    assert_eq!(
        s.receive(&second, 0),
        Err(SessionError::SessionBroken {
            expected: 1,
            got: 2
        })
    );
    assert!(s.is_closed());
    assert_eq!(s.receive(&first, 0), Err(SessionError::Closed));
    assert_eq!(
        s.run_job(0, &mut key, &mut Ui::default()),
        Err(SessionError::Closed)
    );
}

#[test]
fn a_job_of_another_session_or_with_a_flipped_bit_is_refused_harmlessly() {
    let (mut key, soft) = softkey();
    let (mut a, mut server_a, _) = session(caps(), 1);
    let (mut b, mut server_b, _) = session(caps(), 2);
    let set = vec![DeviceStep::SetPin {
        pin: PinSource::HolderPin,
    }];
    let (_, job_a) = server_a.job(1, set.clone(), Expect::default());
    // Replayed into session b: b trusts other keys, and the session differs.
    assert!(b.receive(&job_a, 0).is_err());
    // Signed by b's own server but for session a: refused by the session check.
    server_b.session = SessionId([1; 16]);
    let (_, cross) = server_b.job(1, set.clone(), Expect::default());
    assert_eq!(b.receive(&cross, 0), Err(SessionError::SessionMismatch));
    assert!(
        !b.is_closed(),
        "a foreign message does not close the session"
    );
    for i in [10usize, job_a.len() / 2, job_a.len() - 3] {
        let mut flipped = job_a.clone();
        flipped[i] ^= 0x01;
        assert!(
            matches!(a.receive(&flipped, 0), Err(SessionError::Wire(_))),
            "flipped byte {i} accepted"
        );
    }
    // The genuine job still runs (nothing consumed by the refused copies).
    assert!(matches!(a.receive(&job_a, 0), Ok(Event::Job(_))));
    let mut ui = Ui {
        pin: Some(HOLDER_PIN),
        ..Ui::default()
    };
    a.run_job(0, &mut key, &mut ui).expect("ran");
    soft.with(|x| assert!(x.state().pin.is_some()));
}

#[test]
fn a_job_past_its_ttl_is_aborted_before_any_step() {
    let (mut key, soft) = softkey();
    let (mut s, mut server, agent) = session(caps(), 1);
    let (_, job) = server.job(
        1,
        vec![DeviceStep::SetPin {
            pin: PinSource::HolderPin,
        }],
        Expect::default(),
    );
    assert!(matches!(s.receive(&job, 1_000), Ok(Event::Job(_))));
    let mut ui = Ui {
        pin: Some(HOLDER_PIN),
        ..Ui::default()
    };
    let reply = s.run_job(61_001, &mut key, &mut ui).expect("answered");
    let AgentMessage::Abort(a) = agent_msg(&reply, &agent).msg else {
        panic!("not an abort");
    };
    assert_eq!(a.reason, "ttl_expired");
    assert_eq!(ui.asked, 0);
    soft.with(|x| assert!(x.state().pin.is_none(), "no step ran"));
}

/// Re-signs `job` (a COSE_Sign1 by `key`) with its first step's type changed to `ty`: what
/// a newer server would send.
fn with_step_type(job: &[u8], key_scalar: &[u8; 32], ty: u64) -> Vec<u8> {
    let Value::Tag(18, inner) = cbor::decode(job).expect("COSE") else {
        panic!("not tagged");
    };
    let Value::Array(mut parts) = *inner else {
        panic!("not an array");
    };
    let Value::Bytes(payload) = parts[2].clone() else {
        panic!("no payload");
    };
    let mut env = cbor::decode(&payload).expect("payload");
    let Value::Map(entries) = &mut env else {
        panic!("payload not a map")
    };
    for (k, v) in entries.iter_mut() {
        if *k == Value::Unsigned(6) {
            let Value::Map(body) = v else { panic!() };
            for (bk, bv) in body.iter_mut() {
                if *bk == Value::Unsigned(5) {
                    let Value::Array(steps) = bv else { panic!() };
                    let Value::Map(step) = &mut steps[0] else {
                        panic!()
                    };
                    for (sk, sv) in step.iter_mut() {
                        if *sk == Value::Unsigned(0) {
                            *sv = Value::Unsigned(ty);
                        }
                    }
                }
            }
        }
    }
    let payload = cbor::encode(&env);
    let Value::Bytes(protected) = parts[0].clone() else {
        panic!()
    };
    let tbs = cbor::encode(&Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected),
        Value::Bytes(b"keysmith/v1 s2a".to_vec()),
        Value::Bytes(payload.clone()),
    ]));
    use p256::ecdsa::signature::Signer;
    let sk = p256::ecdsa::SigningKey::from_bytes(key_scalar.into()).expect("scalar");
    let sig: p256::ecdsa::Signature = sk.sign(&tbs);
    parts[2] = Value::Bytes(payload);
    parts[3] = Value::Bytes(sig.to_bytes().to_vec());
    cbor::encode(&Value::Tag(18, Box::new(Value::Array(parts))))
}

#[test]
fn an_unknown_step_type_refuses_the_whole_job() {
    let (mut key, soft) = softkey();
    let scalar = [0x42u8; 32];
    let (mut s, mut server, agent) = session(caps(), 1);
    // The same session, with a server key whose scalar the test knows.
    let known = SigningKey::from_scalar(&scalar).expect("key");
    let mut s2 = {
        let agent_key = SigningKey::generate();
        let (mut s2, hello) = DeviceSession::new(
            DeviceConfig {
                agent_key,
                server_keys: vec![known.public_key()],
                caps: caps(),
                host: HostClaim::default(),
                agent_version: "test".into(),
            },
            &mut OsEntropy,
        );
        let hello_reply = seal_server(
            &Envelope {
                session: Some(SessionId([3; 16])),
                seq: 0,
                job: None,
                ttl_ms: None,
                msg: ServerMessage::Hello(ServerHello {
                    server_nonce: [1; 16],
                    version: 1,
                    server_time_ms: 0,
                    hello_digest: sha256(&hello),
                    next_server_key: None,
                }),
            },
            &known,
        );
        assert_eq!(s2.receive(&hello_reply, 0), Ok(Event::Established));
        s2
    };
    let mut server2 = Server {
        key: known,
        session: SessionId([3; 16]),
        seq: 0,
    };
    let (_, job) = server2.job(
        1,
        vec![
            DeviceStep::SetPin {
                pin: PinSource::HolderPin,
            },
            DeviceStep::ReadInfo,
        ],
        Expect::default(),
    );
    // Sanity: the re-signing itself is right (type 4 = SetPin, unchanged, is accepted).
    let same = with_step_type(&job, &scalar, 4);
    assert_eq!(
        keysmith_wire::open_server(&same, &[server2.key.public_key()]).map(|_| ()),
        Ok(())
    );
    let unknown = with_step_type(&job, &scalar, 99);
    assert_eq!(
        keysmith_wire::open_server(&unknown, &[server2.key.public_key()]).map(|_| ()),
        Err(WireError::UnknownStep { step_type: 99 })
    );
    let mut ui = Ui {
        pin: Some(HOLDER_PIN),
        ..Ui::default()
    };
    match s2.receive(&unknown, 0) {
        Ok(Event::JobRefused { reason, .. }) => assert!(reason.contains("99"), "{reason}"),
        other => panic!("unknown step accepted: {other:?}"),
    }
    assert_eq!(
        s2.run_job(0, &mut key, &mut ui),
        Err(SessionError::NoJob),
        "nothing to run"
    );
    assert_eq!(ui.asked, 0);
    soft.with(|x| assert!(x.state().pin.is_none(), "no step ran"));
    // The other session is untouched.
    let (_, ok) = server.job(1, vec![DeviceStep::ReadInfo], Expect::default());
    assert!(matches!(s.receive(&ok, 0), Ok(Event::Job(_))));
    let reply = s.run_job(0, &mut key, &mut ui).expect("ran");
    assert!(matches!(
        agent_msg(&reply, &agent).msg,
        AgentMessage::JobResult(_)
    ));
}

#[test]
fn capabilities_and_expectations_are_checked_before_any_step() {
    let (mut key, soft) = softkey();
    let set = || DeviceStep::SetPin {
        pin: PinSource::HolderPin,
    };
    // A webauthn.dll-only station: makeCredential/getAssertion only.
    let platform = Capabilities {
        ctap_raw: false,
        webauthn_platform: true,
        ..caps()
    };
    let (mut s, mut server, _) = session(platform, 1);
    let (_, job) = server.job(1, vec![set()], Expect::default());
    assert!(matches!(s.receive(&job, 0), Ok(Event::JobRefused { .. })));
    // More steps than the station runs.
    let (mut s, mut server, _) = session(caps(), 2);
    let (_, job) = server.job(1, vec![DeviceStep::ReadInfo; 9], Expect::default());
    assert!(matches!(s.receive(&job, 0), Ok(Event::JobRefused { .. })));
    // A PIN from the holder at a station without a holder UI.
    let headless = Capabilities {
        interactive_holder_ui: false,
        ..caps()
    };
    let (mut s, mut server, _) = session(headless, 4);
    let (_, job) = server.job(1, vec![DeviceStep::ReadInfo, set()], Expect::default());
    assert!(matches!(s.receive(&job, 0), Ok(Event::JobRefused { .. })));
    // A reset at a station that cannot reset in place.
    let no_reset = Capabilities {
        can_reset_in_place: false,
        ..caps()
    };
    let (mut s, mut server, _) = session(no_reset, 5);
    let reset = DeviceStep::Reset {
        require_replug: false,
        only_if_aaguid: None,
    };
    let (_, job) = server.job(1, vec![reset], Expect::default());
    assert!(matches!(s.receive(&job, 0), Ok(Event::JobRefused { .. })));
    // Another key model than expected.
    let (mut s, mut server, agent) = session(caps(), 3);
    let (_, job) = server.job(
        1,
        vec![set()],
        Expect {
            aaguid: Some([0xEE; 16]),
            ..Expect::default()
        },
    );
    assert!(matches!(s.receive(&job, 0), Ok(Event::Job(_))));
    let mut ui = Ui {
        pin: Some(HOLDER_PIN),
        ..Ui::default()
    };
    let reply = s.run_job(0, &mut key, &mut ui).expect("answered");
    let AgentMessage::Abort(a) = agent_msg(&reply, &agent).msg else {
        panic!("not an abort");
    };
    assert_eq!(a.reason, "wrong_key");
    assert_eq!(ui.asked, 0);
    soft.with(|x| assert!(x.state().pin.is_none(), "no step ran"));
    // The right model runs.
    let aaguid = DeviceOps::info(&mut key).expect("info").aaguid;
    let (_, job) = server.job(
        2,
        vec![set()],
        Expect {
            aaguid: Some(aaguid),
            ..Expect::default()
        },
    );
    assert!(matches!(s.receive(&job, 0), Ok(Event::Job(_))));
    s.run_job(0, &mut key, &mut ui).expect("ran");
    soft.with(|x| assert!(x.state().pin.is_some()));
}

#[test]
fn a_sealed_transport_pin_opens_only_in_its_session_and_job() {
    let (mut key, soft) = softkey();
    let (mut s, mut server, agent) = session(caps(), 1);
    let session_pub = s.session_pub();
    let seal = |job: JobId, session: SessionId, pk: &[u8; 65]| {
        seal_secret(
            pk,
            &SecretContext {
                session,
                job,
                key_id: Some("k1".into()),
                secret_id: 1,
            },
            TRANSPORT_PIN.as_bytes(),
            &mut OsEntropy,
        )
        .expect("sealed")
    };
    let job_with = |server: &mut Server, id: u8, secret| {
        let jid = JobId([id; 16]);
        server.msg(
            Some(jid),
            Some(60_000),
            ServerMessage::Job(Job {
                operation: "issue".into(),
                key_id: Some("k1".into()),
                expect: Expect::default(),
                deadline_ms: 60_000,
                steps: vec![DeviceStep::SetPin {
                    pin: PinSource::Secret(1),
                }],
                secrets: vec![secret],
            }),
        )
    };
    // Sealed for another job id: refused before any step.
    let wrong = seal(JobId([9; 16]), server.session, &session_pub);
    let bytes = job_with(&mut server, 1, wrong);
    assert!(matches!(s.receive(&bytes, 0), Ok(Event::Job(_))));
    let reply = s
        .run_job(0, &mut key, &mut Ui::default())
        .expect("answered");
    assert!(matches!(
        agent_msg(&reply, &agent).msg,
        AgentMessage::Abort(_)
    ));
    soft.with(|x| assert!(x.state().pin.is_none()));
    // Sealed for this session and job: the PIN is set.
    let right = seal(JobId([2; 16]), server.session, &session_pub);
    let bytes = job_with(&mut server, 2, right);
    assert!(matches!(s.receive(&bytes, 0), Ok(Event::Job(_))));
    s.run_job(0, &mut key, &mut Ui::default()).expect("ran");
    assert!(key
        .pin_token(
            TRANSPORT_PIN,
            fido_core::pin::Permissions::MAKE_CREDENTIAL,
            Some("x.test")
        )
        .is_ok());
    assert!(!format!("{s:?}").contains(TRANSPORT_PIN));
}

#[path = "device/station.rs"]
mod station;

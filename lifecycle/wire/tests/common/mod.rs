//! Fixed keys, a seeded entropy source and one sample envelope per message kind, shared by
//! the golden, round-trip and hostile-input tests.
#![allow(dead_code)]

use keysmith_wire::DeviceFailure;
use keysmith_wire::*;
use zeroize::Zeroizing;

/// A deterministic entropy stream: SHA-256(seed ‖ counter) blocks. Tests only.
pub struct Seeded {
    seed: Vec<u8>,
    counter: u64,
    buf: Vec<u8>,
}

impl Seeded {
    pub fn new(seed: &[u8]) -> Self {
        Seeded {
            seed: seed.to_vec(),
            counter: 0,
            buf: Vec::new(),
        }
    }
}

impl Entropy for Seeded {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out.iter_mut() {
            if self.buf.is_empty() {
                let mut block = self.seed.clone();
                block.extend_from_slice(&self.counter.to_be_bytes());
                self.counter += 1;
                self.buf = sha256(&block).to_vec();
            }
            *b = self.buf.remove(0);
        }
    }
}

pub fn server_key() -> SigningKey {
    SigningKey::from_scalar(&sha256(b"keysmith-wire golden server key")).unwrap()
}

pub fn agent_key() -> SigningKey {
    SigningKey::from_scalar(&sha256(b"keysmith-wire golden agent key")).unwrap()
}

pub fn session_key() -> SessionKey {
    SessionKey::generate_with(&mut Seeded::new(b"keysmith-wire golden session key"))
}

pub const SESSION: SessionId = SessionId([0x5e; 16]);
pub const JOB: JobId = JobId([0x10; 16]);

/// One sample message of either direction.
pub enum Sample {
    Agent(Envelope<AgentMessage>),
    Server(Envelope<ServerMessage>),
}

impl Sample {
    pub fn seal(&self) -> Vec<u8> {
        match self {
            Sample::Agent(e) => seal_agent(e, &agent_key()),
            Sample::Server(e) => seal_server(e, &server_key()),
        }
    }
    pub fn payload(&self) -> Vec<u8> {
        match self {
            Sample::Agent(e) => encode_agent(e),
            Sample::Server(e) => encode_server(e),
        }
    }
    /// Opens `bytes` the way the receiver of this sample's direction does.
    pub fn open(&self, bytes: &[u8]) -> Result<(), WireError> {
        match self {
            Sample::Agent(e) => {
                let o = open_agent(bytes, &agent_key().public_key())?;
                assert_eq!(&o.envelope, e);
            }
            Sample::Server(e) => {
                let o = open_server(bytes, &[server_key().public_key()])?;
                assert_eq!(&o.envelope, e);
            }
        }
        Ok(())
    }
    /// Opens `bytes` without comparing (hostile inputs).
    pub fn open_any(&self, bytes: &[u8]) -> Result<(), WireError> {
        match self {
            Sample::Agent(_) => open_agent(bytes, &agent_key().public_key()).map(|_| ()),
            Sample::Server(_) => open_server(bytes, &[server_key().public_key()]).map(|_| ()),
        }
    }
}

fn agent(seq: u64, job: Option<JobId>, msg: AgentMessage) -> Sample {
    Sample::Agent(Envelope {
        session: if seq == 0 { None } else { Some(SESSION) },
        seq,
        job,
        ttl_ms: None,
        msg,
    })
}

fn server(seq: u64, job: Option<JobId>, msg: ServerMessage) -> Sample {
    Sample::Server(Envelope {
        session: Some(SESSION),
        seq,
        job,
        ttl_ms: Some(60_000),
        msg,
    })
}

pub fn client_data(kind: &str) -> Vec<u8> {
    format!(
        r#"{{"type":"{kind}","challenge":"Y2hhbGxlbmdl","origin":"https://login.microsoft.com"}}"#
    )
    .into_bytes()
}

/// The job of the golden `job` vector: every step type, one sealed transport PIN.
pub fn sample_job() -> Job {
    let ctx = SecretContext {
        session: SESSION,
        job: JOB,
        key_id: Some("key-0001".into()),
        secret_id: 1,
    };
    let sealed = seal_secret(
        &session_key().public(),
        &ctx,
        b"48213907",
        &mut Seeded::new(b"keysmith-wire golden hpke"),
    )
    .unwrap();
    let new_pin = PinSource::NewHolderPin {
        min_len: 6,
        confirm: true,
    };
    Job {
        operation: "issue".into(),
        key_id: Some("key-0001".into()),
        expect: Expect {
            aaguid: Some([0xee; 16]),
            serial: Some("SN-12345".into()),
            credential_ids: Some(vec![vec![1, 2, 3]]),
        },
        deadline_ms: 300_000,
        steps: vec![
            DeviceStep::ReadInfo,
            DeviceStep::Probe {
                rp_id: "login.microsoft.com".into(),
                allow: vec![vec![0xc1; 16]],
                client_data_json: client_data("webauthn.get"),
            },
            DeviceStep::Reset {
                require_replug: true,
                only_if_aaguid: Some([0xee; 16]),
            },
            DeviceStep::SetMinPinLength {
                min: Some(8),
                rp_ids: vec!["login.microsoft.com".into()],
                force_change: false,
                pin: None,
            },
            DeviceStep::SetPin {
                pin: PinSource::Secret(1),
            },
            DeviceStep::ChangePin {
                current: PinSource::Current,
                new: new_pin.clone(),
            },
            DeviceStep::VerifyPin {
                pin: PinSource::HolderPin,
            },
            DeviceStep::EnableAlwaysUv {
                pin: Some(PinSource::Current),
            },
            DeviceStep::EnrollFingerprints {
                min: 2,
                timeout_ms: 30_000,
                pin: PinSource::Current,
            },
            DeviceStep::MakeCredential {
                passkey_template: "entra-default".into(),
                rp: RpInfo {
                    id: "login.microsoft.com".into(),
                    name: "Microsoft".into(),
                },
                user: UserInfo {
                    id: vec![0x75; 32],
                    name: "ada@contoso.example".into(),
                    display_name: "Ada Lovelace".into(),
                },
                client_data_json: client_data("webauthn.create"),
                algs: vec![-7, -257],
                exclude: vec![vec![0xc0; 16]],
                cred_protect: Some(2),
                min_pin_length: true,
                hmac_secret: true,
                pin: PinSource::Current,
                enterprise_attestation: None,
            },
            DeviceStep::GetAssertion {
                rp_id: "login.microsoft.com".into(),
                allow: vec![vec![0xc1; 16]],
                client_data_json: client_data("webauthn.get"),
                pin: Some(PinSource::Current),
            },
            DeviceStep::CredMgmtDelete {
                rp_id: "login.microsoft.com".into(),
                credential_id: vec![0xc0; 16],
                pin: PinSource::Current,
            },
        ],
        secrets: vec![sealed],
    }
}

/// One envelope per message kind, in kind order, with the golden file name.
pub fn samples() -> Vec<(&'static str, Sample)> {
    let hello = AgentHello {
        agent_id: agent_key().key_id(),
        agent_version: "0.1.0".into(),
        versions: vec![1],
        session_pub: session_key().public(),
        nonce: [0xa0; 16],
        caps: Capabilities {
            ctap_raw: true,
            webauthn_platform: false,
            can_reset_in_place: true,
            interactive_holder_ui: true,
            bio_ui: true,
            max_job_steps: 64,
        },
        host: HostClaim {
            name: "station-1".into(),
            os: "linux".into(),
            elevated: true,
            remote_session: false,
        },
    };
    vec![
        ("01-agent-hello", agent(0, None, AgentMessage::Hello(hello))),
        (
            "02-device-report",
            agent(
                1,
                None,
                AgentMessage::DeviceReport(DeviceReport {
                    transport: "usb".into(),
                    get_info: Some(vec![0xa1, 0x01, 0x81, 0x68]),
                    serial_claim: Some("SN-12345".into()),
                    serial_source: Some("yubikey-otp".into()),
                    pin_retries: Some(8),
                    uv_retries: None,
                    reader: None,
                }),
            ),
        ),
        (
            "03-request",
            agent(
                2,
                None,
                AgentMessage::Request(Request {
                    operation: RequestOp::SelfIssue,
                    template: Some("entra-default".into()),
                    key_id: None,
                }),
            ),
        ),
        (
            "04-holder-auth",
            agent(
                3,
                None,
                AgentMessage::HolderAuth(HolderAuth {
                    id_token: Zeroizing::new("eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into()),
                }),
            ),
        ),
        (
            "05-progress",
            agent(
                4,
                Some(JOB),
                AgentMessage::Progress(ProgressNote {
                    step: 8,
                    prompt: "fingerprint".into(),
                    n: Some(1),
                    of: Some(2),
                }),
            ),
        ),
        (
            "06-job-result",
            agent(
                5,
                Some(JOB),
                AgentMessage::JobResult(JobResult {
                    job_digest: [0xd1; 32],
                    outcomes: vec![
                        Outcome {
                            step: 0,
                            status: OutcomeStatus::Ok,
                            ctap: None,
                            retries: None,
                            out: Some(StepOutput::Info {
                                get_info: vec![0xa0],
                            }),
                            error: None,
                        },
                        Outcome {
                            step: 1,
                            status: OutcomeStatus::Ok,
                            ctap: None,
                            retries: None,
                            out: Some(StepOutput::Asserted {
                                credential_id: vec![0xc1; 16],
                                auth_data: vec![0xad; 37],
                                signature: vec![0x30, 0x44],
                                user_handle: Some(vec![0x75; 32]),
                            }),
                            error: None,
                        },
                        Outcome {
                            step: 8,
                            status: OutcomeStatus::Ok,
                            ctap: None,
                            retries: None,
                            out: Some(StepOutput::Enrolled { enrolled: 2 }),
                            error: None,
                        },
                        Outcome {
                            step: 9,
                            status: OutcomeStatus::Ok,
                            ctap: None,
                            retries: None,
                            out: Some(StepOutput::Made {
                                credential_id: vec![0xc2; 16],
                                attestation_object: vec![0xa3, 0x01, 0x02, 0x03],
                            }),
                            error: None,
                        },
                        Outcome {
                            step: 10,
                            status: OutcomeStatus::Ctap,
                            ctap: Some(0x31),
                            retries: Some(7),
                            out: None,
                            error: Some(DeviceFailure {
                                reason: "pin_invalid".into(),
                                message: "wrong PIN: 7 attempt(s) left".into(),
                                power_cycle_required: Some(false),
                                timeout_ms: None,
                            }),
                        },
                        Outcome {
                            step: 11,
                            status: OutcomeStatus::Skipped,
                            ctap: None,
                            retries: None,
                            out: None,
                            error: None,
                        },
                    ],
                    info_after: Some(vec![0xa0]),
                }),
            ),
        ),
        (
            "07-abort",
            agent(
                6,
                Some(JOB),
                AgentMessage::Abort(Abort {
                    reason: "key_removed".into(),
                    detail: Some("the key was unplugged during step 3".into()),
                }),
            ),
        ),
        ("08-ready", agent(7, None, AgentMessage::Ready)),
        (
            "09-holder-graph-result",
            agent(
                8,
                None,
                AgentMessage::HolderGraphResult(HolderGraphResult {
                    op: HolderGraphOp::Register,
                    status: 201,
                    body: r#"{"id":"method-0001","displayName":"Ada 12345"}"#.into(),
                    error: None,
                    request_id: Some("0b5c1d2e-0000-4000-8000-000000000009".into()),
                }),
            ),
        ),
        (
            "32-server-hello",
            server(
                0,
                None,
                ServerMessage::Hello(ServerHello {
                    server_nonce: [0xb0; 16],
                    version: 1,
                    server_time_ms: 1_765_000_000_000,
                    hello_digest: [0xd0; 32],
                    next_server_key: Some(server_key().public_key().to_sec1()),
                }),
            ),
        ),
        (
            "33-need-holder-auth",
            server(
                1,
                None,
                ServerMessage::NeedHolderAuth(NeedHolderAuth {
                    issuer: "https://login.example/tenant/v2.0".into(),
                    client_id: "00000000-0000-0000-0000-000000000001".into(),
                    scopes: vec!["openid".into(), "profile".into()],
                    nonce: holder_nonce(&session_key().public(), &[0xb0; 16]),
                    login_hint: Some("ada@contoso.example".into()),
                    max_age_s: 300,
                    session_code: "KX-42".into(),
                }),
            ),
        ),
        (
            "34-job",
            server(2, Some(JOB), ServerMessage::Job(sample_job())),
        ),
        (
            "35-job-ack",
            server(
                3,
                Some(JOB),
                ServerMessage::JobAck(JobAck {
                    key_id: "key-0001".into(),
                    state: "Active".into(),
                    needs_reissue: false,
                    registered: 1,
                }),
            ),
        ),
        (
            "36-refused",
            server(
                4,
                Some(JOB),
                ServerMessage::Refused(Refused {
                    code: RefusalCode::ChallengeExpired,
                    reason: "the registration challenge expired".into(),
                    needs_reissue: Some(true),
                    step: Some("MakeCredential".into()),
                }),
            ),
        ),
        (
            "37-wait",
            server(5, None, ServerMessage::Wait { retry_ms: 2_000 }),
        ),
        (
            "38-done",
            server(
                6,
                None,
                ServerMessage::Done {
                    key_id: Some("key-0001".into()),
                    state: Some("Active".into()),
                },
            ),
        ),
        (
            "39-holder-graph",
            server(
                7,
                None,
                ServerMessage::HolderGraph(HolderGraphCall {
                    op: HolderGraphOp::Register,
                    body: Some(r#"{"displayName":"Ada 12345"}"#.into()),
                }),
            ),
        ),
    ]
}

//! [`DeviceSession`]: the device half of one split-protocol session, sans IO.
//!
//! Bytes in ([`DeviceSession::receive`]), bytes out (every other method). It reads no
//! clock: the caller passes a monotonic `now` in milliseconds, and a server message's
//! `ttl_ms` is counted from the `now` it was received at. Order of checks on a `Job`:
//! signature (pinned server keys), session, sequence, then (before any step runs) the
//! job's size and step types against this station's capabilities, its time to live, the
//! attached key's AAGUID against `expect`; only then are its secrets opened.

use keysmith_wire::{
    Abort, AgentHello, AgentMessage, Capabilities, DeviceReport, DeviceStep, Entropy, Envelope,
    HostClaim, Job, JobAck, JobId, JobResult, NeedHolderAuth, PinSource, PublicKey, Refused,
    Request, ServerMessage, SessionId, SessionKey, SigningKey, WireError,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::fault::{DeviceFault, OpError};
use crate::ops::DeviceOps;
use crate::runner::{encode_info, run_steps, HolderUi, PinMemory, Secrets};

/// The protocol version this device half speaks.
const VERSION: u32 = 1;

/// What a device half is and whom it trusts.
pub struct DeviceConfig {
    /// The agent's signing key (its key id is the agent id).
    pub agent_key: SigningKey,
    /// The server keys it accepts messages from (pinned).
    pub server_keys: Vec<PublicKey>,
    /// What it can do.
    pub caps: Capabilities,
    /// The host it runs on, as it claims.
    pub host: HostClaim,
    /// Its version string (`AgentHello` key 2).
    pub agent_version: String,
}

impl std::fmt::Debug for DeviceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceConfig")
            .field("agent_key", &"<redacted>")
            .field("server_keys", &self.server_keys.len())
            .field("caps", &self.caps)
            .field("host", &self.host)
            .field("agent_version", &self.agent_version)
            .finish()
    }
}

/// Why the session refused a message or a call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The bytes were refused by the codec (signature, pinned key, structure).
    #[error("message refused: {0}")]
    Wire(#[from] WireError),
    /// The server's first message was not a `ServerHello` for this `AgentHello`.
    #[error("the server's hello does not answer this session's hello")]
    HelloMismatch,
    /// A message of another session (harmless: refused, the session goes on).
    #[error("the message belongs to another session")]
    SessionMismatch,
    /// A sequence gap, reorder, or a repeat with other bytes: the session is closed.
    #[error("sequence broken: expected seq {expected}, got {got}; the session is closed")]
    SessionBroken {
        /// The seq expected.
        expected: u64,
        /// The seq received.
        got: u64,
    },
    /// The session was closed earlier (sequence broken, or `Done`).
    #[error("the session is closed")]
    Closed,
    /// No job is waiting to run.
    #[error("no job is waiting")]
    NoJob,
    /// An answer the server did not ask for (`what`).
    #[error("the server did not ask for {what}")]
    NotAsked {
        /// What was answered.
        what: &'static str,
    },
    /// The session has not been answered by a `ServerHello` yet.
    #[error("the session is not established")]
    NotEstablished,
    /// The attached key failed while the session read it (getInfo for the report).
    #[error("{0}")]
    Device(#[from] OpError),
}

/// A checked job, waiting for [`DeviceSession::run_job`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingJob {
    /// The job's id.
    pub job: JobId,
    /// Its operation (`issue`, `activate`, ...), for the UI.
    pub operation: String,
    /// How many steps it has.
    pub steps: usize,
}

/// What a received server message means to the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The `ServerHello`: the session is established.
    Established,
    /// The holder must sign in; answer with [`DeviceSession::holder_auth`].
    NeedHolderAuth(NeedHolderAuth),
    /// A job passed the checks that need no key; run it with [`DeviceSession::run_job`].
    Job(PendingJob),
    /// The job was refused before any step ran; send `reply` (an `Abort`).
    JobRefused {
        /// The `Abort` to send.
        reply: Vec<u8>,
        /// Why (no secret).
        reason: String,
    },
    /// The server asks for one of the holder's own Graph calls (delegated registration):
    /// make it with the holder's delegated token (from the sign-in, held by the caller,
    /// never sent to the server) and answer with [`DeviceSession::holder_graph_result`].
    HolderGraph(keysmith_wire::HolderGraphCall),
    /// The server accepted a job's result.
    JobAck(JobAck),
    /// The server refused something.
    Refused(Refused),
    /// Poll again later.
    Wait {
        /// After this many milliseconds.
        retry_ms: u64,
    },
    /// The session is finished.
    Done {
        /// The key concerned.
        key_id: Option<String>,
        /// Its state afterwards.
        state: Option<String>,
    },
    /// The message repeats the last one received (same seq, same bytes): send `reply`
    /// again (the answer already sent, if any); nothing is run twice.
    Retransmission {
        /// The reply sent to the original.
        reply: Option<Vec<u8>>,
    },
}

/// A job accepted by `receive`, kept until it runs.
struct Held {
    job: Job,
    id: JobId,
    digest: [u8; 32],
    received_ms: u64,
    ttl_ms: Option<u64>,
}

/// The device half of one session (see the module docs). The session key and the
/// remembered PIN are zeroized on drop; `Debug` shows neither.
pub struct DeviceSession {
    config: DeviceConfig,
    session_key: SessionKey,
    nonce: [u8; 16],
    hello_digest: [u8; 32],
    session: Option<SessionId>,
    out_seq: u64,
    /// Seq and SHA-256 of the last server message accepted.
    last_in: Option<(u64, [u8; 32])>,
    /// What was sent in answer to it.
    last_reply: Option<Vec<u8>>,
    aaguid: Option<[u8; 16]>,
    memory: PinMemory,
    held: Option<Held>,
    /// The holder Graph call the server asked for last, until answered.
    graph_call: Option<keysmith_wire::HolderGraphOp>,
    closed: bool,
}

impl std::fmt::Debug for DeviceSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSession")
            .field("session", &self.session)
            .field("out_seq", &self.out_seq)
            .field("last_in_seq", &self.last_in.map(|(s, _)| s))
            .field("session_key", &"<redacted>")
            .field("memory", &self.memory)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl DeviceSession {
    /// A new session: a fresh ephemeral session key and nonce from `entropy`
    /// ([`keysmith_wire::OsEntropy`] outside tests). Returns the session and the
    /// `AgentHello` to send.
    pub fn new(config: DeviceConfig, entropy: &mut dyn Entropy) -> (Self, Vec<u8>) {
        let session_key = SessionKey::generate_with(entropy);
        let mut nonce = [0u8; 16];
        entropy.fill(&mut nonce);
        let hello = AgentHello {
            agent_id: config.agent_key.key_id(),
            agent_version: config.agent_version.clone(),
            versions: vec![VERSION],
            session_pub: session_key.public(),
            nonce,
            caps: config.caps,
            host: config.host.clone(),
        };
        let bytes = keysmith_wire::seal_agent(
            &Envelope {
                session: None,
                seq: 0,
                job: None,
                ttl_ms: None,
                msg: AgentMessage::Hello(hello),
            },
            &config.agent_key,
        );
        let s = DeviceSession {
            hello_digest: Sha256::digest(&bytes).into(),
            config,
            session_key,
            nonce,
            session: None,
            out_seq: 0,
            last_in: None,
            last_reply: None,
            aaguid: None,
            memory: PinMemory::default(),
            held: None,
            graph_call: None,
            closed: false,
        };
        (s, bytes)
    }

    /// The session id, once established.
    pub fn session(&self) -> Option<SessionId> {
        self.session
    }

    /// The session's ephemeral public key (secrets are sealed to it).
    pub fn session_pub(&self) -> [u8; 65] {
        self.session_key.public()
    }

    /// The agent's nonce from `AgentHello`.
    pub fn nonce(&self) -> [u8; 16] {
        self.nonce
    }

    fn send(&mut self, job: Option<JobId>, msg: AgentMessage) -> Result<Vec<u8>, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let session = self.session.ok_or(SessionError::NotEstablished)?;
        self.out_seq += 1;
        Ok(keysmith_wire::seal_agent(
            &Envelope {
                session: Some(session),
                seq: self.out_seq,
                job,
                ttl_ms: None,
                msg,
            },
            &self.config.agent_key,
        ))
    }

    /// A `DeviceReport` of the attached key: its getInfo (the AAGUID is remembered for
    /// `expect` checks), its PIN retries when it has clientPin, and what the caller knows of
    /// its transport and serial.
    pub fn report(
        &mut self,
        ops: &mut dyn DeviceOps,
        transport: &str,
        serial_claim: Option<String>,
        serial_source: Option<String>,
    ) -> Result<Vec<u8>, SessionError> {
        let info = ops.info()?;
        self.aaguid = Some(info.aaguid);
        let pin_retries = match info.supports_option("clientPin") {
            Some(_) => Some(ops.pin_retries()?),
            None => None,
        };
        self.send(
            None,
            AgentMessage::DeviceReport(DeviceReport {
                transport: transport.to_owned(),
                get_info: Some(encode_info(&info)),
                serial_claim,
                serial_source,
                pin_retries,
                uv_retries: None,
                reader: None,
            }),
        )
    }

    /// A `Request`: what this device half is there for.
    pub fn request(&mut self, request: Request) -> Result<Vec<u8>, SessionError> {
        self.send(None, AgentMessage::Request(request))
    }

    /// A `Ready` poll.
    pub fn ready(&mut self) -> Result<Vec<u8>, SessionError> {
        self.send(None, AgentMessage::Ready)
    }

    /// A `HolderAuth` carrying the holder's ID token (never logged).
    pub fn holder_auth(&mut self, id_token: Zeroizing<String>) -> Result<Vec<u8>, SessionError> {
        self.send(
            None,
            AgentMessage::HolderAuth(keysmith_wire::HolderAuth { id_token }),
        )
    }

    /// The answer to the server's last [`Event::HolderGraph`] call: what Graph said
    /// (`status`, `body`, `request_id`), or `status` 0 with `error` when no answer came.
    pub fn holder_graph_result(
        &mut self,
        result: keysmith_wire::HolderGraphResult,
    ) -> Result<Vec<u8>, SessionError> {
        if self.graph_call.take() != Some(result.op) {
            return Err(SessionError::NotAsked {
                what: "a holder Graph result",
            });
        }
        self.send(None, AgentMessage::HolderGraphResult(result))
    }

    /// An `Abort` (`cancelled`, `key_removed`, `wrong_key`, `ttl_expired`, `unsupported`).
    pub fn abort(
        &mut self,
        job: Option<JobId>,
        reason: &str,
        detail: Option<String>,
    ) -> Result<Vec<u8>, SessionError> {
        self.send(
            job,
            AgentMessage::Abort(Abort {
                reason: reason.to_owned(),
                detail,
            }),
        )
    }

    /// Takes one server message received at `now_ms` (monotonic). Refused messages change
    /// nothing, except a broken sequence, which closes the session.
    pub fn receive(&mut self, bytes: &[u8], now_ms: u64) -> Result<Event, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let opened = match keysmith_wire::open_server(bytes, &self.config.server_keys) {
            Ok(o) => o,
            // Authentic (the signature is checked first) but not runnable: the whole job
            // is refused before any step runs.
            Err(e @ (WireError::UnknownStep { .. } | WireError::UnknownField { .. }))
                if self.session.is_some() =>
            {
                let reason = e.to_string();
                let reply = self.abort(None, "unsupported", Some(reason.clone()))?;
                return Ok(Event::JobRefused { reply, reason });
            }
            Err(e) => return Err(e.into()),
        };
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let env = opened.envelope;
        let Some(session) = self.session else {
            // The first answer must be the ServerHello to this session's AgentHello.
            return match env.msg {
                ServerMessage::Hello(h)
                    if env.seq == 0
                        && env.session.is_some()
                        && h.hello_digest == self.hello_digest
                        && h.version == VERSION =>
                {
                    self.session = env.session;
                    self.last_in = Some((0, digest));
                    Ok(Event::Established)
                }
                _ => Err(SessionError::HelloMismatch),
            };
        };
        if env.session != Some(session) {
            return Err(SessionError::SessionMismatch);
        }
        let (last, last_digest) = self.last_in.unwrap_or((0, [0; 32]));
        if env.seq == last && digest == last_digest {
            return Ok(Event::Retransmission {
                reply: self.last_reply.clone(),
            });
        }
        if env.seq != last + 1 {
            self.close();
            return Err(SessionError::SessionBroken {
                expected: last + 1,
                got: env.seq,
            });
        }
        self.last_in = Some((env.seq, digest));
        self.last_reply = None;
        match env.msg {
            ServerMessage::Hello(_) => {
                self.close();
                Err(SessionError::SessionBroken {
                    expected: last + 1,
                    got: 0,
                })
            }
            ServerMessage::NeedHolderAuth(n) => Ok(Event::NeedHolderAuth(n)),
            ServerMessage::Job(job) => {
                let Some(id) = env.job else {
                    let reason = "a job without its job id".to_owned();
                    return self.refuse_job(None, "unsupported", reason);
                };
                if let Some(reason) = self.beyond_caps(&job) {
                    return self.refuse_job(Some(id), "unsupported", reason);
                }
                let pending = PendingJob {
                    job: id,
                    operation: job.operation.clone(),
                    steps: job.steps.len(),
                };
                self.held = Some(Held {
                    job,
                    id,
                    digest,
                    received_ms: now_ms,
                    ttl_ms: env.ttl_ms,
                });
                Ok(Event::Job(pending))
            }
            ServerMessage::HolderGraph(call) => {
                self.graph_call = Some(call.op);
                Ok(Event::HolderGraph(call))
            }
            ServerMessage::JobAck(a) => Ok(Event::JobAck(a)),
            ServerMessage::Refused(r) => Ok(Event::Refused(r)),
            ServerMessage::Wait { retry_ms } => Ok(Event::Wait { retry_ms }),
            ServerMessage::Done { key_id, state } => {
                self.close();
                Ok(Event::Done { key_id, state })
            }
            #[allow(unreachable_patterns)]
            _ => Err(SessionError::Wire(WireError::UnknownKind { kind: 0 })),
        }
    }

    fn refuse_job(
        &mut self,
        job: Option<JobId>,
        code: &str,
        reason: String,
    ) -> Result<Event, SessionError> {
        let reply = self.abort(job, code, Some(reason.clone()))?;
        self.last_reply = Some(reply.clone());
        Ok(Event::JobRefused { reply, reason })
    }

    /// Why this station cannot run `job`, if it cannot: more steps than its
    /// `max_job_steps`; (a `webauthn_platform`-only station) a step other than
    /// `MakeCredential`/`GetAssertion`; a reset without `can_reset_in_place`; fingerprint
    /// enrolment without `bio_ui`; a PIN from the holder without `interactive_holder_ui`.
    fn beyond_caps(&self, job: &Job) -> Option<String> {
        let caps = &self.config.caps;
        if caps.max_job_steps > 0 && job.steps.len() > caps.max_job_steps as usize {
            return Some(format!(
                "the job has {} steps; this station runs at most {}",
                job.steps.len(),
                caps.max_job_steps
            ));
        }
        for (i, s) in job.steps.iter().enumerate() {
            let platform_ok = matches!(
                s,
                DeviceStep::MakeCredential { .. } | DeviceStep::GetAssertion { .. }
            );
            let runnable = caps.ctap_raw || (caps.webauthn_platform && platform_ok);
            if !runnable {
                return Some(format!(
                    "step {i} needs raw CTAP; this station has {}",
                    if caps.webauthn_platform {
                        "only the platform WebAuthn API"
                    } else {
                        "no access to a key"
                    }
                ));
            }
            if matches!(s, DeviceStep::Reset { .. }) && !caps.can_reset_in_place {
                return Some(format!("step {i} resets the key; this station cannot"));
            }
            if matches!(s, DeviceStep::EnrollFingerprints { .. }) && !caps.bio_ui {
                return Some(format!(
                    "step {i} enrols fingerprints; this station cannot guide it"
                ));
            }
            if pin_sources(s)
                .iter()
                .any(|p| matches!(p, PinSource::NewHolderPin { .. } | PinSource::HolderPin))
                && !caps.interactive_holder_ui
            {
                return Some(format!(
                    "step {i} needs the holder's PIN; this station has no holder UI"
                ));
            }
        }
        None
    }

    /// Runs the job `receive` accepted, at monotonic `now_ms`: refuses it (an `Abort`)
    /// when its ttl ran out since receipt or the attached key's AAGUID is not the one it
    /// expects; otherwise opens its secrets, runs its steps on `ops` with `ui` and returns
    /// the signed `JobResult`. The secrets are zeroized when it returns.
    pub fn run_job(
        &mut self,
        now_ms: u64,
        ops: &mut dyn DeviceOps,
        ui: &mut dyn HolderUi,
    ) -> Result<Vec<u8>, SessionError> {
        if self.closed {
            return Err(SessionError::Closed);
        }
        let held = self.held.take().ok_or(SessionError::NoJob)?;
        let session = self.session.ok_or(SessionError::NotEstablished)?;
        let waited = now_ms.saturating_sub(held.received_ms);
        let limit = match (held.ttl_ms, held.job.deadline_ms) {
            (Some(t), d) if d > 0 => t.min(d),
            (Some(t), _) => t,
            (None, d) if d > 0 => d,
            (None, _) => u64::MAX,
        };
        if waited > limit {
            let reply = self.abort(
                Some(held.id),
                "ttl_expired",
                Some(format!("the job waited {waited} ms; its ttl is {limit} ms")),
            )?;
            self.last_reply = Some(reply.clone());
            return Ok(reply);
        }
        if let Some(want) = held.job.expect.aaguid {
            let have = match ops.info() {
                Ok(i) => i.aaguid,
                Err(e) => {
                    let reply = self.result(&held, vec![e.to_outcome(0)], &held.job)?;
                    return Ok(reply);
                }
            };
            self.aaguid = Some(have);
            if have != want {
                let reply = self.abort(
                    Some(held.id),
                    "wrong_key",
                    Some(DeviceFault::WrongKey.to_string()),
                )?;
                self.last_reply = Some(reply.clone());
                return Ok(reply);
            }
        }
        let mut secrets = Secrets::new();
        for s in &held.job.secrets {
            let ctx = keysmith_wire::SecretContext {
                session,
                job: held.id,
                key_id: held.job.key_id.clone(),
                secret_id: s.id,
            };
            let opened = match keysmith_wire::open_secret(&self.session_key, &ctx, s) {
                Ok(p) => p,
                Err(e) => {
                    let reply = self.abort(Some(held.id), "unsupported", Some(e.to_string()))?;
                    self.last_reply = Some(reply.clone());
                    return Ok(reply);
                }
            };
            let Ok(pin) = std::str::from_utf8(&opened) else {
                let reply = self.abort(
                    Some(held.id),
                    "unsupported",
                    Some(format!("secret {} is not UTF-8 text", s.id)),
                )?;
                self.last_reply = Some(reply.clone());
                return Ok(reply);
            };
            secrets.insert(s.id, Zeroizing::new(pin.to_owned()));
        }
        let outcomes = run_steps(&held.job.steps, &secrets, &mut self.memory, ops, ui);
        drop(secrets);
        self.result(&held, outcomes, &held.job)
    }

    fn result(
        &mut self,
        held: &Held,
        mut outcomes: Vec<keysmith_wire::Outcome>,
        job: &Job,
    ) -> Result<Vec<u8>, SessionError> {
        // A failure before the first step (reading the key) skips every step.
        for i in outcomes.len()..job.steps.len() {
            outcomes.push(keysmith_wire::Outcome {
                step: u32::try_from(i).unwrap_or(u32::MAX),
                status: keysmith_wire::OutcomeStatus::Skipped,
                ctap: None,
                retries: None,
                out: None,
                error: None,
            });
        }
        let reply = self.send(
            Some(held.id),
            AgentMessage::JobResult(JobResult {
                job_digest: held.digest,
                outcomes,
                info_after: None,
            }),
        )?;
        self.last_reply = Some(reply.clone());
        Ok(reply)
    }

    /// Ends the session: the remembered PIN is zeroized and nothing more is accepted.
    pub fn close(&mut self) {
        self.closed = true;
        self.memory.clear();
        self.held = None;
    }

    /// True once the session is closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// The PIN sources a step uses.
fn pin_sources(step: &DeviceStep) -> Vec<&PinSource> {
    match step {
        DeviceStep::SetPin { pin }
        | DeviceStep::VerifyPin { pin }
        | DeviceStep::EnrollFingerprints { pin, .. }
        | DeviceStep::MakeCredential { pin, .. }
        | DeviceStep::CredMgmtDelete { pin, .. } => vec![pin],
        DeviceStep::ChangePin { current, new } => vec![current, new],
        DeviceStep::SetMinPinLength { pin, .. }
        | DeviceStep::EnableAlwaysUv { pin }
        | DeviceStep::GetAssertion { pin, .. } => pin.iter().collect(),
        _ => Vec::new(),
    }
}

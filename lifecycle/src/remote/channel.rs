//! The server side of one split-protocol session, in memory: signs the server's messages,
//! seals transport PINs to the session key, opens and checks what the device half sends
//! (signature with the agent's key, session, order, and a result's job digest).

use keysmith_wire::{
    AgentHello, AgentMessage, Entropy, Envelope, Expect, Job, JobId, JobResult, OsEntropy,
    PublicKey, SealedSecret, SecretContext, SeqCheck, SeqWindow, ServerHello, ServerMessage,
    SessionId, SigningKey,
};
use zeroize::Zeroizing;

use super::LinkError;

/// What a job is, before it is signed: the steps and the secrets to seal.
pub(crate) struct JobSpec {
    pub operation: String,
    pub key_id: Option<String>,
    pub expect_aaguid: Option<[u8; 16]>,
    pub deadline_ms: u64,
    pub steps: Vec<keysmith_wire::DeviceStep>,
    /// Transport PINs by secret id, sealed to the session key when the job is signed.
    pub secrets: Vec<(u32, Zeroizing<String>)>,
}

/// A message the device half sent, checked.
pub(crate) enum Incoming {
    /// The next message.
    Message(Box<Envelope<AgentMessage>>),
    /// The last message again (same seq, same bytes): already handled.
    Retransmission,
}

/// The server's end of one session.
pub(crate) struct ServerChannel {
    key: SigningKey,
    agent: PublicKey,
    session: SessionId,
    session_pub: [u8; 65],
    server_nonce: [u8; 16],
    next_out: u64,
    incoming: SeqWindow,
    /// The job in flight: its id, the digest of its bytes, its step count.
    job: Option<(JobId, [u8; 32], usize)>,
}

impl ServerChannel {
    /// Accepts an `AgentHello` signed by `agent` and answers it with a `ServerHello`.
    pub(crate) fn accept_hello(
        key: SigningKey,
        agent: PublicKey,
        hello: &[u8],
    ) -> Result<(Self, AgentHello, Vec<u8>), LinkError> {
        let opened = keysmith_wire::open_agent(hello, &agent)?;
        let env = opened.envelope;
        let AgentMessage::Hello(h) = env.msg else {
            return Err(LinkError::Unexpected(
                "a first message that is not AgentHello",
            ));
        };
        if env.seq != 0 || env.session.is_some() || h.agent_id != agent.key_id() {
            return Err(LinkError::Unexpected("an AgentHello out of order"));
        }
        if !h.versions.contains(&1) {
            return Err(LinkError::Unexpected(
                "an agent that does not speak version 1",
            ));
        }
        let mut incoming = SeqWindow::new();
        incoming.accept(0, &opened.digest)?;
        let mut sid = [0u8; 16];
        let mut server_nonce = [0u8; 16];
        OsEntropy.fill(&mut sid);
        OsEntropy.fill(&mut server_nonce);
        let mut ch = ServerChannel {
            key,
            agent,
            session: SessionId(sid),
            session_pub: h.session_pub,
            server_nonce,
            next_out: 0,
            incoming,
            job: None,
        };
        let reply = ch.send(
            None,
            None,
            ServerMessage::Hello(ServerHello {
                server_nonce,
                version: 1,
                server_time_ms: 0,
                hello_digest: opened.digest,
                next_server_key: None,
            }),
        );
        Ok((ch, h, reply))
    }

    /// The server's end of a session kept in the repository (the coordinator): the next
    /// server seq is `next_out`; incoming messages were checked by the coordinator.
    pub(crate) fn resume(
        key: SigningKey,
        agent: PublicKey,
        session: SessionId,
        session_pub: [u8; 65],
        server_nonce: [u8; 16],
        next_out: u64,
    ) -> Self {
        ServerChannel {
            key,
            agent,
            session,
            session_pub,
            server_nonce,
            next_out,
            incoming: SeqWindow::new(),
            job: None,
        }
    }

    /// Sets the seq the next server message gets (the coordinator's session row decides).
    pub(crate) fn set_next_out(&mut self, seq: u64) {
        self.next_out = seq;
    }

    /// Signs a message that is not a job with `ttl_ms`, about `job` when it answers one
    /// (`JobAck`).
    pub(crate) fn message_with_ttl(
        &mut self,
        job: Option<JobId>,
        msg: ServerMessage,
        ttl_ms: u64,
    ) -> Vec<u8> {
        self.send(job, Some(ttl_ms), msg)
    }

    /// The server nonce of `ServerHello`.
    #[allow(dead_code)]
    pub(crate) fn server_nonce(&self) -> [u8; 16] {
        self.server_nonce
    }

    fn send(&mut self, job: Option<JobId>, ttl_ms: Option<u64>, msg: ServerMessage) -> Vec<u8> {
        let seq = self.next_out;
        self.next_out += 1;
        keysmith_wire::seal_server(
            &Envelope {
                session: Some(self.session),
                seq,
                job,
                ttl_ms,
                msg,
            },
            &self.key,
        )
    }

    /// Signs `spec` as the next `Job` (its transport PINs sealed to the session key), with
    /// `ttl_ms`. Returns the bytes to send.
    pub(crate) fn job(&mut self, spec: JobSpec, ttl_ms: u64) -> Result<Vec<u8>, LinkError> {
        let mut id = [0u8; 16];
        OsEntropy.fill(&mut id);
        let id = JobId(id);
        let mut secrets: Vec<SealedSecret> = Vec::with_capacity(spec.secrets.len());
        for (secret_id, pin) in &spec.secrets {
            let ctx = SecretContext {
                session: self.session,
                job: id,
                key_id: spec.key_id.clone(),
                secret_id: *secret_id,
            };
            secrets.push(keysmith_wire::seal_secret(
                &self.session_pub,
                &ctx,
                pin.as_bytes(),
                &mut OsEntropy,
            )?);
        }
        let step_count = spec.steps.len();
        let bytes = self.send(
            Some(id),
            Some(ttl_ms),
            ServerMessage::Job(Job {
                operation: spec.operation,
                key_id: spec.key_id,
                expect: Expect {
                    aaguid: spec.expect_aaguid,
                    serial: None,
                    credential_ids: None,
                },
                deadline_ms: spec.deadline_ms,
                steps: spec.steps,
                secrets,
            }),
        );
        self.job = Some((id, keysmith_wire::sha256(&bytes), step_count));
        Ok(bytes)
    }

    /// Signs a message that is not a job (`JobAck`, `Refused`, `Done`).
    pub(crate) fn message(&mut self, msg: ServerMessage) -> Vec<u8> {
        self.send(None, None, msg)
    }

    /// Opens and checks a device message: the agent's signature, this session, the next
    /// seq (a retransmission is recognised and not handled twice).
    pub(crate) fn accept(&mut self, bytes: &[u8]) -> Result<Incoming, LinkError> {
        let opened = keysmith_wire::open_agent(bytes, &self.agent)?;
        let env = opened.envelope;
        if env.session != Some(self.session) {
            return Err(keysmith_wire::WireError::SessionMismatch.into());
        }
        match self.incoming.check(env.seq, &opened.digest)? {
            SeqCheck::Retransmission => Ok(Incoming::Retransmission),
            SeqCheck::Next => {
                self.incoming.accept(env.seq, &opened.digest)?;
                Ok(Incoming::Message(Box::new(env)))
            }
        }
    }

    /// Checks a `JobResult` against the job in flight: its job id, the digest of the job's
    /// bytes, one outcome per step in order. The job is then closed (one result per job).
    pub(crate) fn check_result(
        &mut self,
        job: Option<JobId>,
        r: &JobResult,
    ) -> Result<(), LinkError> {
        let Some((id, digest, steps)) = self.job else {
            return Err(LinkError::Unexpected("a job result with no job in flight"));
        };
        if job != Some(id) {
            return Err(LinkError::Unexpected("a result for another job"));
        }
        if r.job_digest != digest {
            return Err(LinkError::Unexpected("a result over other job bytes"));
        }
        if r.outcomes.len() != steps
            || r.outcomes
                .iter()
                .enumerate()
                .any(|(i, o)| o.step as usize != i)
        {
            return Err(LinkError::Unexpected(
                "a result without one outcome per step",
            ));
        }
        self.job = None;
        Ok(())
    }

    /// The job in flight, if any.
    pub(crate) fn job_in_flight(&self) -> Option<JobId> {
        self.job.map(|(id, _, _)| id)
    }

    /// Closes the job in flight (aborted by the device half).
    pub(crate) fn close_job(&mut self) {
        self.job = None;
    }
}

#[cfg(test)]
mod tests {
    use keysmith_wire::{
        AgentHello, Capabilities, DeviceStep, HostClaim, Outcome, OutcomeStatus, SessionKey,
    };

    use super::*;

    /// A server channel after a hello from `agent`; returns it and the agent's session key.
    fn channel(agent: &SigningKey) -> (ServerChannel, SessionKey) {
        let sk = SessionKey::generate();
        let hello = keysmith_wire::seal_agent(
            &Envelope {
                session: None,
                seq: 0,
                job: None,
                ttl_ms: None,
                msg: AgentMessage::Hello(AgentHello {
                    agent_id: agent.key_id(),
                    agent_version: "t".into(),
                    versions: vec![1],
                    session_pub: sk.public(),
                    nonce: [0; 16],
                    caps: Capabilities::default(),
                    host: HostClaim::default(),
                }),
            },
            agent,
        );
        let (ch, _, _) =
            ServerChannel::accept_hello(SigningKey::generate(), agent.public_key(), &hello)
                .expect("hello accepted");
        (ch, sk)
    }

    fn result(
        ch: &ServerChannel,
        agent: &SigningKey,
        seq: u64,
        job: Option<JobId>,
        digest: [u8; 32],
        n: usize,
    ) -> Vec<u8> {
        keysmith_wire::seal_agent(
            &Envelope {
                session: Some(ch.session),
                seq,
                job,
                ttl_ms: None,
                msg: AgentMessage::JobResult(JobResult {
                    job_digest: digest,
                    outcomes: (0..n)
                        .map(|i| Outcome {
                            step: i as u32,
                            status: OutcomeStatus::Ok,
                            ctap: None,
                            retries: None,
                            out: None,
                            error: None,
                        })
                        .collect(),
                    info_after: None,
                }),
            },
            agent,
        )
    }

    fn spec() -> JobSpec {
        JobSpec {
            operation: "issue".into(),
            key_id: Some("k".into()),
            expect_aaguid: None,
            deadline_ms: 1,
            steps: vec![DeviceStep::ReadInfo],
            secrets: vec![(1, Zeroizing::new("12345678".into()))],
        }
    }

    fn check(ch: &mut ServerChannel, bytes: &[u8]) -> Result<(), LinkError> {
        match ch.accept(bytes)? {
            Incoming::Message(env) => match env.msg {
                AgentMessage::JobResult(r) => ch.check_result(env.job, &r),
                _ => Err(LinkError::Unexpected("not a result")),
            },
            Incoming::Retransmission => Err(LinkError::Unexpected("retransmission")),
        }
    }

    #[test]
    fn a_result_must_answer_the_job_in_flight_over_its_bytes() {
        let agent = SigningKey::generate();
        let (mut ch, _) = channel(&agent);
        let job = ch.job(spec(), 1_000).expect("signed");
        let id = ch.job_in_flight().expect("in flight");
        let digest = keysmith_wire::sha256(&job);
        // Another job's id, other bytes' digest, a missing outcome: each refused.
        let other = result(&ch, &agent, 1, Some(JobId([0; 16])), digest, 1);
        assert!(check(&mut ch, &other).is_err());
        let wrong = result(&ch, &agent, 2, Some(id), [0; 32], 1);
        assert!(check(&mut ch, &wrong).is_err());
        let short = result(&ch, &agent, 3, Some(id), digest, 0);
        assert!(check(&mut ch, &short).is_err());
        // Signed by another agent: refused at the signature.
        let stranger = SigningKey::generate();
        let forged = result(&ch, &stranger, 4, Some(id), digest, 1);
        assert!(matches!(check(&mut ch, &forged), Err(LinkError::Wire(_))));
        let good = result(&ch, &agent, 4, Some(id), digest, 1);
        assert!(check(&mut ch, &good).is_ok());
        // The same bytes again: a retransmission, not a second result.
        assert!(matches!(ch.accept(&good), Ok(Incoming::Retransmission)));
        // A second result for the same job: no job in flight any more.
        let again = result(&ch, &agent, 5, Some(id), digest, 1);
        assert!(check(&mut ch, &again).is_err());
        // A gap in the sequence breaks the session.
        let gap = result(&ch, &agent, 9, Some(id), digest, 1);
        assert!(matches!(
            ch.accept(&gap),
            Err(LinkError::Wire(
                keysmith_wire::WireError::SessionBroken { .. }
            ))
        ));
    }

    #[test]
    fn the_transport_pin_is_sealed_into_the_job() {
        let agent = SigningKey::generate();
        let (mut ch, sk) = channel(&agent);
        let job = ch.job(spec(), 1_000).expect("signed");
        assert!(!job.windows(8).any(|w| w == b"12345678"));
        let opened = keysmith_wire::open_server(&job, &[ch.key.public_key()]).expect("opens");
        let ServerMessage::Job(j) = opened.envelope.msg else {
            panic!("not a job");
        };
        let pin = keysmith_wire::open_secret(
            &sk,
            &SecretContext {
                session: ch.session,
                job: opened.envelope.job.expect("job id"),
                key_id: Some("k".into()),
                secret_id: 1,
            },
            &j.secrets[0],
        )
        .expect("the session key opens it");
        assert_eq!(&pin[..], b"12345678");
    }
}

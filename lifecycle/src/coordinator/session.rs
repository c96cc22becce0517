//! The session layer: opening a session, checking every message (signature, session,
//! sequence, expiry), answering retransmissions with the stored reply, and moving the
//! session row by compare-and-set so two nodes never process one message twice.

use rand_core::{OsRng, RngCore};

use keysmith_wire::{
    open_agent, peek_kid, seal_server, AgentMessage, Envelope, JobId, PublicKey, RefusalCode,
    Refused, RequestOp, SeqCheck, SeqWindow, ServerHello, ServerMessage, SessionId, WireError,
};

use super::context::{hex, Phase, SessionContext};
use super::{AgentClass, AgentEntry, AgentStatus, Coordinator, CoordinatorError, Rejected};
use crate::store::split::{SplitDirection, SplitMessage, SplitSession, SplitSessionState};
use crate::store::{NewAuditRecord, UnixMillis};

/// A session the coordinator opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionOpened {
    /// Lower-case hex of the session id (what `POST /v1/sessions/{id}` carries).
    pub session_id: String,
    /// The signed `ServerHello` for the device half.
    pub reply: Vec<u8>,
}

/// What handling a message led to.
pub(super) enum Dispatched {
    /// Answer it now.
    Reply(Reply),
    /// The session's flow answers it (a job's result went to its inbox).
    ToFlow,
    /// Start a flow that answers it.
    Start(super::flows::FlowStart),
}

/// What a handled message answers.
pub(super) struct Reply {
    pub msg: ServerMessage,
    pub job: Option<JobId>,
    pub ttl_ms: Option<u64>,
    /// The session ends with this reply.
    pub finished: bool,
}

impl Reply {
    pub(super) fn new(msg: ServerMessage, ttl_ms: u64) -> Self {
        Reply {
            msg,
            job: None,
            ttl_ms: Some(ttl_ms),
            finished: false,
        }
    }
}

fn reject_wire(e: WireError) -> Rejected {
    Rejected::new(e.refusal_code(), e.to_string())
}

fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b
}

fn digest32(v: &[u8]) -> [u8; 32] {
    let mut d = [0u8; 32];
    if v.len() == 32 {
        d.copy_from_slice(v);
    }
    d
}

pub(super) fn session_id_from_hex(s: &str) -> Option<SessionId> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(SessionId(out))
}

impl Coordinator {
    /// The enrolled, approved agent with this id, or why not.
    fn approved_agent(&self, agent_id: &str) -> Result<(AgentEntry, PublicKey), CoordinatorError> {
        let agent = self
            .agents
            .agent(agent_id)?
            .ok_or_else(|| Rejected::new(RefusalCode::UnknownKey, "the agent is not enrolled"))?;
        match agent.status {
            AgentStatus::Approved => {}
            AgentStatus::Pending => {
                return Err(Rejected::new(
                    RefusalCode::AgentNotApproved,
                    "the agent's enrolment waits for an admin's approval",
                )
                .into())
            }
            AgentStatus::Revoked => {
                return Err(
                    Rejected::new(RefusalCode::AgentRevoked, "the agent was revoked").into(),
                )
            }
        }
        let key = PublicKey::from_sec1(&agent.public_key).map_err(reject_wire)?;
        Ok((agent, key))
    }

    fn audit(&self, agent: &AgentEntry, action: &str, outcome: &str, detail: String, now: u64) {
        let rec = NewAuditRecord {
            actor: format!("agent:{}", agent.agent_id.get(..16).unwrap_or_default()),
            time_ms: now,
            action: action.to_owned(),
            key_id: None,
            user_id: None,
            template_id: None,
            outcome: outcome.to_owned(),
            idp_request_id: None,
            detail: Some(detail),
        };
        if let Err(e) = self.engine.store().append_audit(&rec) {
            tracing::warn!(error = %e, action, "audit write failed");
        }
    }

    /// Opens a session from the device half's `AgentHello` (signed by an enrolled,
    /// approved agent, seq 0, no session id, protocol version 1 offered) and answers with
    /// the signed `ServerHello`.
    pub fn open(&self, bytes: &[u8], now: UnixMillis) -> Result<SessionOpened, CoordinatorError> {
        self.open_admitted(bytes, now, &|_| true)
    }

    /// [`Coordinator::open`], asking `admit` (with the agent id, once the agent's
    /// signature verified) whether this agent may open another session now.
    pub fn open_admitted(
        &self,
        bytes: &[u8],
        now: UnixMillis,
        admit: &dyn Fn(&str) -> bool,
    ) -> Result<SessionOpened, CoordinatorError> {
        let kid = peek_kid(bytes).map_err(reject_wire)?;
        let (agent, key) = self.approved_agent(&hex(&kid.0))?;
        let opened = open_agent(bytes, &key).map_err(reject_wire)?;
        if !admit(&agent.agent_id) {
            return Err(CoordinatorError::RateLimited {
                agent_id: agent.agent_id,
            });
        }
        let env = opened.envelope;
        let AgentMessage::Hello(hello) = env.msg else {
            return Err(Rejected::new(
                RefusalCode::SessionUnknown,
                "a session starts with AgentHello",
            )
            .into());
        };
        if env.session.is_some() || env.seq != 0 {
            return Err(Rejected::new(
                RefusalCode::SessionBroken,
                "AgentHello carries seq 0 and no session",
            )
            .into());
        }
        if hello.agent_id != kid {
            return Err(Rejected::new(
                RefusalCode::UnknownKey,
                "AgentHello names another agent than its signer",
            )
            .into());
        }
        if !hello.versions.contains(&1) {
            return Err(Rejected::new(
                RefusalCode::VersionUnsupported,
                "the agent offers no protocol version this server speaks (1)",
            )
            .into());
        }
        let sid = SessionId(random16());
        let server_nonce = random16();
        let reply = seal_server(
            &Envelope {
                session: Some(sid),
                seq: 0,
                job: None,
                ttl_ms: Some(self.config.message_ttl_ms),
                msg: ServerMessage::Hello(ServerHello {
                    server_nonce,
                    version: 1,
                    server_time_ms: now,
                    hello_digest: opened.digest,
                    next_server_key: None,
                }),
            },
            &self.key,
        );
        let ctx = SessionContext {
            agent_class: agent.class.as_str().to_owned(),
            caps: (&hello.caps).into(),
            host: (&hello.host).into(),
            ..SessionContext::default()
        };
        let session_id = hex(&sid.0);
        let row = SplitSession {
            session_id: session_id.clone(),
            agent_id: agent.agent_id.clone(),
            created_ms: now,
            expires_ms: now.saturating_add(self.config.session_ttl_ms),
            state: SplitSessionState::Open,
            session_pub: hello.session_pub.to_vec(),
            server_nonce: server_nonce.to_vec(),
            recv_seq: 0,
            recv_digest: opened.digest.to_vec(),
            sent_seq: 0,
            reply: reply.clone(),
            context: ctx.to_json(),
            version: 1,
        };
        // The session and both hellos in the log: one commit.
        let log = [
            split_message(&session_id, SplitDirection::In, 0, bytes.to_vec(), now),
            split_message(&session_id, SplitDirection::Out, 0, reply.clone(), now),
        ];
        self.engine
            .store()
            .split_session_create_logged(&row, now, &log)?;
        self.audit(
            &agent,
            "split_session_open",
            "ok",
            format!(
                "session {session_id}; host {:?} ({}, elevated: {}, remote session: {})",
                hello.host.name, hello.host.os, hello.host.elevated, hello.host.remote_session
            ),
            now,
        );
        Ok(SessionOpened { session_id, reply })
    }

    /// Handles the next message of session `session_id` and returns the signed reply. A
    /// retransmission (the message last accepted, same bytes) gets the stored reply again;
    /// anything the session cannot accept is [`Rejected`] and changes nothing (a sequence
    /// gap or reorder closes the session).
    pub fn handle(
        &self,
        session_id: &str,
        bytes: &[u8],
        now: UnixMillis,
    ) -> Result<Vec<u8>, CoordinatorError> {
        let store = self.engine.store();
        let unknown = || Rejected::new(RefusalCode::SessionUnknown, "no such session");
        let sid = session_id_from_hex(session_id).ok_or_else(unknown)?;
        let mut row = store.split_session_get(session_id)?.ok_or_else(unknown)?;
        let (agent, key) = self.approved_agent(&row.agent_id)?;
        let opened = open_agent(bytes, &key).map_err(reject_wire)?;
        let env = opened.envelope;
        if env.session != Some(sid) {
            return Err(Rejected::new(
                RefusalCode::SessionUnknown,
                "the message belongs to another session",
            )
            .into());
        }
        let mut ctx = SessionContext::from_json(&row.context).map_err(|reason| {
            CoordinatorError::Context {
                session_id: session_id.to_owned(),
                reason,
            }
        })?;
        let window = SeqWindow::resume(row.recv_seq, digest32(&row.recv_digest));
        if row.state != SplitSessionState::Open {
            // A finished session still answers the retransmission of its last message
            // (the device half may have missed the final reply); nothing else.
            if let (Ok(SeqCheck::Retransmission), false) =
                (window.check(env.seq, &opened.digest), row.reply.is_empty())
            {
                return Ok(row.reply);
            }
            return Err(Rejected::new(RefusalCode::SessionBroken, "the session is closed").into());
        }
        if now >= row.expires_ms {
            self.close(&mut row, SplitSessionState::Broken, now)?;
            return Err(Rejected::new(RefusalCode::SessionExpired, "the session expired").into());
        }
        match window.check(env.seq, &opened.digest) {
            Ok(SeqCheck::Retransmission) => return self.repeat(row, &ctx, now),
            Ok(SeqCheck::Next) => {}
            Err(e) => {
                self.close(&mut row, SplitSessionState::Broken, now)?;
                return Err(reject_wire(e).into());
            }
        }
        // Claim the message: from here on another node answers `Busy` to its copies.
        let expected = row.version;
        row.recv_seq = env.seq;
        row.recv_digest = opened.digest.to_vec();
        row.reply = Vec::new();
        ctx.processing_since = Some(now);
        // A running flow's answer goes to its inbox with the claim itself (what
        // `dispatch` would do, one commit sooner).
        let to_flow = ctx.flow.is_some()
            && matches!(
                env.msg,
                AgentMessage::JobResult(_)
                    | AgentMessage::Abort(_)
                    | AgentMessage::HolderGraphResult(_)
            );
        if to_flow {
            ctx.inbox = Some(hex(bytes));
        }
        row.context = ctx.to_json();
        row.version = expected.saturating_add(1);
        // The claim and the message's log entry: one commit.
        let logged_in = split_message(
            session_id,
            SplitDirection::In,
            env.seq,
            logged(&env.msg, bytes),
            now,
        );
        if !store.split_session_update_logged(&row, expected, now, &[logged_in])? {
            let current = store.split_session_get(session_id)?.ok_or_else(unknown)?;
            let current_ctx = SessionContext::from_json(&current.context).unwrap_or_default();
            if current.recv_seq == env.seq && current.recv_digest == opened.digest {
                return self.repeat(current, &current_ctx, now);
            }
            return Err(Rejected::new(RefusalCode::Busy, "another node moved the session").into());
        }
        let seq_in = env.seq;
        if to_flow {
            super::wake::ring(session_id);
            return self.await_reply(session_id, seq_in, now);
        }
        let reply = match self.dispatch(&agent, &row, &mut ctx, env.msg, bytes, now) {
            Ok(Dispatched::Reply(r)) => r,
            Ok(Dispatched::ToFlow) => {
                self.hand_over(&mut row, &ctx, now)?;
                return self.await_reply(session_id, seq_in, now);
            }
            Ok(Dispatched::Start(start)) => {
                self.hand_over(&mut row, &ctx, now)?;
                self.spawn_flow(session_id, &agent, start, now);
                return self.await_reply(session_id, seq_in, now);
            }
            Err(CoordinatorError::Rejected(r)) => Reply::new(
                ServerMessage::Refused(Refused {
                    code: r.code,
                    reason: r.reason,
                    needs_reissue: None,
                    step: None,
                }),
                self.config.message_ttl_ms,
            ),
            Err(e) => {
                // A server fault: answer it signed, so the device half does not wait for
                // a reply that never comes; the session stays usable.
                tracing::error!(error = %e, session_id, "split message failed");
                Reply::new(
                    ServerMessage::Refused(Refused {
                        code: RefusalCode::Internal,
                        reason: "the server failed; see its log".into(),
                        needs_reissue: None,
                        step: None,
                    }),
                    self.config.message_ttl_ms,
                )
            }
        };
        let seq = row.sent_seq.saturating_add(1);
        let out = seal_server(
            &Envelope {
                session: Some(sid),
                seq,
                job: reply.job,
                ttl_ms: reply.ttl_ms,
                msg: reply.msg,
            },
            &self.key,
        );
        let expected = row.version;
        row.sent_seq = seq;
        row.reply = out.clone();
        ctx.processing_since = None;
        if reply.finished {
            ctx.phase = Phase::Finished;
            row.state = SplitSessionState::Done;
        }
        row.context = ctx.to_json();
        row.version = expected.saturating_add(1);
        let logged_out = split_message(session_id, SplitDirection::Out, seq, out.clone(), now);
        if !store.split_session_update_logged(&row, expected, now, &[logged_out])? {
            return Err(Rejected::new(
                RefusalCode::SessionBroken,
                "the session was closed while the message was processed",
            )
            .into());
        }
        Ok(out)
    }

    /// Stores the context a flow reads (its start, or a message in its inbox) while the
    /// message stays claimed.
    fn hand_over(
        &self,
        row: &mut SplitSession,
        ctx: &SessionContext,
        now: u64,
    ) -> Result<(), CoordinatorError> {
        let expected = row.version;
        row.context = ctx.to_json();
        row.version = expected.saturating_add(1);
        if !self
            .engine
            .store()
            .split_session_update(row, expected, now)?
        {
            return Err(Rejected::new(
                RefusalCode::Busy,
                "the session moved; send the message again",
            )
            .into());
        }
        super::wake::ring(&row.session_id);
        Ok(())
    }

    /// Waits until the session's flow answered the device message `seq` (on whichever
    /// node it runs); a flow silent past the stall limit closes the session.
    fn await_reply(
        &self,
        session_id: &str,
        seq: u64,
        now: u64,
    ) -> Result<Vec<u8>, CoordinatorError> {
        let started = std::time::Instant::now();
        let limit = std::time::Duration::from_millis(self.config.stalled_after_ms);
        let mut pause = super::wake::FIRST_WAIT;
        loop {
            let seen = super::wake::seen(session_id);
            let row = self
                .engine
                .store()
                .split_session_get(session_id)?
                .ok_or_else(|| Rejected::new(RefusalCode::SessionUnknown, "no such session"))?;
            if row.recv_seq == seq && !row.reply.is_empty() {
                return Ok(row.reply);
            }
            if row.recv_seq != seq || row.state != SplitSessionState::Open {
                return Err(Rejected::new(
                    RefusalCode::SessionBroken,
                    "the session was closed before its flow answered",
                )
                .into());
            }
            if started.elapsed() >= limit {
                let mut row = row;
                let waited = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                self.close(
                    &mut row,
                    SplitSessionState::Broken,
                    now.saturating_add(waited),
                )?;
                return Err(Rejected::new(
                    RefusalCode::SessionBroken,
                    "the session's flow stopped answering; start a new session",
                )
                .into());
            }
            super::wake::wait(session_id, seen, pause);
            pause = super::wake::back_off(pause);
        }
    }

    /// The answer to a retransmission: the stored reply, or `Busy` while another node
    /// still processes the message (a processing stalled past the limit closes the
    /// session: its node died, and the device half starts over).
    fn repeat(
        &self,
        mut row: SplitSession,
        ctx: &SessionContext,
        now: u64,
    ) -> Result<Vec<u8>, CoordinatorError> {
        if !row.reply.is_empty() {
            return Ok(row.reply);
        }
        let since = ctx.processing_since.unwrap_or(row.created_ms);
        if now.saturating_sub(since) >= self.config.stalled_after_ms {
            self.close(&mut row, SplitSessionState::Broken, now)?;
            return Err(Rejected::new(
                RefusalCode::SessionBroken,
                "the node processing this message stopped; start a new session",
            )
            .into());
        }
        Err(Rejected::new(
            RefusalCode::Busy,
            "the message is being processed; send it again",
        )
        .into())
    }

    /// Closes the session (best effort against a concurrent move: whoever moved it
    /// decides).
    fn close(
        &self,
        row: &mut SplitSession,
        state: SplitSessionState,
        now: u64,
    ) -> Result<(), CoordinatorError> {
        let expected = row.version;
        row.state = state;
        row.version = expected.saturating_add(1);
        self.engine
            .store()
            .split_session_update(row, expected, now)?;
        super::wake::ring(&row.session_id);
        Ok(())
    }

    /// Handles one accepted message.
    fn dispatch(
        &self,
        agent: &AgentEntry,
        row: &SplitSession,
        ctx: &mut SessionContext,
        msg: AgentMessage,
        bytes: &[u8],
        now: u64,
    ) -> Result<Dispatched, CoordinatorError> {
        let ttl = self.config.message_ttl_ms;
        if ctx.flow.is_some() {
            // A flow runs: its job's result (or abort) goes to it; progress notes are
            // acknowledged; nothing else is taken until it ends.
            return match msg {
                AgentMessage::JobResult(_)
                | AgentMessage::Abort(_)
                | AgentMessage::HolderGraphResult(_) => {
                    ctx.inbox = Some(hex(bytes));
                    Ok(Dispatched::ToFlow)
                }
                AgentMessage::Progress(_) => Ok(Dispatched::Reply(Reply::new(
                    ServerMessage::Wait { retry_ms: 0 },
                    ttl,
                ))),
                _ => Err(Rejected::new(RefusalCode::Busy, "an operation is in progress").into()),
            };
        }
        let not_allowed = |what: &str| -> CoordinatorError {
            Rejected::new(RefusalCode::NotAllowed, what.to_owned()).into()
        };
        match msg {
            AgentMessage::Hello(_) => Err(not_allowed("AgentHello only opens a session")),
            AgentMessage::DeviceReport(r) => {
                ctx.report = Some((&r).into());
                Ok(Dispatched::Reply(Reply::new(
                    ServerMessage::Wait { retry_ms: 0 },
                    ttl,
                )))
            }
            AgentMessage::Progress(_) => Ok(Dispatched::Reply(Reply::new(
                ServerMessage::Wait { retry_ms: 0 },
                ttl,
            ))),
            AgentMessage::Abort(a) => {
                self.audit(
                    agent,
                    "split_session_abort",
                    "aborted",
                    format!("session {}: {}", row.session_id, a.reason),
                    now,
                );
                let mut r = Reply::new(
                    ServerMessage::Done {
                        key_id: None,
                        state: None,
                    },
                    ttl,
                );
                r.finished = true;
                Ok(Dispatched::Reply(r))
            }
            AgentMessage::Ready
            | AgentMessage::Request(keysmith_wire::Request {
                operation: RequestOp::Work,
                ..
            }) => {
                if agent.class != AgentClass::Station {
                    return Err(not_allowed("only an enrolled station takes operator work"));
                }
                self.station_work(agent, row, ctx, now)
            }
            AgentMessage::Request(req) => self
                .holder_request(agent, row, ctx, req, now)
                .map(Dispatched::Reply),
            AgentMessage::HolderAuth(auth) => self.holder_auth(agent, row, ctx, auth, now),
            AgentMessage::JobResult(_) => Err(not_allowed("no job is outstanding in this session")),
            _ => Err(not_allowed(
                "this message kind is not handled by this server",
            )),
        }
    }
}

/// The log entry of a message of session `session_id`.
pub(super) fn split_message(
    session_id: &str,
    direction: SplitDirection,
    seq: u64,
    bytes: Vec<u8>,
    now: u64,
) -> SplitMessage {
    SplitMessage {
        session_id: session_id.to_owned(),
        direction,
        seq,
        bytes,
        at_ms: now,
    }
}

/// What the log keeps of a message: its bytes, except a `HolderAuth`, whose ID token is
/// logged as the SHA-256 of the whole message only.
fn logged(msg: &AgentMessage, bytes: &[u8]) -> Vec<u8> {
    match msg {
        AgentMessage::HolderAuth(_) => keysmith_wire::sha256(bytes).to_vec(),
        _ => bytes.to_vec(),
    }
}
